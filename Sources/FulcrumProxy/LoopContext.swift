import FulcrumConfig
import FulcrumBalancing
import NIOCore

/// Everything one event loop owns: the snapshot it currently serves, and per backend the
/// loop's own algorithm instance and connection pools.
///
/// Only ever touched on `eventLoop`, which is why none of it is locked. A new snapshot is
/// installed by a task on the loop; connections notice it at their next request boundary.
final class LoopContext {
    let eventLoop: any EventLoop
    private(set) var snapshot: RuntimeSnapshot
    private(set) var backends: [LoopBackend] = []
    /// Pools by server identity, so a server kept across a reload keeps its connections.
    private var poolsByServer: [ObjectIdentifier: BackendConnectionPool] = [:]
    let accessLog: AccessLogBuffer?

    init(eventLoop: any EventLoop, snapshot: RuntimeSnapshot, accessLog: AccessLogWriter?) {
        self.eventLoop = eventLoop
        self.snapshot = snapshot
        let format = snapshot.config.global.log.access
        self.accessLog = accessLog.map { AccessLogBuffer(writer: $0, format: format, eventLoop: eventLoop) }
        install(snapshot)
    }

    /// Switches to `snapshot`. Pools of servers that left are closed once idle.
    func install(_ snapshot: RuntimeSnapshot) {
        var pools: [ObjectIdentifier: BackendConnectionPool] = [:]
        var backends: [LoopBackend] = []
        for backend in snapshot.backends {
            var backendPools: [BackendConnectionPool] = []
            for (index, server) in backend.servers.enumerated() {
                let key = ObjectIdentifier(server)
                let pool: BackendConnectionPool
                if let existing = poolsByServer[key] {
                    existing.update(address: backend.addresses[index], backend: backend)
                    pool = existing
                } else {
                    pool = BackendConnectionPool(
                        eventLoop: eventLoop,
                        server: server,
                        address: backend.addresses[index],
                        backend: backend
                    )
                }
                pools[key] = pool
                backendPools.append(pool)
            }
            backends.append(LoopBackend(runtime: backend, pools: backendPools))
        }
        for (key, pool) in poolsByServer where pools[key] == nil {
            pool.closeIdleConnections()
        }
        self.poolsByServer = pools
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
              let adaptive = backend.algorithm as? AdaptiveAlgorithm else { return nil }
        return adaptive.closeWindow()
    }

    /// Makes an adaptive backend pick with `algorithm` from now on.
    func useAlgorithm(_ algorithm: AlgorithmName, backend name: String) {
        guard let backend = backends.first(where: { $0.runtime.name == name }),
              let adaptive = backend.algorithm as? AdaptiveAlgorithm else { return }
        adaptive.use(algorithm)
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
/// instance and one connection pool per server (same indices as `runtime.servers`).
final class LoopBackend {
    let runtime: RuntimeBackend
    let algorithm: any LoadBalancingAlgorithm
    let pools: [BackendConnectionPool]

    init(runtime: RuntimeBackend, pools: [BackendConnectionPool]) {
        self.runtime = runtime
        self.algorithm = makeAlgorithm(runtime.algorithm)
        self.pools = pools
    }
}
