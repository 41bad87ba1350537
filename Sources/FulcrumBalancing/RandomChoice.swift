import FulcrumConfig

/// Weighted random choice: each eligible server is picked with probability proportional to
/// its weight.
///
/// Needs no coordination and no per-loop history, so many event loops (or many proxies)
/// choosing independently still spread load evenly on average; the price is more variance
/// over short runs than the round-robin algorithms. There are no ties to break.
///
/// Weight-0 servers are used only when no eligible server has a positive weight; they are
/// then chosen uniformly.
///
/// Generic over the random source so that the generator is stored and called directly,
/// without boxing it in an existential on every pick. Not thread-safe: one instance per
/// event loop.
package final class RandomChoice<R: RandomNumberGenerator>: LoadBalancingAlgorithm {
    private var random: R

    package init(random: R) {
        self.random = random
    }

    package var name: AlgorithmName { .random }

    package func pick(from servers: [BalancedServer], excluding excluded: ServerIndexSet) -> Int? {
        // First pass: the sizes of both tiers, to know which one to draw from and how far.
        var totalWeight = 0
        var backups = 0
        for index in servers.indices {
            let server = servers[index]
            guard server.isEligible(at: index, excluding: excluded) else { continue }
            let weight = server.effectiveWeight
            if weight > 0 { totalWeight += weight } else { backups += 1 }
        }
        let tier: WeightTier
        let total: Int
        if totalWeight > 0 {
            (tier, total) = (.weighted, totalWeight)
        } else if backups > 0 {
            // Backups count as weight 1 each (`WeightTier.effectiveWeight`).
            (tier, total) = (.backup, backups * WeightTier.backup.effectiveWeight(0))
        } else {
            return nil
        }

        // Second pass: find the server whose slice of `0..<total` contains the draw.
        var remaining = Int(random.next(upperBound: UInt64(total)))
        var lastCandidate: Int?
        for index in servers.indices {
            let server = servers[index]
            guard server.isEligible(at: index, excluding: excluded) else { continue }
            let weight = server.effectiveWeight
            guard tier.includes(weight: weight) else { continue }
            let effectiveWeight = tier.effectiveWeight(weight)
            if remaining < effectiveWeight { return index }
            remaining -= effectiveWeight
            lastCandidate = index
        }
        // Reached only if weights or availability changed between the passes (they are
        // shared with other event loops and the admin API); any candidate is fine then.
        return lastCandidate
    }
}

extension RandomChoice where R == FastRandom {
    /// Uses a `FastRandom` seeded from the system.
    package convenience init() {
        self.init(random: FastRandom())
    }
}

// Per-event-loop state without synchronisation: must not cross threads.
@available(*, unavailable)
extension RandomChoice: Sendable {}
