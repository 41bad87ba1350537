import FulcrumBalancing
import FulcrumConfig
import Logging
import NIOCore

/// Everything one event loop owns: the snapshot it currently serves, and per backend the
/// loop's own algorithm instance, retry budget, connection pools and live metrics.
///
/// Only ever touched on `eventLoop`, which is why none of it is locked. A new snapshot is
/// installed by a task on the loop; connections notice it at their next request boundary.
final class LoopContext {
    let eventLoop: any EventLoop
    private(set) var snapshot: RuntimeSnapshot
    private(set) var backends: [LoopBackend] = []
    /// Pools by server identity, so a server kept across a reload keeps its connections.
    private var poolsByServer: [ObjectIdentifier: BackendConnectionPool] = [:]
    /// Live metrics by server identity, kept across reloads like the pools.
    private var metricsByServer: [ObjectIdentifier: ServerMetrics] = [:]
    let accessLog: AccessLogBuffer?
    /// Requests, bytes, durations and client connections seen on this loop (for `/metrics`).
    let traffic = TrafficCounters()
    /// Client and server flushes held until the loop has handled its current I/O events.
    let flushes: DeferredFlushes
    let logger: Logger
    /// Confirms crawlers by DNS for the anti-bot shield (one for the whole server).
    let crawlerVerifier: CrawlerVerifier
    /// Where shared rate limits are decided (`global.store`, read at start); nil: nowhere, and
    /// a shared limit counts here alone.
    let sharedLimits: SharedLimitStore?

    init(
        eventLoop: any EventLoop,
        snapshot: RuntimeSnapshot,
        accessLog: AccessLogWriter?,
        crawlerVerifier: CrawlerVerifier,
        store: SharedLimitStoreSetup? = nil,
        logger: Logger
    ) {
        self.eventLoop = eventLoop
        self.crawlerVerifier = crawlerVerifier
        self.sharedLimits = store?.makeStore(on: eventLoop, counters: traffic, logger: logger)
        self.snapshot = snapshot
        self.flushes = DeferredFlushes(eventLoop: eventLoop)
        self.logger = logger
        let format = snapshot.config.global.log.access
        self.accessLog = accessLog.map { AccessLogBuffer(writer: $0, format: format, eventLoop: eventLoop) }
        install(snapshot)
    }

    /// Switches to `snapshot`. Pools of servers that left are closed once idle.
    /// `algorithmChoices`: operators' runtime algorithms, by backend name.
    func install(_ snapshot: RuntimeSnapshot, algorithmChoices: [String: AlgorithmName] = [:]) {
        var pools: [ObjectIdentifier: BackendConnectionPool] = [:]
        var metrics: [ObjectIdentifier: ServerMetrics] = [:]
        var backends: [LoopBackend] = []
        for backend in snapshot.backends {
            var backendPools: [BackendConnectionPool] = []
            var backendMetrics: [ServerMetrics] = []
            for (index, server) in backend.servers.enumerated() {
                let key = ObjectIdentifier(server)
                let serverMetrics = metricsByServer[key] ?? ServerMetrics()
                metrics[key] = serverMetrics
                backendMetrics.append(serverMetrics)
                let pool: BackendConnectionPool
                if let existing = poolsByServer[key] {
                    existing.update(address: backend.addresses[index], tls: backend.tls[index], index: index, backend: backend)
                    pool = existing
                } else {
                    pool = BackendConnectionPool(
                        eventLoop: eventLoop,
                        server: server,
                        address: backend.addresses[index],
                        tls: backend.tls[index],
                        index: index,
                        backend: backend
                    )
                }
                pools[key] = pool
                backendPools.append(pool)
            }
            let earlier = self.backends.first { $0.runtime.name == backend.name }
            backends.append(
                LoopBackend(
                    runtime: backend,
                    pools: backendPools,
                    metrics: backendMetrics,
                    previous: earlier,
                    algorithmChoice: algorithmChoices[backend.name]
                )
            )
        }
        for (key, pool) in poolsByServer where pools[key] == nil {
            pool.retire()
        }
        self.poolsByServer = pools
        self.metricsByServer = metrics
        self.backends = backends
        self.snapshot = snapshot
    }

    /// Closes every idle backend connection (shutdown).
    func closeIdleConnections() {
        for pool in poolsByServer.values { pool.closeIdleConnections() }
    }

    /// Closes this loop's adaptive window for `backend` (nil if it is not adaptive here).
    func closeAdaptiveWindow(backend name: String) -> [ServerWindowCounts]? {
        guard let backend = backends.first(where: { $0.runtime.name == name }),
            let adaptive = backend.algorithm as? AdaptiveAlgorithm
        else { return nil }
        return adaptive.closeWindow()
    }

    /// Makes `backend` pick with `algorithm` from its next pick on: an adaptive backend's
    /// engine chose it, or an operator did.
    func useAlgorithm(_ algorithm: AlgorithmName, backend name: String) {
        guard let backend = backends.first(where: { $0.runtime.name == name }) else { return }
        if let adaptive = backend.algorithm as? AdaptiveAlgorithm {
            adaptive.use(algorithm)
        } else {
            backend.use(algorithm)
        }
    }

    /// What one loop saw of one server: its live metrics and the connections its pool holds.
    typealias ServerReading = (metrics: ServerMetricsSnapshot, connectionsOpen: Int)

