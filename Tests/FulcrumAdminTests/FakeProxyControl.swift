import FulcrumBalancing
import FulcrumConfig
import FulcrumProxy
import Synchronization

/// A `ProxyControl` with no proxy behind it: it holds a configuration and server states,
/// answers from them, and records what it was asked to do.
final class FakeProxyControl: ProxyControl {
    struct Recorded {
        var config: Config
        var states: [String: ServerState] = [:]
        var algorithm: AlgorithmName = .peakEWMA
        var pinned = false
        var reloads: [Config] = []
        var selections: [(AlgorithmName, pin: Bool)] = []
        /// Runtime algorithms of the backends that are not adaptive.
        var choices: [String: AlgorithmName] = [:]
    }

    let recorded: Mutex<Recorded>

    init(yaml: String = FakeProxyControl.yaml) throws {
        recorded = Mutex(Recorded(config: try ConfigLoader.load(yaml: yaml)))
    }

    /// Two backends: `app` (adaptive, servers w1 and w2) and `static` (round robin, one server).
    static let yaml = """
        global:
          workers: 1
        frontends:
          - name: web
            listen: ["127.0.0.1:8080"]
            default_backend: app
        backends:
          - name: app
            algorithm: adaptive
            servers:
              - { name: w1, address: "127.0.0.1:9001" }
              - { name: w2, address: "127.0.0.1:9002" }
          - name: static
            algorithm: round_robin
            servers:
              - { name: s1, address: "127.0.0.1:9003" }
        """

    var config: Config { recorded.withLock { $0.config } }
    var backendNames: [String] { config.backends.map(\.name) }

    func reload(to config: Config) async throws -> ReloadSummary {
        recorded.withLock {
            $0.reloads.append(config)
            $0.config = config
        }
        return ReloadSummary()
    }

    func traffic() async throws -> TrafficSnapshot {
        TrafficSnapshot(activeConnections: ["web": 3])
    }

    func stats() async throws -> [BackendStats] {
        recorded.withLock { recorded in
            recorded.config.backends.map { backend in
                BackendStats(
                    name: backend.name,
                    configuredAlgorithm: backend.algorithm.rawValue,
                    algorithm: backend.algorithm == .adaptive
                        ? recorded.algorithm.rawValue : (recorded.choices[backend.name] ?? backend.algorithm).rawValue,
                    servers: backend.servers.map { server in
                        ServerStats(
                            name: server.name,
                            address: "\(server.address)",
                            state: recorded.states["\(backend.name)/\(server.name)"] ?? .up,
                            weight: server.weight,
                            inFlight: 1,
                            connectionsOpen: 2,
                            metrics: ServerMetricsSnapshot()
                        )
                    }
                )
            }
        }
    }

    func setServerState(_ state: AdminState, backend: String, server: String) -> Bool {
        guard config.backends.first(where: { $0.name == backend })?.servers.contains(where: { $0.name == server }) == true else {
            return false
        }
        let serverState: ServerState =
            switch state {
            case .ready: .up
            case .drain: .draining
            case .maintenance: .maintenance
            }
        recorded.withLock { $0.states["\(backend)/\(server)"] = serverState }
        return true
    }

    private func isAdaptive(_ backend: String) -> Bool {
        config.backends.first { $0.name == backend }?.algorithm == .adaptive
    }

    func currentAlgorithm(ofBackend backend: String) -> AlgorithmName? {
        isAdaptive(backend) ? recorded.withLock { $0.algorithm } : nil
    }

    func isAlgorithmPinned(ofBackend backend: String) -> Bool? {
        guard backendNames.contains(backend) else { return nil }
        let adaptive = isAdaptive(backend)
        return recorded.withLock { adaptive ? $0.pinned : $0.choices[backend] != nil }
    }

    func adaptiveDecisions(ofBackend backend: String) -> [AdaptiveDecision]? {
        isAdaptive(backend) ? [] : nil
    }

    func selectAlgorithm(_ algorithm: AlgorithmName, forBackend backend: String, pin: Bool) -> Bool {
        guard isAdaptive(backend) else { return false }
        recorded.withLock {
            $0.algorithm = algorithm
            $0.pinned = pin
            $0.selections.append((algorithm, pin))
        }
        return true
    }

    func unpinAlgorithm(forBackend backend: String) -> Bool {
        guard isAdaptive(backend) else { return false }
        recorded.withLock { $0.pinned = false }
        return true
    }

    func setAlgorithm(_ algorithm: AlgorithmName, forBackend backend: String) async throws(AlgorithmChoiceError) {
        guard backendNames.contains(backend) else { throw .unknownBackend }
        guard algorithm != .adaptive else { throw .adaptiveAtRunTime }
        if isAdaptive(backend) {
            _ = selectAlgorithm(algorithm, forBackend: backend, pin: true)
        } else {
            recorded.withLock { $0.choices[backend] = algorithm }
        }
    }

    func resetAlgorithm(forBackend backend: String) async -> Bool {
        guard backendNames.contains(backend) else { return false }
        if isAdaptive(backend) { return unpinAlgorithm(forBackend: backend) }
        recorded.withLock { $0.choices[backend] = nil }
        return true
    }
}
