import FulcrumBalancing
import FulcrumConfig

/// What the control plane — the admin API, the metrics exporter, configuration reloads — may
/// read from and ask of a running proxy.
///
/// `ProxyServer` implements it; FulcrumAdmin knows only this protocol, so its tests run
/// against a fake in milliseconds, with no socket and no event loop.
package protocol ProxyControl: Sendable {
    /// The configuration the proxy runs now.
    var config: Config { get }
    /// The configured backends' names, in file order.
    var backendNames: [String] { get }

    /// Applies a validated configuration without dropping a connection.
    func reload(to config: Config) async throws -> ReloadSummary

    /// Requests, bytes and durations per frontend, backend and server since start, and client
    /// connections open now.
    func traffic() async throws -> TrafficSnapshot
    /// Every backend's servers with their state and live numbers.
    func stats() async throws -> [BackendStats]

    /// Drains a server, puts it in maintenance, or makes it ready again. False when there is
    /// no such backend or server.
    @discardableResult
    func setServerState(_ state: AdminState, backend: String, server: String) -> Bool

    /// The algorithm an `adaptive` backend picks with now; nil for other backends.
    func currentAlgorithm(ofBackend backend: String) -> AlgorithmName?
    /// Whether an operator's choice holds the backend's algorithm (a pinned `adaptive` one, or
    /// any other switched at run time); nil when there is no such backend.
    func isAlgorithmPinned(ofBackend backend: String) -> Bool?
    /// The decision engine's recent decisions for an `adaptive` backend, oldest first; nil
    /// for other backends.
    func adaptiveDecisions(ofBackend backend: String) -> [AdaptiveDecision]?
    /// Switches an `adaptive` backend's algorithm by hand; `pin` keeps the engine from
    /// switching it until `unpinAlgorithm`. False when the backend is not adaptive.
    @discardableResult
    func selectAlgorithm(_ algorithm: AlgorithmName, forBackend backend: String, pin: Bool) -> Bool
    /// Lets the decision engine choose again for an `adaptive` backend.
    @discardableResult
    func unpinAlgorithm(forBackend backend: String) -> Bool
    /// Makes any backend pick with `algorithm` until `resetAlgorithm` (an `adaptive` one is
    /// pinned to it), on every event loop before it returns.
    func setAlgorithm(_ algorithm: AlgorithmName, forBackend backend: String) async throws(AlgorithmChoiceError)
    /// Returns a backend to its configured algorithm; false when there is no such backend.
    @discardableResult
    func resetAlgorithm(forBackend backend: String) async -> Bool
}
