import AsyncHTTPClient
import CoreMetrics
import Foundation
import FulcrumConfig
import FulcrumProxy
// Re-exported: every test file reads `CollectedResponse` without importing it itself.
@_exported import FulcrumTestSupport
import FulcrumWorker
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Real worker servers on ephemeral ports, a real proxy in front of them, and a real HTTP
/// client — everything on loopback, started per test and torn down after it.
final class ProxyHarness: Sendable {
    let workers: [WorkerServer]
    let proxy: ProxyServer
    let client: HTTPClient
    let port: Int
    private let proxyGroup: MultiThreadedEventLoopGroup
    private let sideGroup: MultiThreadedEventLoopGroup

    private init(
        workers: [WorkerServer],
        proxy: ProxyServer,
        client: HTTPClient,
        port: Int,
        proxyGroup: MultiThreadedEventLoopGroup,
        sideGroup: MultiThreadedEventLoopGroup
    ) {
        self.workers = workers
        self.proxy = proxy
        self.client = client
        self.port = port
        self.proxyGroup = proxyGroup
        self.sideGroup = sideGroup
    }

    /// Starts `workers`, then the proxy from the YAML that `yaml` builds from the workers' ports.
    /// The first frontend's first listen address is replaced by a free port.
    ///
    /// - Parameters:
    ///   - sharedPortHosts: when given, worker `i` listens on `sharedPortHosts[i]`, every worker
    ///     on one port (loopback has all of 127.0.0.0/8): servers that a name's A records tell
    ///     apart.
    ///   - sharedPort: that port (0: the first worker's, chosen by the system).
    static func start(
        workers behaviours: [WorkerBehaviour],
        sharedPortHosts: [String]? = nil,
        sharedPort: Int = 0,
        proxyThreads: Int = 1,
        clientConnections: Int = 8,
        certificatePollInterval: Duration = .milliseconds(200),
        logs: LogCapture? = nil,
        accessLog: AccessLogWriter? = nil,
        metricsFactory: any MetricsFactory = NOOPMetricsHandler.instance,
        yaml: ([Int]) -> String
    ) async throws -> ProxyHarness {
        let sideGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var workers: [WorkerServer] = []
        for (index, behaviour) in behaviours.enumerated() {
            if let hosts = sharedPortHosts {
                let port = workers.first?.port ?? sharedPort
                workers.append(
                    try await WorkerServer.start(name: "w\(index + 1)", host: hosts[index], port: port, behaviour: behaviour, group: sideGroup)
                )
            } else {
                workers.append(try await WorkerServer.start(name: "w\(index + 1)", behaviour: behaviour, group: sideGroup))
            }
        }
        var config = try ConfigLoader.load(yaml: yaml(workers.map(\.port)))
        let proxyGroup = MultiThreadedEventLoopGroup(numberOfThreads: proxyThreads)
        var logger =
            logs.map { capture in Logger(label: "fulcrum.test") { _ in capture.handler() } }
            ?? Logger(label: "fulcrum.test")
        logger.logLevel = .warning
        // A free port (not 0, which the file format has no use for): reload tests write the
        // running configuration out and read it back. Suites run in parallel, so another test
        // may take the port between `deadPort()` and the bind: then another port, twice more.
        var attempt = 0
        let proxy: ProxyServer
        while true {
            config.frontends[0].listen = [ListenAddress(host: "127.0.0.1", port: try deadPort())]
            do {
                proxy = try await ProxyServer.start(
                    config: config,
                    group: proxyGroup,
                    logger: logger,
                    certificatePollInterval: certificatePollInterval,
                    accessLogWriter: accessLog,
                    metricsFactory: metricsFactory
                )
                break
            } catch StartupError.cannotListen where attempt < 2 {
                attempt += 1
            }
        }

        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(
            idleTimeout: .seconds(30),
            concurrentHTTP1ConnectionsPerHostSoftLimit: clientConnections
        )
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(30))
        configuration.decompression = .disabled
        // Redirects are what some tests check, not something to follow.
        configuration.redirectConfiguration = .disallow
        let client = HTTPClient(eventLoopGroup: sideGroup, configuration: configuration)
        return ProxyHarness(
            workers: workers,
            proxy: proxy,
            client: client,
            port: proxy.listeners[0].address.port!,
            proxyGroup: proxyGroup,
            sideGroup: sideGroup
        )
    }

    func shutdown() async throws {
        try await client.shutdown()
        await proxy.shutdown(gracePeriod: .seconds(1))
        try await proxyGroup.shutdownGracefully()
        for worker in workers { try await worker.shutdown() }
        try await sideGroup.shutdownGracefully()
    }

    /// Sends a GET (or, with a body, the given method) through the proxy.
    func send(_ path: String, headers: [(String, String)] = []) async throws -> CollectedResponse {
        try await send(.GET, path, headers: headers)
    }

    /// Sends a request through the proxy and collects the response.
    func send(
        _ method: HTTPMethod,
        _ path: String,
        headers: [(String, String)] = [],
        body: HTTPClientRequest.Body? = nil
    ) async throws -> CollectedResponse {
        try await client.send(method, url: "http://127.0.0.1:\(port)\(path)", headers: headers, body: body)
    }
}

