import CoreMetrics
import FulcrumBalancing
import FulcrumConfig
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL

/// Active health checks for every backend with a `health_check`.
///
/// Each server has its own probe loop on one of the event loops (spread round robin): a
/// `GET` of the check path on a fresh connection (`Connection: close`), or for a `mode: tcp`
/// backend a connect (and its `send` and `receive`, `TCPProbe`), at most one in flight (to an
/// `h2` or `h2c` server, the `GET` goes on a stream of an HTTP/2 connection of its own),
/// the next one `interval` (±10 %, so servers are not probed in lock step) after the last one
/// ended. Outcomes go through the server's `HealthTracker`; a transition flips the server's
/// health, which every algorithm honours, and is logged with its reason. A server that passive
/// outlier detection ejected comes back on the first passing check after its ejection is
/// over; a server in maintenance is not probed.
final class HealthChecker: Sendable {
    /// What a probe checks; a reload keeps a probe (and its rise/fall count) when this is unchanged.
    private struct ProbeKey: Equatable {
        let backend: String
        let server: ObjectIdentifier
        let serverConfig: ServerConfig
        let check: HealthCheckConfig
    }

    private let eventLoops: [any EventLoop]
    private let metricsFactory: any MetricsFactory
    private let logger: Logger
    private let probes = NIOLockedValueBox<[(key: ProbeKey, probe: NIOLoopBoundBox<ServerProbe>)]>([])
    private let nextLoop = NIOLockedValueBox(0)

    init(eventLoops: [any EventLoop], metricsFactory: any MetricsFactory, logger: Logger) {
        self.eventLoops = eventLoops
        self.metricsFactory = metricsFactory
        self.logger = logger
    }

    /// Probes the servers of `snapshot`: keeps the probes of servers whose check is unchanged,
    /// stops those of servers that left (or whose check did), starts new ones. A kept server
    /// that loses its health check is put back up (nothing would ever bring it back).
    func update(to snapshot: RuntimeSnapshot) {
        var wanted: [(key: ProbeKey, runtime: RuntimeBackend, index: Int)] = []
        var unchecked: [BalancedServer] = []
        for (runtime, config) in zip(snapshot.backends, snapshot.config.backends) {
            for (index, server) in runtime.servers.enumerated() {
                guard let check = config.healthCheck else {
                    unchecked.append(server)
                    continue
                }
                let key = ProbeKey(
                    backend: runtime.name,
                    server: ObjectIdentifier(server),
                    serverConfig: config.servers[index],
                    check: check
                )
                wanted.append((key, runtime, index))
            }
        }
        // (A linear search: a reload is rare, and backends have tens of servers, not thousands.)
        let (stopped, started) = probes.withLockedValue { probes in
            let stopped = probes.filter { probe in !wanted.contains { $0.key == probe.key } }.map(\.probe)
            probes.removeAll { probe in !wanted.contains { $0.key == probe.key } }
            var started: [NIOLoopBoundBox<ServerProbe>] = []
            for (key, runtime, index) in wanted where !probes.contains(where: { $0.key == key }) {
                let eventLoop = nextEventLoop()
                let probe = ServerProbe(
                    backend: runtime.name,
                    server: runtime.servers[index],
                    serverIndex: index,
                    outlierDetector: runtime.outlierDetector,
                    address: runtime.addresses[index],
                    tls: runtime.tls[index],
                    // The probe is Fulcrum's own connection: v2 LOCAL, v1 UNKNOWN (HAProxy's
                    // `check-send-proxy` names the check's own addresses instead; a server
                    // then logs them as a client's).
                    proxyHeader: runtime.sendProxy[index].map { ProxyProtocolHeader().encoded($0) },
                    tcp: runtime.mode == .tcp ? TCPProbe(send: key.check.send, receive: key.check.receive) : nil,
                    http2: runtime.protocols[index].isHTTP2,
                    grpc: key.check.grpc,
                    hostHeader: runtime.addressDescriptions[index],
                    check: key.check,
                    eventLoop: eventLoop,
                    metricsFactory: metricsFactory,
                    logger: logger
                )
                // Built here, used only on its loop from now on.
                let box = NIOLoopBoundBox.makeBoxSendingValue(probe, eventLoop: eventLoop)
                probes.append((key, box))
                started.append(box)
            }
            return (stopped, started)
        }
        for probe in stopped {
            probe.eventLoop.execute { probe.value.stop() }
        }
        for probe in started {
            probe.eventLoop.execute { probe.value.scheduleNext(firstProbe: true) }
        }
        for server in unchecked where !server.isHealthy {
            server.setHealthy(true)
        }
    }

