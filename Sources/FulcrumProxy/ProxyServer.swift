import FulcrumBalancing
import FulcrumConfig
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The running data plane: one listening socket per frontend address, serving HTTP/1.1 and
/// HTTP/2 on the event loops of `group` from the current `RuntimeSnapshot`.
///
/// Each event loop keeps its own `LoopContext` (snapshot, algorithm instances, connection
/// pools); a client connection and every backend connection it uses stay on one loop.
public final class ProxyServer: Sendable {
    /// A bound listening socket.
    public struct Listener: Sendable {
        public let frontend: String
        public let address: SocketAddress
        let channel: any Channel
    }

    public let listeners: [Listener]
    private let loops: [NIOLoopBound<LoopContext>]
    private let logger: Logger
    /// One per listener. Released by `shutdown()`: a helper must be deallocated while its event
    /// loop still runs (its deinit completes a promise on that loop).
    private let quiescingHelpers: NIOLockedValueBox<[ServerQuiescingHelper]>
    private let adaptive: AdaptiveController
    private let healthChecker: HealthChecker
    /// One per TLS frontend, watching its certificate directory.
    private let certificateStores: [CertificateStore]
    /// The snapshot the loops serve (what `stats()` and `setServerState` look servers up in).
    private let snapshot: RuntimeSnapshot

    private init(
        snapshot: RuntimeSnapshot,
        certificateStores: [CertificateStore],
        listeners: [Listener],
        quiescingHelpers: [ServerQuiescingHelper],
        loops: [NIOLoopBound<LoopContext>],
        adaptive: AdaptiveController,
        healthChecker: HealthChecker,
        logger: Logger
    ) {
        self.snapshot = snapshot
        self.certificateStores = certificateStores
        self.healthChecker = healthChecker
        self.listeners = listeners
        self.quiescingHelpers = NIOLockedValueBox(quiescingHelpers)
        self.loops = loops
        self.adaptive = adaptive
        self.logger = logger
    }

    /// Compiles `config`, binds every frontend's addresses and starts serving.
    ///
    /// - Throws: when an address cannot be resolved or bound; nothing is left listening then.
    /// - Parameters:
    ///   - certificatePollInterval: how often TLS frontends look for changed certificate files.
    ///   - accessLogWriter: where access-log lines go when `global.log.access` is on (default:
    ///     standard output).
    public static func start(
        config: Config,
        group: any EventLoopGroup,
        logger: Logger,
        certificatePollInterval: Duration = .seconds(2),
        accessLogWriter: AccessLogWriter? = nil
    ) async throws -> ProxyServer {
        let snapshot = try RuntimeSnapshot(config: config)
        var certificateStores: [String: CertificateStore] = [:]
        for frontend in config.frontends {
            guard let tls = frontend.tls else { continue }
            certificateStores[frontend.name] = try CertificateStore(
                frontend: frontend.name,
                tls: tls,
                logger: logger,
                pollInterval: certificatePollInterval
            )
        }
        let accessLog = config.global.log.access == .off ? nil : accessLogWriter ?? AccessLogWriter()

        var loops: [NIOLoopBound<LoopContext>] = []
        for eventLoop in group.makeIterator() {
            loops.append(try await eventLoop.submit {
                NIOLoopBound(
                    LoopContext(eventLoop: eventLoop, snapshot: snapshot, accessLog: accessLog, logger: logger),
                    eventLoop: eventLoop
                )
            }.get())
        }
        let contexts = LoopContextTable(loops)

        var listeners: [Listener] = []
        var helpers: [ServerQuiescingHelper] = []
        do {
            for frontend in config.frontends {
                for address in frontend.listen {
                    let quiescing = ServerQuiescingHelper(group: group)
                    let channel: any Channel
                    do {
                        channel = try await bind(
                            frontend: frontend,
                            certificates: certificateStores[frontend.name],
                            address: address,
                            group: group,
                            contexts: contexts,
                            quiescing: quiescing
                        )
                    } catch {
                        throw StartupError.cannotListen(
                            frontend: frontend.name,
                            address: address.description,
                            reason: describeNetworkError(error)
                        )
                    }
                    listeners.append(Listener(frontend: frontend.name, address: channel.localAddress!, channel: channel))
                    helpers.append(quiescing)
                    logger.info("listening", metadata: ["frontend": "\(frontend.name)", "address": "\(address)"])
                }
            }
        } catch {
            for listener in listeners { try? await listener.channel.close() }
            throw error
        }
        let adaptive = AdaptiveController(snapshot: snapshot, loops: loops, logger: logger)
        adaptive.start()
        let healthChecker = HealthChecker(snapshot: snapshot, eventLoops: loops.map(\.eventLoop), logger: logger)
        healthChecker.start()
        for store in certificateStores.values { store.startWatching() }
        return ProxyServer(
            snapshot: snapshot,
            certificateStores: Array(certificateStores.values),
            listeners: listeners,
            quiescingHelpers: helpers,
            loops: loops,
            adaptive: adaptive,
            healthChecker: healthChecker,
            logger: logger
        )
    }