/// Runs `body` with a started harness and always shuts it down.
func withProxy<Result>(
    workers: [WorkerBehaviour],
    proxyThreads: Int = 1,
    clientConnections: Int = 8,
    logs: LogCapture? = nil,
    accessLog: AccessLogWriter? = nil,
    metricsFactory: any MetricsFactory = NOOPMetricsHandler.instance,
    yaml: ([Int]) -> String,
    _ body: (ProxyHarness) async throws -> Result
) async throws -> Result {
    let harness = try await ProxyHarness.start(
        workers: workers,
        proxyThreads: proxyThreads,
        clientConnections: clientConnections,
        logs: logs,
        accessLog: accessLog,
        metricsFactory: metricsFactory,
        yaml: yaml
    )
    let outcome: Swift.Result<Result, any Error>
    do {
        outcome = .success(try await body(harness))
    } catch {
        outcome = .failure(error)
    }
    try await harness.shutdown()
    return try outcome.get()
}

/// An HTTP frontend and backend `app` over `appServers` (flow mappings), beside a `mode: tcp`
/// frontend on `tcpPort` and backend `raw` whose one server, `t1`, is on `rawPort`.
func httpAndTCPConfig(appServers: [String], tcpPort: Int, rawPort: Int) -> String {
    """
    global:
      workers: 1
      log: { level: warning, access: off }
    frontends:
      - name: web
        listen: ["127.0.0.1:8080"]
        default_backend: app
      - name: raw
        mode: tcp
        listen: ["127.0.0.1:\(tcpPort)"]
        default_backend: raw
    backends:
      - name: app
        servers:
    \(appServers.map { "      - \($0)" }.joined(separator: "\n"))
      - name: raw
        mode: tcp
        servers: [{ name: t1, address: "127.0.0.1:\(rawPort)" }]
    """
}

/// A one-frontend, one-backend configuration over `ports` (`serverExtra`: more of each
/// server's flow mapping, `", max_requests: 1"`).
func simpleConfig(
    _ ports: [Int],
    algorithm: String = "round_robin",
    weights: [Int]? = nil,
    retries: Int = 2,
    backendTimeouts: String = "{ connect: 1s, response: 5s }",
    frontendExtra: String = "",
    serverExtra: String = ""
) -> String {
    let servers = ports.enumerated().map { index, port in
        let weight = weights.map { ", weight: \($0[index])" } ?? ""
        return "      - { name: w\(index + 1), address: \"127.0.0.1:\(port)\"\(weight)\(serverExtra) }"
    }.joined(separator: "\n")
    return """
        global:
          workers: 1
          log: { level: warning, access: off }
        frontends:
          - name: test
            listen: ["127.0.0.1:8080"]
        \(frontendExtra)
            default_backend: app
        backends:
          - name: app
            algorithm: \(algorithm)
            retries: \(retries)
            timeouts: \(backendTimeouts)
            servers:
        \(servers)
        """
}

/// A port on which nothing listens (bound once, then closed).
/// A port on 127.0.0.1 that refuses connections for as long as the tests run: a socket is
/// bound to it and never listens, so a connection to it is refused, and no other test's server
/// can take it. Use it for a server that must not be reached. (`deadPort()` only finds a free
/// port; the next server bound anywhere may take it, and a test's "dead" server then answers,
/// as happened in CI.)
func refusingPort() throws -> Int {
    guard let port = RefusingPorts.hold(port: 0) else { throw RefusingPortUnavailable() }
    return port
}

/// Holds `port`, just freed by a server the test stopped, the same way, so that it keeps
/// refusing; false when another socket took it first.
@discardableResult
func holdRefusing(_ port: Int) -> Bool {
    RefusingPorts.hold(port: port) != nil
}

struct RefusingPortUnavailable: Error {}

/// The sockets of `refusingPort()`, open until the process ends.
private enum RefusingPorts {
    static let descriptors = NIOLockedValueBox<[Int32]>([])