    private func nextEventLoop() -> any EventLoop {
        nextLoop.withLockedValue { next in
            defer { next += 1 }
            return eventLoops[next % eventLoops.count]
        }
    }

    /// Stops probing; a probe in flight finishes without effect.
    func stop() async {
        let all = probes.withLockedValue { probes in
            defer { probes = [] }
            return probes.map(\.probe)
        }
        for probe in all {
            try? await probe.eventLoop.submit { probe.value.stop() }.get()
        }
    }
}

/// One server's probe loop. Lives on `eventLoop` only.
private final class ServerProbe {
    private let backend: String
    private let server: BalancedServer
    private let serverIndex: Int
    private let outlierDetector: OutlierDetector?
    private let address: SocketAddress
    /// Probes of an HTTPS server go over TLS, verified like its traffic.
    private let tls: BackendTLS?
    /// What the server's connections begin with (`send_proxy`), if anything.
    private let proxyHeader: ByteBuffer?
    /// A `mode: tcp` server's probe, instead of the HTTP request.
    private let tcp: TCPProbe?
    /// The server speaks HTTP/2 (`h2`, `h2c`): the request goes on a stream.
    private let http2: Bool
    /// The probe is `grpc.health.v1.Health/Check` (`GRPCHealthProbe`).
    private let grpc: Bool
    private let hostHeader: String
    private let check: HealthCheckConfig
    private let eventLoop: any EventLoop
    private let logger: Logger
    private let passed: Counter
    private let failed: Counter
    private var tracker: HealthTracker
    private var next: Scheduled<Void>?
    private var stopped = false

    init(
        backend: String,
        server: BalancedServer,
        serverIndex: Int,
        outlierDetector: OutlierDetector?,
        address: SocketAddress,
        tls: BackendTLS?,
        proxyHeader: ByteBuffer?,
        tcp: TCPProbe?,
        http2: Bool,
        grpc: Bool,
        hostHeader: String,
        check: HealthCheckConfig,
        eventLoop: any EventLoop,
        metricsFactory: any MetricsFactory,
        logger: Logger
    ) {
        self.backend = backend
        self.server = server
        self.serverIndex = serverIndex
        self.outlierDetector = outlierDetector
        self.address = address
        self.tls = tls
        self.proxyHeader = proxyHeader
        self.tcp = tcp
        self.http2 = http2
        self.grpc = grpc
        self.hostHeader = hostHeader
        self.check = check
        self.eventLoop = eventLoop
        self.logger = logger
        func counter(_ result: String) -> Counter {
            Counter(
                label: "fulcrum_health_check_total",
                dimensions: [("backend", backend), ("server", server.name), ("result", result)],
                factory: metricsFactory
            )
        }
        self.passed = counter("pass")
        self.failed = counter("fail")
        // A server that was down under an earlier probe (a reload changed its check) stays
        // down until this one sees it pass `rise` times.
        self.tracker = HealthTracker(rise: check.rise, fall: check.fall, isUp: server.isHealthy)
    }

