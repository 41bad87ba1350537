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
/// The latency-aware candidates are kept warm: they observe every response even while another
/// algorithm picks, so a switch to one of them steers by what was measured up to that moment
/// instead of starting blind (which would keep sending a share of requests to the slow server
/// the switch was about).
///
/// Not thread-safe: one instance per event loop.
public final class AdaptiveAlgorithm: LoadBalancingAlgorithm {
    public var name: AlgorithmName { .adaptive }
    /// The algorithm picks are delegated to.
    public private(set) var current: any LoadBalancingAlgorithm
    private var counts: [ServerWindowCounts] = []
    /// Latency-aware algorithms, fed every observation whichever algorithm picks.
    private let warm: [LatencyAware] = [LatencyAware(name: .peakEWMA), LatencyAware(name: .leastResponseTime)]
    /// The server list of the latest pick, to read in-flight counts when a response is observed.
    private var servers: [BalancedServer] = []

    public init(initial: AlgorithmName = .roundRobin) {
        precondition(initial != .adaptive)
        current = makeAlgorithm(initial)
    }

    /// Switches the algorithm used for new picks.
    public func use(_ algorithm: AlgorithmName) {
        guard algorithm != .adaptive, algorithm != current.name else { return }
        current = warm.first { $0.name == algorithm } ?? makeAlgorithm(algorithm)
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
        for algorithm in warm {
            algorithm.observe(serverIndex: serverIndex, responseNanoseconds: responseNanoseconds, failed: failed, now: now)
        }
    }
}

// Per-event-loop state without synchronisation: must not cross threads.
@available(*, unavailable)
extension AdaptiveAlgorithm: Sendable {}
