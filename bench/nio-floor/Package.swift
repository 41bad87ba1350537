// swift-tools-version:6.0
// The NIO-only floor of bench/run.sh --idle: the resident memory one idle keep-alive
// connection costs in a SwiftNIO server that does nothing else. See bench/README.md.
import PackageDescription

let package = Package(
    name: "nio-floor",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2")
    ],
    targets: [
        .target(name: "CEpoll"),
        .executableTarget(
            name: "nio-floor",
            dependencies: [
                "CEpoll",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
    ]
)