    /// This loop's readings per backend and server name.
    func serverMetrics(now: UInt64) -> [String: [String: ServerReading]] {
        var result: [String: [String: ServerReading]] = [:]
        for backend in backends {
            var servers: [String: ServerReading] = [:]
            for (pool, metrics) in zip(backend.pools, backend.metrics) {
                servers[pool.server.name] = (metrics.snapshot(now: now), pool.openConnections)
            }
            result[backend.runtime.name] = servers
        }
        return result
    }

    /// Acts on what passive outlier detection decided about `backend.servers[index]`: logs it,
    /// and without health checks schedules the server's return for when its ejection is over.
    func outlierVerdict(_ verdict: OutlierDetector.Verdict, backend: RuntimeBackend, serverIndex index: Int) {
        let metadata: Logger.Metadata = ["backend": "\(backend.name)", "server": "\(backend.servers[index].name)"]
        guard let detector = backend.outlierDetector else { return }
        switch verdict {
        case .spared(let reason):
            logger.warning(
                "server not ejected after \(detector.settings.consecutiveFailures) failures in a row: \(reason)",
                metadata: metadata
            )
        case .ejected(let nanoseconds, let count):
            let seconds = Double(nanoseconds) / 1e9
            let returning = backend.hasHealthCheck ? "then back on a passing health check" : "then back"
            logger.warning(
                "server ejected: \(detector.settings.consecutiveFailures) failures in a row; out for \(seconds) s (ejection \(count) in a row), \(returning)",
                metadata: metadata
            )
            guard !backend.hasHealthCheck else { return }
            let logger = self.logger
            eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(nanoseconds)) {
                if detector.returnIfOver(serverIndex: index, now: NIODeadline.now().uptimeNanoseconds) {
                    logger.notice("server back in rotation: ejection over", metadata: metadata)
                }
            }
        }
    }

    /// Backend connections opened so far by this loop, per backend and server name.
    func connectionCounts() -> [String: [String: Int]] {
        var counts: [String: [String: Int]] = [:]
        for backend in backends {
            for pool in backend.pools {
                counts[backend.runtime.name, default: [:]][pool.server.name, default: 0] += pool.connectionsOpened
            }
        }
        return counts
    }
}

/// A backend as one event loop uses it: the shared description, plus this loop's algorithm
/// instance and retry budget, and per server a connection pool and live metrics (same
/// indices as `runtime.servers`).
final class LoopBackend {
    let runtime: RuntimeBackend
    /// The configured algorithm's instance, or that of an operator's choice (`use`).
    private(set) var algorithm: any LoadBalancingAlgorithm
    let pools: [BackendConnectionPool]
    let metrics: [ServerMetrics]
    var retryBudget: RetryBudget
    /// Per server, this loop's traffic counters for the frontend that last sent it a request:
    /// found by index instead of hashing three names per request (1 % of the instructions
    /// per request).
    private var trafficCells: [(frontend: String, cell: TrafficCounters.Cell)?]

    /// - Parameters:
    ///   - previous: this loop's backend of the same name before a reload. When it had the
    ///     same servers (identical objects, same order) and algorithm, its algorithm instance
    ///     and retry budget carry over (a rotation continues, latency estimates stay warm); an
    ///     adaptive backend keeps picking with what the engine chose, whatever else changed.
    ///   - algorithmChoice: an operator's runtime algorithm, in place of the configured one.
    init(
        runtime: RuntimeBackend,
        pools: [BackendConnectionPool],
        metrics: [ServerMetrics],
        previous: LoopBackend? = nil,
        algorithmChoice: AlgorithmName? = nil
    ) {
        self.runtime = runtime
        self.pools = pools
        self.metrics = metrics
        self.trafficCells = Array(repeating: nil, count: runtime.servers.count)
        let algorithmName = algorithmChoice ?? runtime.algorithm
        if let previous, previous.runtime.algorithm == runtime.algorithm, previous.algorithm.name == algorithmName,
            previous.runtime.hashBalanceFactor == runtime.hashBalanceFactor,
            previous.runtime.servers.elementsEqual(runtime.servers, by: ===),
            previous.runtime.retryBudget == runtime.retryBudget
        {
            self.algorithm = previous.algorithm
            self.retryBudget = previous.retryBudget
        } else {
            self.algorithm = makeAlgorithm(algorithmName, hashBalanceFactor: runtime.hashBalanceFactor)
            self.retryBudget = RetryBudget(ratio: runtime.retryBudget.ratio, minimumPerSecond: runtime.retryBudget.minPerSecond)
            if let before = previous?.algorithm as? AdaptiveAlgorithm, let now = algorithm as? AdaptiveAlgorithm {
                now.use(before.current.name)
            }
        }
    }
}

extension LoopBackend {
    /// Picks with `name` from the next pick on (an operator's choice, or the configured
    /// algorithm again): a new instance, unless it is the one in use.
    func use(_ name: AlgorithmName) {
        guard runtime.algorithm != .adaptive, algorithm.name != name else { return }
        algorithm = makeAlgorithm(name, hashBalanceFactor: runtime.hashBalanceFactor)
    }

    /// The traffic counters of `frontend`'s requests to server `serverIndex`.
    func trafficCell(serverIndex: Int, frontend: String, in counters: TrafficCounters) -> TrafficCounters.Cell {
        if let cached = trafficCells[serverIndex], cached.frontend == frontend {
            return cached.cell
        }
        let key = TrafficCounters.Key(frontend: frontend, backend: runtime.name, server: runtime.servers[serverIndex].name)
        let cell = counters.cell(for: key)
        trafficCells[serverIndex] = (frontend, cell)
        return cell
    }
}
