import FulcrumConfig

/// Weighted round robin as in nginx ("smooth weighted round robin").
///
/// Each server gets a share of requests proportional to its weight, and the picks are
/// spread out evenly rather than in bursts: weights {a: 5, b: 1, c: 1} give
/// a, a, b, a, c, a, a (then repeat), not a, a, a, a, a, b, c.
///
/// On every pick, each eligible server's `current` value grows by its weight; the server
/// with the largest `current` is picked and its `current` shrinks by the sum of the
/// eligible weights. Ties go to the lowest index, as in nginx. Excluded and unavailable
/// servers take no part in a pick, so their `current` stays as it was.
///
/// Weight-0 servers are used only when no eligible server has a positive weight; they then
/// run the same algorithm among themselves with weight 1 each, i.e. plain rotation.
///
/// The per-server state is kept by index and remembers which server each slot belongs to:
/// when the server list grows, shrinks or has a different server at an index (a reload), the
/// affected slots start over from zero, and the rest keep their place in the cycle.
///
/// Not thread-safe: one instance per event loop.
package final class SmoothWeightedRoundRobin: LoadBalancingAlgorithm {
    private struct Slot {
        /// The server this state belongs to; `nil` for a fresh slot.
        var server: ObjectIdentifier?
        var current: Int
    }

    /// `slots[i]` is the state of `servers[i]` as of the last pick.
    private var slots: [Slot] = []

    package init() {}

    package var name: AlgorithmName { .weightedRoundRobin }

    package func pick(from servers: [BalancedServer], excluding excluded: ServerIndexSet) -> Int? {
        adoptSlots(for: servers)
        switch step(servers, excluding: excluded, tier: .weighted) {
        case .picked(let index):
            return index
        case .nothingEligible:
            return nil
        case .onlyBackups:
            // Nothing was touched in the weighted step (it had no server to update), so the
            // backups' state is only ever advanced by steps like this one.
            switch step(servers, excluding: excluded, tier: .backup) {
            case .picked(let index): return index
            case .nothingEligible, .onlyBackups: return nil
            }
        }
    }

    private enum StepResult {
        case picked(Int)
        /// No server of the tier qualified, but some eligible backup (weight 0) server did.
        case onlyBackups
        case nothingEligible
    }

    /// One round of the nginx algorithm over the eligible servers of `tier`.
    private func step(
        _ servers: [BalancedServer],
        excluding excluded: ServerIndexSet,
        tier: WeightTier
    ) -> StepResult {
        var total = 0
        var best = -1
        var sawBackup = false
        for index in servers.indices {
            let server = servers[index]
            guard server.isEligible(at: index, excluding: excluded) else { continue }
            let weight = server.effectiveWeight
            guard tier.includes(weight: weight) else {
                if weight == 0 { sawBackup = true }
                continue
            }
            let effectiveWeight = tier.effectiveWeight(weight)
            slots[index].current += effectiveWeight
            total += effectiveWeight
            // Strictly greater: ties go to the lowest index, which yields nginx's sequence.
            if best < 0 || slots[index].current > slots[best].current {
                best = index
            }
        }
        guard best >= 0 else { return sawBackup ? .onlyBackups : .nothingEligible }
        slots[best].current -= total
        return .picked(best)
    }

    /// Makes `slots` line up with `servers`: one slot per server, reset where the server at
    /// an index is not the one the slot was for. Allocates only when the list grows beyond
    /// any size seen before.
    private func adoptSlots(for servers: [BalancedServer]) {
        if slots.count > servers.count {
            slots.removeLast(slots.count - servers.count)
        } else {
            while slots.count < servers.count {
                slots.append(Slot(server: nil, current: 0))
            }
        }
        for index in servers.indices {
            let id = ObjectIdentifier(servers[index])
            if slots[index].server != id {
                slots[index] = Slot(server: id, current: 0)
            }
        }
    }
}

// Per-event-loop state without synchronisation: must not cross threads.
@available(*, unavailable)
extension SmoothWeightedRoundRobin: Sendable {}
