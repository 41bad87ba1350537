import FulcrumBalancing
import FulcrumConfig
import NIOCore

/// Why an operator's algorithm was not taken (`ProxyServer.setAlgorithm`).
package enum AlgorithmChoiceError: Error, Equatable {
    case unknownBackend
    /// `adaptive` is chosen in the configuration, with its engine's settings.
    case adaptiveAtRunTime
    /// A `mode: tcp` backend has no responses to time (`AlgorithmName.worksWithoutResponses`).
    case needsResponseTimes
}

/// Which algorithm each backend picks with, and how operators change it at run time.
///
/// Any backend can be switched through the admin API (`PUT /api/backends/{b}/algorithm`):
/// an `adaptive` one is pinned to the choice (its engine stops switching), any other one picks
/// with it instead of its configured algorithm. Either way the choice is runtime state, like a
/// drained server: it holds until `resetAlgorithm` (`DELETE`), and across reloads that keep
/// the backend and its configured algorithm (a new algorithm in the file is the newer intent,
/// and wins). A switch replaces each loop's algorithm instance between two picks: a request in
/// flight keeps the server it has.
extension ProxyServer {
    // MARK: Every backend

    /// The configured backends' names, in file order.
    package var backendNames: [String] { snapshot.backends.map(\.name) }

    /// What `backend` picks with now: for `adaptive`, the engine's (or the operator's) choice;
    /// otherwise the operator's, or the configured algorithm.
    func activeAlgorithm(of backend: RuntimeBackend) -> AlgorithmName {
        adaptive.algorithm(of: backend.name) ?? algorithmChoices.withLockedValue { $0[backend.name] } ?? backend.algorithm
    }

    /// Whether an operator's choice holds the backend's algorithm: a pinned `adaptive` one, or
    /// any other switched at run time. Nil when there is no such backend.
    package func isAlgorithmPinned(ofBackend backend: String) -> Bool? {
        if let pinned = adaptive.isPinned(backend) { return pinned }
        guard backendNames.contains(backend) else { return nil }
        return algorithmChoices.withLockedValue { $0[backend] != nil }
    }

    /// Makes `backend` pick with `algorithm` until `resetAlgorithm`, on every event loop
    /// before it returns. An `adaptive` backend is pinned to it.
    package func setAlgorithm(_ algorithm: AlgorithmName, forBackend backend: String) async throws(AlgorithmChoiceError) {
        guard let runtime = snapshot.backends.first(where: { $0.name == backend }) else { throw .unknownBackend }
        guard algorithm != .adaptive else { throw .adaptiveAtRunTime }
        guard runtime.mode != .tcp || algorithm.worksWithoutResponses else { throw .needsResponseTimes }
        if runtime.algorithm == .adaptive {
            _ = adaptive.select(algorithm, backend: backend, pin: true)
            return
        }
        let previous = activeAlgorithm(of: runtime)
        algorithmChoices.withLockedValue { $0[backend] = algorithm }
        await useOnEveryLoop(algorithm, backend: backend)
        logger.notice(
            "backend algorithm set to \(algorithm.rawValue) by an operator",
            metadata: ["backend": "\(backend)", "from": "\(previous.rawValue)", "configured": "\(runtime.algorithm.rawValue)"]
        )
    }

    /// Returns `backend` to its configured algorithm (an `adaptive` one to its engine's
    /// choices). False when there is no such backend.
    @discardableResult
    package func resetAlgorithm(forBackend backend: String) async -> Bool {
        guard let runtime = snapshot.backends.first(where: { $0.name == backend }) else { return false }
        if runtime.algorithm == .adaptive { return adaptive.unpin(backend: backend) }
        let removed = algorithmChoices.withLockedValue { $0.removeValue(forKey: backend) }
        guard removed != nil else { return true }
        await useOnEveryLoop(runtime.algorithm, backend: backend)
        logger.notice("backend algorithm back to its configured \(runtime.algorithm.rawValue) by an operator", metadata: ["backend": "\(backend)"])
        return true
    }

    private func useOnEveryLoop(_ algorithm: AlgorithmName, backend: String) async {
        for loop in loops {
            try? await loop.eventLoop.submit { loop.value.useAlgorithm(algorithm, backend: backend) }.get()
        }
    }

    /// The operators' choices a reload keeps: those of backends that stay, with the same
    /// configured algorithm, where the choice still applies (its mode may have changed).
    func keepAlgorithmChoices(from old: RuntimeSnapshot, to new: RuntimeSnapshot) -> [String: AlgorithmName] {
        algorithmChoices.withLockedValue { choices in
            choices = choices.filter { name, algorithm in
                guard let before = old.backends.first(where: { $0.name == name }),
                    let after = new.backends.first(where: { $0.name == name })
                else { return false }
                return before.algorithm == after.algorithm && after.algorithm != algorithm
                    && (after.mode != .tcp || algorithm.worksWithoutResponses)
            }
            return choices
        }
    }

    // MARK: Adaptive backends

    /// The algorithm an `adaptive` backend picks with now; nil for other backends.
    package func currentAlgorithm(ofBackend backend: String) -> AlgorithmName? {
        adaptive.algorithm(of: backend)
    }

    /// The decision engine's recent decisions for an `adaptive` backend, oldest first (at most
    /// 100); nil for other backends.
    package func adaptiveDecisions(ofBackend backend: String) -> [AdaptiveDecision]? {
        adaptive.decisions(of: backend)
    }

    /// The decision engine's recent switches for an `adaptive` backend, oldest first (at most
    /// 100); nil for other backends.
    package func adaptiveSwitches(ofBackend backend: String) -> [AdaptiveDecision]? {
        adaptive.switches(of: backend)
    }

    /// Switches an `adaptive` backend's algorithm by hand; `pin` keeps the engine from
    /// switching it until `unpinAlgorithm`. False when the backend is not adaptive or the
    /// algorithm is `.adaptive`.
    @discardableResult
    package func selectAlgorithm(_ algorithm: AlgorithmName, forBackend backend: String, pin: Bool) -> Bool {
        adaptive.select(algorithm, backend: backend, pin: pin)
    }

    /// Lets the decision engine choose again for an `adaptive` backend.
    @discardableResult
    package func unpinAlgorithm(forBackend backend: String) -> Bool {
        adaptive.unpin(backend: backend)
    }
}
