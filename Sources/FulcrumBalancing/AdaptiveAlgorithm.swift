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
/// **The rotation guard.** The engine switches at most once per `min_switch_interval`, so the
/// algorithm in use must protect the servers between switches. Load-aware algorithms do so by
/// themselves; rotation does not. While rotating, each pick is checked against peak EWMA's
/// cost (`response time × (in flight + 1) / weight`, the warm instance's view): a server that
/// costs more than `guardFactor` times the cheapest eligible one is passed over, and peak EWMA
/// picks instead. Alike servers stay far inside that band, so the guard rarely acts and the
/// rotation stays a rotation; a server that turns slow, or whose queue grows because it cannot
/// take its share, gets less traffic from its first slow answers on (or once its queue holds a
/// few times the others'), not at the next allowed switch. (Envoy's least-request with active
/// request bias weighs queues into a rotation the same way.)
///
/// Not thread-safe: one instance per event loop.
package final class AdaptiveAlgorithm: LoadBalancingAlgorithm {
    package var name: AlgorithmName { .adaptive }
    /// The algorithm picks are delegated to.
    package private(set) var current: any LoadBalancingAlgorithm
    private var counts: [ServerWindowCounts] = []
    /// Latency-aware algorithms, fed every observation whichever algorithm picks.
    private let warm: [LatencyAware] = [LatencyAware(name: .peakEWMA), LatencyAware(name: .leastResponseTime)]
    /// The server list of the latest pick, to read in-flight counts when a response is observed.
    private var servers: [BalancedServer] = []
    /// `current` when it is one of the warm latency-aware instances (they pick at the guard's
    /// clock), kept beside it so a pick needs no dynamic cast.
    private var currentLatencyAware: LatencyAware?
    /// Rotation picks the guard passed over, per server index, in the current window.
    private var guarded: [Int] = []

    /// How much more than the cheapest server a rotation pick may cost (by peak EWMA) before the
    /// guard passes it over.
    package static let guardFactor = 3.0

    /// Starts with `peak_ewma`, safe while nothing is known (`AdaptiveState` starts there too).
    package init(initial: AlgorithmName = .peakEWMA) {
        precondition(initial != .adaptive)
        // A latency-aware start is the warm instance itself, which observes every response.
        current = makeAlgorithm(initial)
        currentLatencyAware = warm.first { $0.name == initial }
        current = currentLatencyAware ?? current
    }

    /// Switches the algorithm used for new picks.
    package func use(_ algorithm: AlgorithmName) {
        guard algorithm != .adaptive, algorithm != current.name else { return }
        currentLatencyAware = warm.first { $0.name == algorithm }
        current = currentLatencyAware ?? makeAlgorithm(algorithm)
    }

    /// The window's counts per server index, and a fresh window from now.
    package func closeWindow() -> [ServerWindowCounts] {
        for (index, passedOver) in guarded.enumerated() where passedOver > 0 {
            ensureCounts(upTo: index)
            counts[index].guarded += passedOver
        }
        defer {
            counts = []
            guarded = []
        }
        return counts
    }

    package func pick(from servers: [BalancedServer], excluding excluded: ServerIndexSet) -> Int? {
        pick(from: servers, excluding: excluded, now: LatencyAware.clock())
    }

    /// `pick` at a given time (tests inject it).
    package func pick(from servers: [BalancedServer], excluding excluded: ServerIndexSet, now: UInt64) -> Int? {
        self.servers = servers
        let picked =
            currentLatencyAware.map { $0.pick(from: servers, excluding: excluded, now: now) }
            ?? current.pick(from: servers, excluding: excluded)
        guard let choice = picked else { return nil }
        guard current.name.isRotation,
            peakEWMA.isOutOfLine(choice, in: servers, excluding: excluded, factor: Self.guardFactor, now: now)
        else {
            return choice
        }
        if choice >= guarded.count { guarded.append(contentsOf: repeatElement(0, count: choice + 1 - guarded.count)) }
        guarded[choice] += 1
        return peakEWMA.pick(from: servers, excluding: excluded, now: now) ?? choice
    }

    private var peakEWMA: LatencyAware { warm[0] }

    private func ensureCounts(upTo index: Int) {
        if index >= counts.count {
            counts.append(contentsOf: repeatElement(ServerWindowCounts(), count: index + 1 - counts.count))
        }
    }

    package var observesResponses: Bool { true }

    package func observe(serverIndex: Int, responseNanoseconds: Int64, failed: Bool, now: UInt64) {
        guard serverIndex >= 0 else { return }
        ensureCounts(upTo: serverIndex)
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
