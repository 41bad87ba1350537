// swift-tools-version:6.0
import PackageDescription

/// The data-plane targets skip dynamic exclusivity checks in release builds: measured at ~3%
/// of the CPU per proxied request, and the handlers are confined to their event loops anyway.
let hotPathSettings: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))
]

let package = Package(
    name: "Fulcrum",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "fulcrum", targets: ["fulcrum"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
        // gRPC's own client and server, for the tests that run gRPC calls through Fulcrum.
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
    ],
    targets: [
        // YAML → validated, immutable `Config`. No networking. (NIOSSL for its BoringSSL, the
        // only judge of what a `tls.ciphers` string means: `TLSCipherList`.)
        .target(
            name: "FulcrumConfig",
            dependencies: [
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // Load-balancing algorithms and server state. Pure Swift, no I/O.
        .target(
            name: "FulcrumBalancing",
            dependencies: ["FulcrumConfig", .product(name: "Histogram", package: "hdrhistogram-swift")],
            swiftSettings: hotPathSettings
        ),
        // The anti-bot shield's pure core: rate limits, clearance cookies, proof-of-work
        // challenges and their page, bot heuristics. Pure Swift, no I/O, injected clock and
        // randomness; one instance per event loop where state is mutable.
        .target(
            name: "FulcrumShield",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: hotPathSettings
        ),
        // The worker server used by tests, the demo and (later) the algorithm lab.
        .target(
            name: "FulcrumWorker",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            ]
        ),
        // Linux's epoll, eventfd and malloc_trim for the parking lot (Glibc's Swift module
        // leaves them out).
        .target(name: "CFulcrumLinux"),
        // The NIO data plane: listeners, routing, backend pools, forwarding, error pages.
        .target(
            name: "FulcrumProxy",
            dependencies: [
                "FulcrumACME",
                "FulcrumDNS",
                "FulcrumConfig",
                "FulcrumBalancing",
                "FulcrumShield",
                "FulcrumRedis",
                "CFulcrumLinux",
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: hotPathSettings
        ),
        // A small Redis client on SwiftNIO (RESP2, pipelined, timeouts that fail fast), for rate
        // limits shared by several instances: no Swift Redis client is among the packages.
        .target(
            name: "FulcrumRedis",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        // An ACME client (RFC 8555: HTTP-01, TLS-ALPN-01), for certificates that obtain themselves.
        .target(
            name: "FulcrumACME",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // A small DNS client on NIO's UDP (A, AAAA, SRV), for servers that follow DNS.
        .target(
            name: "FulcrumDNS",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Fulcrum's side of systemd's notify protocol (READY, RELOADING, STOPPING), for a
        // `Type=notify` unit (contrib/systemd).
        .target(
            name: "FulcrumSystemd",
            dependencies: [.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]
        ),
        // The algorithm lab: scenarios, open-loop load, results, charts.
        .target(
            name: "FulcrumLab",
            dependencies: [
                "FulcrumConfig",
                "FulcrumProxy",
                "FulcrumWorker",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .target(
            name: "FulcrumAdmin",
            dependencies: [
                "FulcrumConfig",
                "FulcrumBalancing",
                "FulcrumProxy",
                "FulcrumSystemd",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            // The dashboard page and the OpenAPI document, as files (docs/admin-api.yaml links
            // to the latter), compiled into the binary.
            resources: [
                .embedInCode("Resources/dashboard.html"),
                .embedInCode("Resources/admin-api.yaml"),
            ]
        ),
        .executableTarget(
            name: "fulcrum",
            dependencies: [
                "FulcrumAdmin",
                "FulcrumConfig",
                "FulcrumLab",
                "FulcrumProxy",
                "FulcrumSystemd",
                "FulcrumWorker",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            plugins: ["BuildCommit"]
        ),
        // Names the commit a binary was built from (`fulcrum --version`).
        .plugin(name: "BuildCommit", capability: .buildTool()),
        // libFuzzer targets (docs/fuzzing.md): `Fuzz/run.sh` builds them with `--sanitize fuzzer`,
        // which links libFuzzer's `main`. Built without it (a plain `swift build`), each is a
        // program that does nothing: they need no guard, and cost two small files to build.
        .executableTarget(name: "FuzzConfigLoader", dependencies: ["FulcrumConfig"]),
        .executableTarget(
            name: "FuzzRequestHead",
            dependencies: [
                "FulcrumConfig",
                "FulcrumProxy",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // What the worker's and the proxy's tests share: collected responses, sending.
        .target(
            name: "FulcrumTestSupport",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tests/FulcrumTestSupport"
        ),
        .testTarget(name: "FulcrumConfigTests", dependencies: ["FulcrumConfig"]),
        // grpc-swift 2's client and server through a real proxy; the protobuf code is
        // generated once and committed (Tests/FulcrumGRPCTests/echo.proto says how).
        .testTarget(
            name: "FulcrumGRPCTests",
            dependencies: [
                "FulcrumProxy",
                "FulcrumConfig",
                "FulcrumTestSupport",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["echo.proto"]
        ),
        .testTarget(name: "FulcrumBalancingTests", dependencies: ["FulcrumBalancing"]),
        .testTarget(
            name: "FulcrumShieldTests",
            dependencies: ["FulcrumShield", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(name: "FulcrumLabTests", dependencies: ["FulcrumLab", "FulcrumConfig"]),
        // The admin API over a fake ProxyControl, in router mode: no socket, no proxy.
        .testTarget(
            name: "FulcrumAdminTests",
            dependencies: [
                "FulcrumAdmin",
                "FulcrumBalancing",
                "FulcrumConfig",
                "FulcrumProxy",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "FulcrumRedisTests",
            dependencies: [
                "FulcrumRedis",
                "FulcrumTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "FulcrumACMETests",
            dependencies: [
                "FulcrumACME",
                "FulcrumConfig",
                "FulcrumProxy",
                "FulcrumWorker",
                "FulcrumTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "FulcrumDNSTests",
            dependencies: [
                "FulcrumDNS",
                "FulcrumTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "FulcrumSystemdTests",
            dependencies: [
                "FulcrumSystemd",
                "FulcrumTestSupport",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "FulcrumWorkerTests",
            dependencies: [
                "FulcrumWorker",
                "FulcrumTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        .testTarget(
            name: "FulcrumProxyTests",
            dependencies: [
                "FulcrumAdmin",
                "FulcrumProxy",
                "FulcrumBalancing",
                "FulcrumConfig",
                "FulcrumWorker",
                "FulcrumShield",
                "FulcrumTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
    ]
)
