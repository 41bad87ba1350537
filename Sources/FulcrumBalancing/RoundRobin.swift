import FulcrumConfig

/// Plain round robin: every eligible server in turn, in index order, ignoring weights.
///
/// The cheapest algorithm and the right one for identical servers with similar requests.
/// With servers 0, 1, 2 it picks 0, 1, 2, 0, 1, 2, …. A server that is excluded or
/// unavailable is skipped and the rotation continues after the server actually picked, so
/// with server 1 down the picks are 0, 2, 0, 2, ….
///
/// Weights only matter as far as every algorithm honours weight 0: such servers are
/// skipped while any eligible server has a positive weight, and rotated through like the
/// others when none has.
///
/// A server that a slow start ramps up takes only its ramp's share of its turns: each turn
/// adds the ramp's percentage to the server's credit, and the turn is taken only once the
/// credit reaches 100 (so at 10 %, one turn in ten; the others pass to the next server).
///
/// Not thread-safe: one instance per event loop, so each loop rotates independently.
package final class RoundRobin: LoadBalancingAlgorithm {
    /// The index to try first on the next pick. May be out of range after the server list
    /// shrank; `pick` wraps it.
    private var nextIndex = 0
    /// Ramping servers' credit toward their next turn, by index (grown on first use).
    private var rampCredits: [Int] = []

    package init() {}

    package var name: AlgorithmName { .roundRobin }

    package func pick(from servers: [BalancedServer], excluding excluded: ServerIndexSet) -> Int? {
        let count = servers.count
        guard count > 0 else { return nil }

        // One pass over the rotation: the first weighted server wins at once; the first
        // backup (weight 0) server is remembered in case no weighted one turns up.
        var index = nextIndex < count ? nextIndex : 0
        var firstBackup: Int?
        var firstPassed: Int?
        var chosen: Int?
        for _ in 0..<count {
            let server = servers[index]
            if server.isEligible(at: index, excluding: excluded) {
                if server.weight > 0 {
                    if let percent = server.rampPercent, !takesTurn(index, rampPercent: percent) {
                        // Passed over this time; still better than a backup.
                        if firstPassed == nil { firstPassed = index }
                    } else {
                        chosen = index
                        break
                    }
                } else if firstBackup == nil {
                    firstBackup = index
                }
            }
            index = index + 1 == count ? 0 : index + 1
        }

        guard let picked = chosen ?? firstPassed ?? firstBackup else { return nil }
        nextIndex = picked + 1 == count ? 0 : picked + 1
        return picked
    }

    /// Whether a ramping server takes this turn: its credit grows by its ramp each turn.
    private func takesTurn(_ index: Int, rampPercent: Int) -> Bool {
        if rampCredits.count <= index { rampCredits.append(contentsOf: repeatElement(0, count: index + 1 - rampCredits.count)) }
        rampCredits[index] += rampPercent
        guard rampCredits[index] >= 100 else { return false }
        rampCredits[index] -= 100
        return true
    }
}

// Per-event-loop state without synchronisation: must not cross threads.
@available(*, unavailable)
extension RoundRobin: Sendable {}
