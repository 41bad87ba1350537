import CoreMetrics
import FulcrumACME
import FulcrumBalancing
import FulcrumConfig
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// The running data plane: one listening socket per frontend address, serving HTTP/1.1 and
/// HTTP/2 on the event loops of `group` from the current `RuntimeSnapshot`.
///
/// Each event loop keeps its own `LoopContext` (snapshot, algorithm instances, connection
/// pools); a client connection and every backend connection it uses stay on one loop.
/// `reload(to:)` replaces the configuration while it serves: see there.
///
/// It is a swift-service-lifecycle `Service` (`run()`), as HummingbirdCore's `Server` is, with
/// an explicit `LifecycleState`: `start` returns it running (listening, so a caller can read
/// its ports), `run()` serves until a graceful shutdown, and `shutdown(gracePeriod:)` drains.
package final class ProxyServer: ProxyControl, Service {
    /// Where the server is in its life; reloads are refused once it is shutting down.
    package enum LifecycleState: Sendable, Equatable {
        case running
        case shuttingDown
        case shutDown
    }

    /// A bound listening socket.
    package struct Listener: Sendable {
        package let frontend: String
        package let address: SocketAddress
    }

    /// What a reload replaces, as one value.
    struct Running: Sendable {
        var snapshot: RuntimeSnapshot
        var listeners: [ProxyListener]
        /// One per TLS frontend, by frontend name, watching its certificate directory.
        var certificateStores: [String: CertificateStore]
        /// What the servers' names resolved to last (what `snapshot.config` was expanded with).
        var discovered: DiscoveredServers
    }

    let group: any EventLoopGroup
    let loops: [NIOLoopBound<LoopContext>]
    let contexts: LoopContextTable
    let logger: Logger
    let certificatePollInterval: Duration
    let running: NIOLockedValueBox<Running>
    /// Quiescing helpers of listeners that were closed, held until their connections drained.
    /// Released by `shutdown()`: a helper must be deallocated while its event loop still runs
    /// (its deinit completes a promise on that loop).
    let retiredHelpers = NIOLockedValueBox<[ServerQuiescingHelper]>([])
    /// Keeps the idle connections parked outside their channels.
    let lot: ParkingLot
    let adaptive: AdaptiveController
    let slowStart: SlowStartTicker
    /// Operators' runtime algorithms of backends that are not `adaptive`, by backend name
    /// (`ProxyServer+Algorithms.swift`).
    let algorithmChoices = NIOLockedValueBox<[String: AlgorithmName]>([:])
    let healthChecker: HealthChecker
    private let crawlerVerifier: CrawlerVerifier
    let listenerEvents: ListenerEventCounts
    let connectionLimits: ConnectionLimitTable
    /// Reloads run one at a time.
    let reloads = SerialAsyncGate()
    /// The HTTP-01 answers ACME orders wait on, served by the plain HTTP frontends.
    let challenges: HTTP01Challenges
    /// Resolves the servers' names, and follows them (`ProxyServer+Discovery.swift`).
    let discovery: ServerDiscovery
    /// Asks DNS again as names fall due, until shutdown.
    let followingDNS = NIOLockedValueBox<Task<Void, Never>?>(nil)
    private let state = NIOLockedValueBox(LifecycleState.running)

    package var lifecycleState: LifecycleState { state.withLockedValue { $0 } }

    private init(
        group: any EventLoopGroup,
        running: Running,
        loops: [NIOLoopBound<LoopContext>],
        contexts: LoopContextTable,
        adaptive: AdaptiveController,
        slowStart: SlowStartTicker,
        healthChecker: HealthChecker,
        crawlerVerifier: CrawlerVerifier,
        listenerEvents: ListenerEventCounts,
        connectionLimits: ConnectionLimitTable,
        lot: ParkingLot,
        certificatePollInterval: Duration,
        discovery: ServerDiscovery,
        challenges: HTTP01Challenges,
        logger: Logger
    ) {
        self.challenges = challenges
        self.discovery = discovery
        self.lot = lot
        self.crawlerVerifier = crawlerVerifier
        self.listenerEvents = listenerEvents
        self.connectionLimits = connectionLimits
        self.group = group
        self.running = NIOLockedValueBox(running)
        self.loops = loops
        self.contexts = contexts
        self.adaptive = adaptive
        self.slowStart = slowStart
        self.healthChecker = healthChecker
        self.certificatePollInterval = certificatePollInterval
        self.logger = logger
    }

    /// The snapshot the loops serve (what `stats()` and `setServerState` look servers up in).
    var snapshot: RuntimeSnapshot { running.withLockedValue { $0.snapshot } }

    /// The configuration being served as written (the last one a reload applied), before
    /// DNS replaced its names with servers.
    package var config: Config { snapshot.declared }

    /// Every bound listening socket (none after `shutdown`).
    package var listeners: [Listener] {
        running.withLockedValue { running in
            running.listeners.map { Listener(frontend: $0.binding.frontend, address: $0.boundAddress) }
        }
    }

    /// Compiles `config`, binds every frontend's addresses and starts serving.
    ///
    /// - Throws: when an address cannot be resolved or bound; nothing is left listening then.
    /// - Parameters:
    ///   - certificatePollInterval: how often TLS frontends look for changed certificate files.
    ///   - accessLogWriter: where access-log lines go when `global.log.access` is on (default:
    ///     standard output).
    ///   - metricsFactory: where control-plane events are counted (health checks, algorithm
    ///     switches); the hot path counts per loop instead (`traffic()`).
    package static func start(
        config: Config,
        group: any EventLoopGroup,
        logger: Logger,
        certificatePollInterval: Duration = .seconds(2),
        accessLogWriter: AccessLogWriter? = nil,
        metricsFactory: any MetricsFactory = NOOPMetricsHandler.instance
    ) async throws -> ProxyServer {
        // Server names are asked over UDP, without blocking; reading certificate files blocks:
        // NIO's thread pool for blocking work does that, not an event loop or the cooperative pool.
        let discovery = ServerDiscovery(config.global.dns, group: group, logger: logger)
        let discovered = try await discovery.resolveAll(config, last: DiscoveredServers())
        let challenges = HTTP01Challenges()
        let (snapshot, certificateStores, store) = try await NIOThreadPool.singleton.runIfActive {
            let snapshot = try RuntimeSnapshot(config: config.expandingServers(with: discovered), declared: config, challenges: challenges)
            let stores = try makeCertificateStores(
                for: config,
                reusing: [:],
                challenges: challenges,
                logger: logger,
                pollInterval: certificatePollInterval
            )
            return (snapshot, stores, try config.global.store.map(SharedLimitStoreSetup.init))
        }
        let accessLog = config.global.log.access == .off ? nil : accessLogWriter ?? AccessLogWriter()

        let crawlerVerifier = CrawlerVerifier()
        var loops: [NIOLoopBound<LoopContext>] = []
        for eventLoop in group.makeIterator() {
            loops.append(
                try await eventLoop.submit {
                    NIOLoopBound(
                        LoopContext(
                            eventLoop: eventLoop,
                            snapshot: snapshot,
                            accessLog: accessLog,
                            crawlerVerifier: crawlerVerifier,
                            store: store,
                            logger: logger
                        ),
                        eventLoop: eventLoop
                    )
                }.get()
            )
        }
        let contexts = LoopContextTable(loops)
        let listenerEvents = ListenerEventCounts()
        let connectionLimits = ConnectionLimitTable(descriptorLimit: DescriptorLimit.current)
        logger.info("connection cap", metadata: ["max_connections": "\(connectionLimits.globalCap(for: config))"])
        let lot = try ParkingLot()
        let listeners: [ProxyListener]
        do {
            listeners = try await bindListeners(
                for: config,
                keeping: [],
                certificateStores: certificateStores,
                limits: connectionLimits.update(to: config),
                events: listenerEvents,
                lot: lot,
                group: group,
                contexts: contexts,
                logger: logger
            ).added
        } catch {
            lot.stop()
            throw error
        }
        for listener in listeners { try await listener.startAccepting() }

        let adaptive = AdaptiveController(snapshot: snapshot, loops: loops, metricsFactory: metricsFactory, logger: logger)
        adaptive.start()
        let slowStart = SlowStartTicker(eventLoop: loops[0].eventLoop, snapshot: snapshot)
        slowStart.start()
        let healthChecker = HealthChecker(eventLoops: loops.map(\.eventLoop), metricsFactory: metricsFactory, logger: logger)
        healthChecker.update(to: snapshot)
        for store in certificateStores.values { store.startWatching() }
        let server = ProxyServer(
            group: group,
            running: Running(snapshot: snapshot, listeners: listeners, certificateStores: certificateStores, discovered: discovered),
            loops: loops,
            contexts: contexts,
            adaptive: adaptive,
            slowStart: slowStart,
            healthChecker: healthChecker,
            crawlerVerifier: crawlerVerifier,
            listenerEvents: listenerEvents,
            connectionLimits: connectionLimits,
            lot: lot,
            certificatePollInterval: certificatePollInterval,
            discovery: discovery,
            challenges: challenges,
            logger: logger
        )
        server.startFollowingDNS()
        return server
    }

    /// The port a frontend listens on (its first address), for tests and the demo.
    package func port(ofFrontend name: String) -> Int? {
        listeners.first { $0.frontend == name }?.address.port
    }

    /// Requests, bytes and durations per frontend, backend and server since start, and client
    /// connections open now, summed over every event loop.
    package func traffic() async throws -> TrafficSnapshot {
        var total = TrafficSnapshot()
        for loop in loops {
            total.add(try await loop.eventLoop.submit { loop.value.traffic.snapshot() }.get())
        }
        total.listenerEvents = listenerEvents.snapshot
        // Parked connections are open, just not channels (`ParkingLot`).
        for (frontend, parked) in lot.parkedPerFrontend {
            total.activeConnections[frontend, default: 0] += parked
            total.parkedConnections[frontend] = parked
        }
        return total
    }

    /// Backend connections each backend's servers have had opened, summed over all loops.
    package func backendConnectionsOpened() async throws -> [String: [String: Int]] {
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
    package func requestsInFlight() async throws -> [String: [String: Int]] {
        var counts: [String: [String: Int]] = [:]
        for backend in snapshot.backends {
            for server in backend.servers { counts[backend.name, default: [:]][server.name] = server.inFlight }
        }
        return counts
    }

    /// Every backend's servers with their state and live numbers, merged from all event loops.
    package func stats() async throws -> [BackendStats] {
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
                var stats = ServerStats(
                    name: server.name,
                    address: backend.addressDescriptions[index],
                    protocol: backend.mode == .tcp ? "tcp" : backend.protocols[index].rawValue,
                    state: server.state,
                    weight: server.weight,
                    inFlight: server.inFlight,
                    // A TCP connection holds its server connection for its whole life.
                    connectionsOpen: backend.mode == .tcp ? server.inFlight : connections,
                    metrics: metrics
                )
                stats.stickyValue = backend.sticky?.values[index]
                stats.rampPercent = server.rampPercent
                stats.limit = server.limit
                return stats
            }
            let algorithm = activeAlgorithm(of: backend)
            var stats = BackendStats(
                name: backend.name,
                mode: backend.mode.rawValue,
                configuredAlgorithm: backend.algorithm.rawValue,
                algorithm: algorithm.rawValue,
                servers: servers
            )
            stats.sticky = backend.sticky.map { ($0.name, $0.mode.rawValue) }
            stats.queue = backend.queue.map { queue in
                var stats = queue.stats
                stats.max = backend.queueSettings.max
                stats.timeout = backend.queueSettings.timeout
                return stats
            }
            return stats
        }
    }

    /// Drains a server, puts it in maintenance, or makes it ready again (`AdminState`).
    /// False when there is no such backend or server.
    @discardableResult
    package func setServerState(_ state: AdminState, backend: String, server: String) -> Bool {
        guard let runtime = snapshot.backends.first(where: { $0.name == backend }),
            let index = runtime.serverIndex(named: server)
        else { return false }
        let target = runtime.servers[index]
        guard target.adminState != state else { return true }
        target.setAdminState(state)
        logger.notice(
            "server set to \(state.rawValue) by an operator",
            metadata: ["backend": "\(backend)", "server": "\(server)", "state": "\(target.state.rawValue)"]
        )
        return true
    }

    /// Serves until a graceful shutdown (SIGTERM or SIGINT in a `ServiceGroup`) or until the
    /// task is cancelled, then drains for `global.grace_period`.
    package func run() async throws {
        // Returns on a graceful shutdown, throws on cancellation: either way, drain.
        try? await gracefulShutdown()
        await shutdown(gracePeriod: config.global.gracePeriod)
    }

    /// Stops accepting, lets requests in flight finish for at most `gracePeriod`, then returns.
    /// Connections still open then are closed when the event loop group shuts down. Only the
    /// first call drains; later ones return at once.
    package func shutdown(gracePeriod: Duration) async {
        let first = state.withLockedValue { state in
            guard state == .running else { return false }
            state = .shuttingDown
            return true
        }
        guard first else { return }
        defer { state.withLockedValue { $0 = .shutDown } }
        logger.info("shutting down", metadata: ["grace_period": "\(gracePeriod)"])
        adaptive.stop()
        slowStart.stop()
        followingDNS.withLockedValue { $0?.cancel() }
        await healthChecker.stop()
        let listeners = running.withLockedValue { running in
            for store in running.certificateStores.values { store.stopWatching() }
            return running.listeners
        }
        let eventLoop = loops[0].eventLoop
        let drained: [EventLoopFuture<Void>] = listeners.flatMap { listener in
            let promise = listener.channel.eventLoop.makePromise(of: Void.self)
            listener.quiescing.initiateShutdown(promise: promise)
            // Parked connections are idle: they close now. Those that came back from the lot
            // are not the server channel's, and drain apart.
            let resumed = listener.channel.eventLoop.makePromise(of: Void.self)
            listener.parking.close(drained: resumed)
            return [promise.futureResult, resumed.futureResult]
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
        // The quiescing helpers go now, while their event loops still run.
        running.withLockedValue { $0.listeners = [] }
        retiredHelpers.withLockedValue { $0 = [] }
        lot.stop()
        crawlerVerifier.shutdown()
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
