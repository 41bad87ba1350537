import FulcrumConfig

/// `algorithm: adaptive` on one event loop: picks with whichever algorithm the decision
/// engine chose last, and counts what each server did in the current window for the next
/// evaluation.
///
/// The engine runs elsewhere (`AdaptiveEngine` is a pure function; the proxy's controller
/// calls it every `evaluate_every`), collects `closeWindow()` from every loop, and tells
/// each loop the outcome with `use(_:)`. Picks, observations and switches all happen on the
/// owning loop, so nothing here is locked.
///
/// Not thread-safe: one instance per event loop.
public final class AdaptiveAlgorithm: LoadBalancingAlgorithm {
    public var name: AlgorithmName { .adaptive }
    /// The algorithm picks are delegated to.
    public private(set) var current: any LoadBalancingAlgorithm
    private var counts: [ServerWindowCounts] = []
    /// The server list of the latest pick, to read in-flight counts when a response is observed.
    private var servers: [BalancedServer] = []

    public init(initial: AlgorithmName = .roundRobin) {
        precondition(initial != .adaptive)
        current = makeAlgorithm(initial)
    }

    /// Switches the algorithm used for new picks.
    public func use(_ algorithm: AlgorithmName) {
        guard algorithm != .adaptive, algorithm != current.name else { return }
        current = makeAlgorithm(algorithm)
    }

    /// The window's counts per server index, and a fresh window from now.
    public func closeWindow() -> [ServerWindowCounts] {
        defer { counts = [] }
        return counts
    }

    public func pick(from servers: [BalancedServer], excluding excluded: ServerIndexSet) -> Int? {
        self.servers = servers
        return current.pick(from: servers, excluding: excluded)
    }

    public var observesResponses: Bool { true }

    public func observe(serverIndex: Int, responseNanoseconds: Int64, failed: Bool, now: UInt64) {
        guard serverIndex >= 0 else { return }
        if serverIndex >= counts.count {
            counts.append(contentsOf: repeatElement(ServerWindowCounts(), count: serverIndex + 1 - counts.count))
        }
        let inFlight = serverIndex < servers.count ? servers[serverIndex].inFlight : 0
        counts[serverIndex].record(responseNanoseconds: responseNanoseconds, failed: failed, inFlight: inFlight)
        if current.observesResponses {
            current.observe(serverIndex: serverIndex, responseNanoseconds: responseNanoseconds, failed: failed, now: now)
        }
    }
}

// Per-event-loop state without synchronisation: must not cross threads.
@available(*, unavailable)
extension AdaptiveAlgorithm: Sendable {}
