import FulcrumConfig

/// The power of two random choices: two distinct eligible servers drawn at random, and the
/// one with fewer requests in flight per unit of weight wins.
///
/// Almost as good at avoiding loaded servers as `LeastConnections`, but without its herd
/// behaviour: many event loops that all see the same "least loaded" server would send it
/// their requests at once, while random pairs spread them. Candidates are drawn
/// **uniformly** among the eligible servers; weights count only in the comparison
/// (`inFlight / weight`, exact integer arithmetic), as in Finagle's P2C, so a server with
/// twice the weight is considered equally loaded with twice the requests in flight.
///
/// Ties between the two candidates go to the first one drawn, i.e. to a random one. With
/// a single eligible server, it is returned without drawing.
///
/// Weight-0 servers are used only when no eligible server has a positive weight; the
/// comparison then uses in-flight counts alone.
///
/// Generic over the random source so that the generator is stored and called directly,
/// without boxing it in an existential on every pick. Not thread-safe: one instance per
/// event loop.
package final class PowerOfTwoChoices<R: RandomNumberGenerator>: LoadBalancingAlgorithm {
    private var random: R

    package init(random: R) {
        self.random = random
    }

    package var name: AlgorithmName { .powerOfTwo }

    package func pick(from servers: [BalancedServer], excluding excluded: ServerIndexSet) -> Int? {
        // First pass: count both tiers, to know which one to draw from.
        var weighted = 0
        var backups = 0
        for index in servers.indices {
            let server = servers[index]
            guard server.isEligible(at: index, excluding: excluded) else { continue }
            if server.weight > 0 { weighted += 1 } else { backups += 1 }
        }
        let tier: WeightTier
        let candidates: Int
        if weighted > 0 {
            (tier, candidates) = (.weighted, weighted)
        } else if backups > 0 {
            (tier, candidates) = (.backup, backups)
        } else {
            return nil
        }

        // Two distinct positions among the candidates, uniformly: draw the second from the
        // remaining `candidates - 1` positions and skip over the first.
        let first: Int
        let second: Int
        if candidates == 1 {
            (first, second) = (0, -1)
        } else {
            first = Int(random.next(upperBound: UInt64(candidates)))
            let other = Int(random.next(upperBound: UInt64(candidates - 1)))
            second = other >= first ? other + 1 : other
        }

        // Second pass: find both candidates and their loads.
        var firstIndex = -1
        var firstLoad = ServerLoad(inFlight: 0, weight: 1)
        var secondIndex = -1
        var secondLoad = ServerLoad(inFlight: 0, weight: 1)
        var position = 0
        for index in servers.indices {
            let server = servers[index]
            guard server.isEligible(at: index, excluding: excluded) else { continue }
            let weight = server.effectiveWeight
            guard tier.includes(weight: weight) else { continue }
            if position == first || position == second {
                let load = ServerLoad(inFlight: server.inFlight, weight: tier.effectiveWeight(weight))
                if position == first {
                    (firstIndex, firstLoad) = (index, load)
                } else {
                    (secondIndex, secondLoad) = (index, load)
                }
                if firstIndex >= 0 && (secondIndex >= 0 || second < 0) { break }
            }
            position += 1
        }

        // A candidate can be missing only if weights or availability changed between the
        // passes (they are shared with other event loops and the admin API).
        switch (firstIndex >= 0, secondIndex >= 0) {
        case (true, true):
            return secondLoad.isLess(than: firstLoad) ? secondIndex : firstIndex
        case (true, false):
            return firstIndex
        case (false, true):
            return secondIndex
        case (false, false):
            return nil
        }
    }
}

extension PowerOfTwoChoices where R == FastRandom {
    /// Uses a `FastRandom` seeded from the system.
    package convenience init() {
        self.init(random: FastRandom())
    }
}

// Per-event-loop state without synchronisation: must not cross threads.
@available(*, unavailable)
extension PowerOfTwoChoices: Sendable {}
