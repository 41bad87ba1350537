// swift-tools-version:6.0
// The NIO-only floor of bench/run.sh --idle and --h2: the resident memory one idle keep-alive
// connection costs, and the CPU an HTTP/2 request costs, in a SwiftNIO server that does nothing
// else. See bench/README.md.
import PackageDescription

let package = Package(
    name: "nio-floor",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
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
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            ]
        ),
    ]
)
