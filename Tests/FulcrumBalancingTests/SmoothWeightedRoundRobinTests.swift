import Testing

@testable import FulcrumBalancing

@Suite struct SmoothWeightedRoundRobinTests {
    @Test func producesNginxSequence() {
        // nginx documents weights {a: 5, b: 1, c: 1} → a a b a c a a (ngx_http_upstream_round_robin.c).
        let servers = makeServers(weights: [5, 1, 1])
        let (a, b, c) = (0, 1, 2)
        let expected: [Int?] = [a, a, b, a, c, a, a]
        let algorithm = SmoothWeightedRoundRobin()
        #expect(algorithm.picks(7, from: servers) == expected)
        // The cycle repeats exactly.
        #expect(algorithm.picks(7, from: servers) == expected)
    }

    @Test func exactProportionsForTwoToOne() {
        let servers = makeServers(weights: [2, 1])
        let counts = SmoothWeightedRoundRobin().pickCounts(3000, from: servers)
        #expect(counts == [2000, 1000])
    }

    @Test func exactProportionsForManyServers() {
        let servers = makeServers(weights: [3, 7, 1, 4])
        let counts = SmoothWeightedRoundRobin().pickCounts(15 * 100, from: servers)
        #expect(counts == [300, 700, 100, 400])
    }

    @Test func isSmooth() {
        // Weights 1:1 must alternate, never give the same server twice in a row.
        let servers = makeServers(weights: [4, 4])
        #expect(SmoothWeightedRoundRobin().picks(6, from: servers) == [0, 1, 0, 1, 0, 1])
    }

    @Test func skipsExcludedAndUnavailableServers() {
        let servers = makeServers(weights: [5, 1, 1])
        servers[2].setHealthy(false)
        let algorithm = SmoothWeightedRoundRobin()
        let picks = algorithm.picks(600, from: servers, excluding: [1])
        #expect(picks.allSatisfy { $0 == 0 })
        // Once all are eligible again the shares are back to 5:1:1.
        servers[2].setHealthy(true)
        let counts = algorithm.pickCounts(7 * 100, from: servers)
        #expect(counts == [500, 100, 100])
    }

    @Test func followsWeightChanges() {
        let servers = makeServers(weights: [1, 1])
        let algorithm = SmoothWeightedRoundRobin()
        #expect(algorithm.pickCounts(100, from: servers) == [50, 50])
        servers[1].setWeight(3)
        #expect(algorithm.pickCounts(400, from: servers) == [100, 300])
    }

    @Test func weightZeroServersAreBackups() {
        let servers = makeServers(weights: [0, 2, 0, 1])
        let algorithm = SmoothWeightedRoundRobin()
        #expect(algorithm.pickCounts(300, from: servers) == [0, 200, 0, 100])
        // Without the weighted servers, the backups share equally.
        #expect(algorithm.picks(4, from: servers, excluding: [1, 3]) == [0, 2, 0, 2])
    }

    @Test func toleratesTheServerListChangingLength() {
        let servers = makeServers(weights: [5, 1, 1])
        let algorithm = SmoothWeightedRoundRobin()
        _ = algorithm.picks(3, from: servers)  // a a b: mid-cycle state

        // Servers that stay keep their (mid-cycle) state, which can shift a count by one
        // against the ideal share; the shares themselves must follow the new list.
        let fewer = Array(servers.prefix(2))
        let fewerPicks = algorithm.picks(600, from: fewer)
        #expect(fewerPicks.allSatisfy { $0 == 0 || $0 == 1 })
        #expect((499...501).contains(fewerPicks.count { $0 == 0 }))

        let more = servers + makeServers(weights: [3])
        let counts = algorithm.pickCounts(1000, from: more)
        #expect(counts.reduce(0, +) == 1000)
        for (count, expected) in zip(counts, [500, 100, 100, 300]) {
            #expect(abs(count - expected) <= 1)
        }
    }

    @Test func newServerAtAnIndexStartsFresh() {
        let servers = makeServers(weights: [5, 1, 1])
        let algorithm = SmoothWeightedRoundRobin()
        _ = algorithm.picks(3, from: servers)  // a a b: mid-cycle state
        // A reload replaces every server; the new list must start the nginx cycle afresh.
        let replaced = makeServers(weights: [5, 1, 1])
        #expect(algorithm.picks(7, from: replaced) == [0, 0, 1, 0, 2, 0, 0])
    }

    @Test func returnsNilWhenNothingQualifies() {
        let algorithm = SmoothWeightedRoundRobin()
        #expect(algorithm.pick(from: [], excluding: .none) == nil)
        let servers = makeServers(weights: [1, 0])
        #expect(algorithm.pick(from: servers, excluding: [0, 1]) == nil)
        servers[1].setHealthy(false)
        #expect(algorithm.pick(from: servers, excluding: [0]) == nil)
    }
}