    private static func bind(
        frontend: FrontendConfig,
        certificates: CertificateStore?,
        address: ListenAddress,
        group: any EventLoopGroup,
        contexts: LoopContextTable,
        quiescing: ServerQuiescingHelper
    ) async throws -> any Channel {
        var decoderLimits = NIOHTTPDecoderLimitConfiguration()
        decoderLimits.maxHeaderListSize = frontend.limits.maxHeaderBytes
        decoderLimits.maxHeaderFieldSize = frontend.limits.maxHeaderBytes
        let clientPipeline = ClientPipeline(
            frontendName: frontend.name,
            isSecure: certificates != nil,
            clientIdle: TimeAmount(frontend.timeouts.clientIdle),
            headerRead: TimeAmount(frontend.timeouts.headerRead),
            decoderLimits: decoderLimits,
            maxConcurrentStreams: frontend.limits.maxConcurrentStreams,
            negotiatesHTTP2: frontend.tls?.alpn.contains("h2") ?? false,
            acceptsPriorKnowledge: frontend.h2c
        )

        return try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiescing.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            // A client that half-closes after its request still gets the response.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let certificates {
                        // Replaced by the TLS handler once the client's hello names a host.
                        try channel.pipeline.syncOperations.addHandler(certificates.makeSNIHandler(channel: channel))
                    }
                    try clientPipeline.configure(channel: channel, loop: contexts.context(for: channel.eventLoop))
                }
            }
            .bind(host: address.host, port: address.port)
            .get()
    }

    /// The port a frontend listens on (its first address), for tests and the demo.
    public func port(ofFrontend name: String) -> Int? {
        listeners.first { $0.frontend == name }?.address.port
    }

    /// Backend connections each backend's servers have had opened, summed over all loops.
    public func backendConnectionsOpened() async throws -> [String: [String: Int]] {
        var total: [String: [String: Int]] = [:]
        for loop in loops {
            let counts = try await loop.eventLoop.submit { loop.value.connectionCounts() }.get()
            for (backend, servers) in counts {
                for (server, count) in servers { total[backend, default: [:]][server, default: 0] += count }
            }
        }
        return total
    }

    /// Requests in flight per backend and server, across all event loops.
    public func requestsInFlight() async throws -> [String: [String: Int]] {
        var counts: [String: [String: Int]] = [:]
        for backend in snapshot.backends {
            for server in backend.servers { counts[backend.name, default: [:]][server.name] = server.inFlight }
        }
        return counts
    }

    /// Every backend's servers with their state and live numbers, merged from all event loops.
    public func stats() async throws -> [BackendStats] {
        let now = NIODeadline.now().uptimeNanoseconds
        var perLoop: [[String: [String: LoopContext.ServerReading]]] = []
        for loop in loops {
            perLoop.append(try await loop.eventLoop.submit { loop.value.serverMetrics(now: now) }.get())
        }
        return snapshot.backends.map { backend in
            let servers = backend.servers.enumerated().map { index, server in
                var metrics = ServerMetricsSnapshot()
                var connections = 0
                for loop in perLoop {
                    guard let seen = loop[backend.name]?[server.name] else { continue }
                    metrics.merge(seen.metrics)
                    connections += seen.connectionsOpen
                }
                return ServerStats(
                    name: server.name,
                    address: backend.addressDescriptions[index],
                    state: server.state,
                    weight: server.weight,
                    inFlight: server.inFlight,
                    connectionsOpen: connections,
                    metrics: metrics
                )
            }
            let algorithm = adaptive.algorithm(of: backend.name) ?? backend.algorithm
            return BackendStats(
                name: backend.name,
                configuredAlgorithm: backend.algorithm.rawValue,
                algorithm: algorithm.rawValue,
                servers: servers
            )
        }
    }

    /// Drains a server, puts it in maintenance, or makes it ready again (`AdminState`).
    /// False when there is no such backend or server.
    @discardableResult
    public func setServerState(_ state: AdminState, backend: String, server: String) -> Bool {
        guard let runtime = snapshot.backends.first(where: { $0.name == backend }),
              let index = runtime.serverIndex(named: server) else { return false }
        let target = runtime.servers[index]
        guard target.adminState != state else { return true }
        target.setAdminState(state)
        logger.notice(
            "server set to \(state.rawValue) by an operator",
            metadata: ["backend": "\(backend)", "server": "\(server)", "state": "\(target.state.rawValue)"]
        )
        return true
    }

    // MARK: Adaptive backends

    /// The algorithm an `adaptive` backend picks with now; nil for other backends.
    public func currentAlgorithm(ofBackend backend: String) -> AlgorithmName? {
        adaptive.algorithm(of: backend)
    }

    /// The configured backends' names, in file order.
    public var backendNames: [String] { snapshot.backends.map(\.name) }

    /// Whether an operator pinned an `adaptive` backend's algorithm; nil for other backends.
    public func isAlgorithmPinned(ofBackend backend: String) -> Bool? {
        adaptive.isPinned(backend)
    }

    /// The decision engine's recent decisions for an `adaptive` backend, oldest first (at most
    /// 100); nil for other backends.
    public func adaptiveDecisions(ofBackend backend: String) -> [AdaptiveDecision]? {
        adaptive.decisions(of: backend)
    }

    /// The decision engine's recent switches for an `adaptive` backend, oldest first (at most
    /// 100); nil for other backends.
    public func adaptiveSwitches(ofBackend backend: String) -> [AdaptiveDecision]? {
        adaptive.switches(of: backend)
    }

    /// Switches an `adaptive` backend's algorithm by hand; `pin` keeps the engine from
    /// switching it until `unpinAlgorithm`. False when the backend is not adaptive or the
    /// algorithm is `.adaptive`.
    @discardableResult
    public func selectAlgorithm(_ algorithm: AlgorithmName, forBackend backend: String, pin: Bool) -> Bool {
        adaptive.select(algorithm, backend: backend, pin: pin)
    }

    /// Lets the decision engine choose again for an `adaptive` backend.
    @discardableResult
    public func unpinAlgorithm(forBackend backend: String) -> Bool {
        adaptive.unpin(backend: backend)
    }

    /// Stops accepting, lets requests in flight finish for at most `gracePeriod`, then returns.
    /// Connections still open then are closed when the event loop group shuts down.
    public func shutdown(gracePeriod: Duration) async {
        logger.info("shutting down", metadata: ["grace_period": "\(gracePeriod)"])
        adaptive.stop()
        await healthChecker.stop()
        for store in certificateStores { store.stopWatching() }
        let helpers = quiescingHelpers.withLockedValue { helpers in
            defer { helpers = [] }
            return helpers
        }
        let eventLoop = loops[0].eventLoop
        let drained: [EventLoopFuture<Void>] = zip(listeners, helpers).map { listener, helper in
            let promise = listener.channel.eventLoop.makePromise(of: Void.self)
            helper.initiateShutdown(promise: promise)
            return promise.futureResult
        }
        // Whichever comes first, the drain or the end of the grace period, completes `outcome`;
        // both run on `eventLoop`, so the flag needs no lock.
        let outcome = eventLoop.makePromise(of: Bool.self)
        let completed = NIOLoopBoundBox.makeBoxSendingValue(false, eventLoop: eventLoop)
        EventLoopFuture.andAllComplete(drained, on: eventLoop).whenComplete { _ in
            if !completed.value {
                completed.value = true
                outcome.succeed(true)
            }
        }
        let deadline = eventLoop.scheduleTask(in: TimeAmount(gracePeriod)) {
            if !completed.value {
                completed.value = true
                outcome.succeed(false)
            }
        }
        let finished = (try? await outcome.futureResult.get()) ?? false
        deadline.cancel()
        if !finished {
            logger.warning("grace period over; requests still in flight will be cut off")
        }
        for loop in loops {
            try? await loop.eventLoop.submit { loop.value.closeIdleConnections() }.get()
        }
    }
}

/// Finds the `LoopContext` of an event loop when a connection is accepted (once per
/// connection, never per request).
final class LoopContextTable: Sendable {
    private let contexts: [ObjectIdentifier: NIOLoopBound<LoopContext>]

    init(_ loops: [NIOLoopBound<LoopContext>]) {
        var contexts: [ObjectIdentifier: NIOLoopBound<LoopContext>] = [:]
        for loop in loops { contexts[ObjectIdentifier(loop.eventLoop)] = loop }
        self.contexts = contexts
    }

    func context(for eventLoop: any EventLoop) -> LoopContext {
        contexts[ObjectIdentifier(eventLoop)]!.value
    }
}