    /// Binds a TCP socket to 127.0.0.1:`port` (0: any free port) without listening; returns
    /// the port, or nil.
    static func hold(port: Int) -> Int? {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard bound == 0, named == 0 else {
            close(descriptor)
            return nil
        }
        descriptors.withLockedValue { $0.append(descriptor) }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// A port that was free a moment ago, for something the test is about to bind (a listener).
func deadPort() throws -> Int {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { try? group.syncShutdownGracefully() }
    let channel = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
    let port = channel.localAddress!.port!
    try channel.close().wait()
    return port
}

/// A raw TCP client for sending exactly the bytes a test wants (malformed, trickled,
/// pipelined) and reading everything until the server closes or `timeout` passes.
enum RawClient {
    /// Sends each of `chunks` after waiting `pause` before it, then reads until the connection
    /// closes or `timeout` passes. Returns what was read and whether the server closed.
    static func exchange(
        port: Int,
        chunks: [String],
        pause: Duration = .zero,
        timeout: Duration = .seconds(5),
        halfClose: Bool = false
    ) async throws -> (response: String, closedByServer: Bool) {
        let group = MultiThreadedEventLoopGroup.singleton
        let collector = CollectingHandler.Box()
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(CollectingHandler(box: collector))
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .get()
        for chunk in chunks {
            if pause > .zero { try await Task.sleep(for: pause) }
            try? await channel.writeAndFlush(ByteBuffer(string: chunk)).get()
        }
        if halfClose { try? await channel.close(mode: .output).get() }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, !collector.closed {
            try await Task.sleep(for: .milliseconds(20))
        }
        let closed = collector.closed
        try? await channel.close().get()
        return (collector.text, closed)
    }
}

final class CollectingHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    final class Box: @unchecked Sendable {
        private let lock = NSLock()
        private var bytes: [UInt8] = []
        private var isClosed = false
        var text: String { lock.withLock { String(decoding: bytes, as: UTF8.self) } }
        var closed: Bool { lock.withLock { isClosed } }
        func append(_ buffer: ByteBuffer) { lock.withLock { bytes += buffer.readableBytesView } }
        func close() { lock.withLock { isClosed = true } }
    }

    let box: Box
    init(box: Box) { self.box = box }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        box.append(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        box.close()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // With half-closure allowed, the server closing shows up as the input closing.
        if event as? ChannelEvent == .inputClosed {
            box.close()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// A server that reads a request and closes the connection without answering: the request
/// reached a server, but no response byte came back.
final class HangUpServer: Sendable {
    let port: Int
    private let channel: any Channel
    private let connections = ManagedCounter()

    /// Connections accepted so far.
    var accepted: Int { connections.value }

    init() async throws {
        let counter = connections
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                counter.increment()
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(HangUpHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        port = channel.localAddress!.port!
    }

    func close() async throws {
        try await channel.close()
    }

    private final class HangUpHandler: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.close(promise: nil)
        }
    }
}

/// A thread-safe counter for test servers.
final class ManagedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func increment() { lock.withLock { count += 1 } }
}

extension ProxyHarness {
    /// Changes a worker's behaviour as an operator or script would: `POST /control` with a
    /// JSON body (`delay_ms`, `jitter_ms`, `error_rate`, `capacity`, `healthy`; missing keys get defaults).
    func control(worker index: Int, _ json: String) async throws {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(workers[index].port)/control")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: json))
        let response = try await client.execute(request, timeout: .seconds(5))
        _ = try await response.body.collect(upTo: 1 << 16)
        #expect(response.status == .ok, "POST /control \(json)")
    }

    /// The workers that answered `requests` GET /work requests in a row ("none" for a
    /// response without an X-Worker header, such as an error page).
    func workersServing(requests: Int) async throws -> [String] {
        var workers: [String] = []
        for _ in 0..<requests {
            workers.append(try await send("/work").worker ?? "none")
        }
        return workers
    }
}

/// Polls `condition` every 20 ms until it holds; records an issue if it does not within `timeout`.
func waitUntil(timeout: Duration, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("condition not met within \(timeout)")
}

/// Collects the proxy's log messages (warning and above), for tests that check what is logged.
final class LogCapture: Sendable {
    private let lines = NIOLockedValueBox<[String]>([])

    /// Every message so far, as `message key=value…`.
    var messages: [String] { lines.withLockedValue { $0 } }

    func handler() -> some LogHandler { Handler(capture: self) }

    private struct Handler: LogHandler {
        let capture: LogCapture
        var logLevel: Logger.Level = .warning
        var metadata: Logger.Metadata = [:]

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            let fields = all.keys.sorted().map { "\($0)=\(all[$0]!)" }.joined(separator: " ")
            capture.lines.withLockedValue { $0.append("\(event.message) \(fields)") }
        }
    }
}

extension Range where Bound == Int {
    /// Runs `body` for each value in turn.
    func asyncMap<T>(_ body: (Int) async throws -> T) async throws -> [T] {
        var results: [T] = []
        for value in self { results.append(try await body(value)) }
        return results
    }
}
