import FulcrumBalancing

/// The live numbers of one backend's servers, merged from every event loop
/// (`ProxyServer.stats()`), for the admin API, the dashboard and tests.
public struct BackendStats: Sendable {
    public let name: String
    /// The algorithm in the configuration (`adaptive` included).
    public let configuredAlgorithm: String
    /// The algorithm picking now (for `adaptive`, the one the engine chose).
    public let algorithm: String
    public let servers: [ServerStats]
}

/// One server's live numbers.
public struct ServerStats: Sendable {
    public let name: String
    /// `host:port` as configured.
    public let address: String
    public let state: ServerState
    public let weight: Int
    /// Requests sent to the server that have not finished.
    public let inFlight: Int
    /// Connections to the server open now, idle and busy.
    public let connectionsOpen: Int
    /// Totals since the server was configured, and the sliding window (rates, error rate,
    /// response-time EWMA and percentiles).
    public let metrics: ServerMetricsSnapshot
}