    func scheduleNext(firstProbe: Bool = false) {
        guard !stopped else { return }
        let interval = TimeAmount(check.interval).nanoseconds
        // The first probe of each server at a random point of the first interval; later ones ±10 %.
        let delay =
            firstProbe
            ? Int64.random(in: 0...interval)
            : interval + Int64.random(in: -(interval / 10)...(interval / 10))
        next = eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(delay)) { [self] in
            probe()
        }
    }

    func stop() {
        stopped = true
        next?.cancel()
        next = nil
    }

    private func probe() {
        guard !stopped else { return }
        guard server.adminState != .maintenance else {
            scheduleNext()
            return
        }
        let result = eventLoop.makePromise(of: HTTPResponseStatus.self)
        let timeout = TimeAmount(check.timeout)
        let request = HTTPRequestHead(
            version: .http1_1,
            method: .GET,
            uri: check.path,
            headers: ["Host": hostHeader, "User-Agent": "fulcrum-health-check", "Connection": "close"]
        )
        let deadline = eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            result.fail(ProbeFailure.timeout)
        }
        let (tls, proxyHeader, tcp, http2, grpc, hostHeader) = (self.tls, self.proxyHeader, self.tcp, self.http2, self.grpc, self.hostHeader)
        let connectOnly = tcp?.connectsOnly ?? false
        ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard !connectOnly else { return }
                    if let proxyHeader {
                        try channel.pipeline.syncOperations.addHandler(ProxyProtocolSender(header: proxyHeader))
                    }
                    if let tcp {
                        let exchanged = channel.eventLoop.makePromise(of: Void.self)
                        exchanged.futureResult.map { HTTPResponseStatus.ok }.cascade(to: result)
                        try channel.pipeline.syncOperations.addHandler(TCPProbeHandler(probe: tcp, result: exchanged))
                        return
                    }
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: tls.context, serverHostname: tls.serverName)
                        )
                        if http2 {
                            // A server that does not agree to h2 fails the probe, saying so.
                            let handshake = channel.eventLoop.makePromise(of: Void.self)
                            handshake.futureResult.whenFailure { result.fail($0) }
                            try channel.pipeline.syncOperations.addHandler(TLSHandshakeWatcher(handshake: handshake, requiresHTTP2: true))
                        }
                    }
                    if http2 {
                        // The request goes on a stream once connected (`sendHTTP2Probe`).
                        _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                            mode: .client,
                            connectionConfiguration: HTTP2ConnectionSet.connectionConfiguration,
                            streamConfiguration: HTTP2ConnectionSet.streamConfiguration
                        ) { pushed in pushed.close() }
                        return
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ProbeHandler(request: request, result: result))
                }
            }
            .connect(to: address)
            .whenComplete { outcome in
                switch outcome {
                case .success(let channel):
                    // Whatever the outcome, this connection has served its purpose.
                    result.futureResult.whenComplete { _ in channel.close(promise: nil) }
                    if connectOnly { result.succeed(.ok) }
                    if http2 {
                        do {
                            try Self.sendHTTP2Probe(on: channel, secure: tls != nil) {
                                grpc
                                    ? GRPCHealthProbe(authority: hostHeader, result: result) as any ChannelHandler
                                    : ProbeHandler(request: request, result: result)
                            }
                        } catch {
                            result.fail(error)
                        }
                    }
                case .failure(let error):
                    result.fail(error)
                }
            }
        result.futureResult.assumeIsolated().whenComplete { [self] outcome in
            deadline.cancel()
            guard !stopped else { return }
            switch outcome {
            case .success where grpc:
                record(success: true, reason: "SERVING")
            case .success where tcp != nil:
                let reason = tcp?.receive != nil ? "the expected reply arrived" : connectOnly ? "connected" : "connected and sent"
                record(success: true, reason: reason)
            case .success(let status) where check.expect.contains(Int(status.code)):
                record(success: true, reason: "status \(status.code)")
            case .success(let status):
                record(success: false, reason: "status \(status.code)")
            case .failure(ProbeFailure.timeout):
                record(success: false, reason: "no answer within \(check.timeout)")
            case .failure(let error):
                record(success: false, reason: describeNetworkError(error))
            }
            scheduleNext()
        }
    }

    /// Opens a stream of the HTTP/2 connection `channel` for the probe `makeProbe` makes, which
    /// sends the request.
    private static func sendHTTP2Probe(
        on channel: any Channel,
        secure: Bool,
        makeProbe: @escaping @Sendable () -> any ChannelHandler
    ) throws {
        let multiplexer = try channel.pipeline.syncOperations.handler(type: NIOHTTP2Handler.self).syncMultiplexer()
        let scheme: HTTP2FramePayloadToHTTP1ClientCodec.HTTPProtocol = secure ? .https : .http
        multiplexer.createStreamChannel(promise: nil) { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandlers([
                    HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: scheme),
                    makeProbe(),
                ])
            }
        }
    }

    private func record(success: Bool, reason: String) {
        (success ? passed : failed).increment()
        let metadata: Logger.Metadata = ["backend": "\(backend)", "server": "\(server.name)", "reason": "\(reason)"]
        switch tracker.record(success: success) {
        case .wentDown?:
            server.setHealthy(false)
            logger.warning("server down: health check failed \(check.fall) time(s) in a row", metadata: metadata)
        case .cameUp?:
            server.setHealthy(true)
            logger.notice("server up: health check passed \(check.rise) time(s) in a row", metadata: metadata)
        case nil:
            logger.debug("health check \(success ? "passed" : "failed")", metadata: metadata)
        }
        if success, let outlierDetector,
            outlierDetector.returnIfOver(serverIndex: serverIndex, now: NIODeadline.now().uptimeNanoseconds)
        {
            logger.notice("server back in rotation: ejection over and health check passed", metadata: metadata)
        }
    }
}

private enum ProbeFailure: Error {
    case timeout
}

/// Sends the probe request and reports the response's status (then the caller closes).
private final class ProbeHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let request: HTTPRequestHead
    private let result: EventLoopPromise<HTTPResponseStatus>

    init(request: HTTPRequestHead, result: EventLoopPromise<HTTPResponseStatus>) {
        self.request = request
        self.result = result
    }

    func channelActive(context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(request)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data), head.status.code >= 200 {
            result.succeed(head.status)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        result.fail(ChannelError.eof)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        result.fail(error)
        context.close(promise: nil)
    }
}
