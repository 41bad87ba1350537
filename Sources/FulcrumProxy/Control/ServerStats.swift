import FulcrumBalancing

/// The live numbers of one backend's servers, merged from every event loop
/// (`ProxyServer.stats()`), for the admin API, the dashboard and tests.
package struct BackendStats: Sendable {
    package let name: String
    /// `http` or `tcp`.
    package let mode: String
    /// The algorithm in the configuration (`adaptive` included).
    package let configuredAlgorithm: String
    /// The algorithm picking now (for `adaptive`, the one the engine chose).
    package let algorithm: String
    package let servers: [ServerStats]
    /// `sticky`: the cookie's name and mode (`insert`, `prefix`); nil without it.
    package var sticky: (cookie: String, mode: String)?
    /// The queue, when a server has a limit; nil otherwise.
    package var queue: QueueStats?

    package init(name: String, mode: String = "http", configuredAlgorithm: String, algorithm: String, servers: [ServerStats]) {
        self.name = name
        self.mode = mode
        self.configuredAlgorithm = configuredAlgorithm
        self.algorithm = algorithm
        self.servers = servers
    }
}

/// One server's live numbers.
package struct ServerStats: Sendable {
    package let name: String
    /// `host:port` as configured.
    package let address: String
    /// How requests reach it: `http1`, `h2` or `h2c` (`tcp` in a TCP backend).
    package let `protocol`: String
    package let state: ServerState
    package let weight: Int
    /// Requests sent to the server that have not finished.
    package let inFlight: Int
    /// Connections to the server open now, idle and busy.
    package let connectionsOpen: Int
    /// Totals since the server was configured, and the sliding window (rates, error rate,
    /// response-time EWMA and percentiles).
    package let metrics: ServerMetricsSnapshot
    /// With `sticky`: the value of the cookie that binds a client to this server.
    package var stickyValue: String?
    /// While a slow start ramps the server up: how far, in percent of its weight.
    package var rampPercent: Int?
    /// The requests it may have in flight at once (`max_requests`, `max_connections`).
    package var limit: Int?

    package init(
        name: String,
        address: String,
        protocol: String = "http1",
        state: ServerState,
        weight: Int,
        inFlight: Int,
        connectionsOpen: Int,
        metrics: ServerMetricsSnapshot
    ) {
        self.name = name
        self.address = address
        self.protocol = `protocol`
        self.state = state
        self.weight = weight
        self.inFlight = inFlight
        self.connectionsOpen = connectionsOpen
        self.metrics = metrics
    }
}

/// A backend's queue (`BackendQueue`): what waits now, and what waited since it was created.
package struct QueueStats: Sendable {
    package var length = 0
    package var max = 0
    package var timeout: Duration = .zero
    /// Requests that waited and then went to a server.
    package var served = 0
    /// Requests that waited `timeout` and got 503.
    package var timedOut = 0
    /// Requests that found the queue full and got 503 at once.
    package var rejected = 0
    /// Time the served requests waited, in all.
    package var waitedNanoseconds: Int64 = 0

    package init() {}
}
