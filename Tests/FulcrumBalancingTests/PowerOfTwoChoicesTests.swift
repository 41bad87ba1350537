import Testing

@testable import FulcrumBalancing

@Suite struct PowerOfTwoChoicesTests {
    @Test func prefersTheLessLoadedOfTwo() {
        let servers = makeServers(count: 2)
        servers[0].startRequests(1)
        let algorithm = PowerOfTwoChoices(random: FastRandom(seed: 1))
        // With two servers both are always the candidates, so the idle one always wins.
        #expect(algorithm.picks(100, from: servers).allSatisfy { $0 == 1 })
    }

    @Test func aLoadedServerLosesEveryPair() {
        let servers = makeServers(count: 3)
        servers[2].startRequests(1)
        let algorithm = PowerOfTwoChoices(random: FastRandom(seed: 2))
        let counts = algorithm.pickCounts(10_000, from: servers)
        // Every pair has an idle member, and the candidates are distinct, so server 2 never
        // wins; {0, 1} is a tie won by either at random, so 0 and 1 share evenly.
        #expect(counts[2] == 0)
        #expect(abs(counts[0] - 5_000) <= 250, "got \(counts)")
    }

    @Test func candidatesAreUniformAndDistinct() {
        // Server i has i requests in flight, so it wins exactly the pairs {i, j} with j > i:
        // 9 - i of the 45 equally likely pairs when pairs are uniform and distinct.
        let servers = makeServers(count: 10)
        for (index, server) in servers.enumerated() { server.startRequests(index) }
        let algorithm = PowerOfTwoChoices(random: FastRandom(seed: 3))
        let counts = algorithm.pickCounts(45_000, from: servers)
        for (index, count) in counts.enumerated() {
            #expect(abs(count - (9 - index) * 1_000) <= 400, "server \(index): got \(counts)")
        }
        #expect(counts[9] == 0)
    }

    @Test func comparesLoadPerUnitOfWeight() {
        let servers = makeServers(weights: [1, 4])
        servers[0].startRequests(1)
        servers[1].startRequests(2)
        let algorithm = PowerOfTwoChoices(random: FastRandom(seed: 4))
        // 1/1 against 2/4.
        #expect(algorithm.picks(50, from: servers).allSatisfy { $0 == 1 })
        servers[1].startRequests(3)
        // 1/1 against 5/4.
        #expect(algorithm.picks(50, from: servers).allSatisfy { $0 == 0 })
    }

    @Test func singleEligibleServerIsReturned() {
        let servers = makeServers(count: 3)
        servers[0].startRequests(10)
        servers[2].setHealthy(false)
        let algorithm = PowerOfTwoChoices(random: FastRandom(seed: 5))
        #expect(algorithm.picks(20, from: servers, excluding: [1]).allSatisfy { $0 == 0 })
        #expect(algorithm.picks(20, from: [servers[0]]).allSatisfy { $0 == 0 })
    }

    @Test func sameSeedGivesSameSequence() {
        let servers = makeServers(count: 8)
        let first = PowerOfTwoChoices(random: FastRandom(seed: 6)).picks(200, from: servers)
        let second = PowerOfTwoChoices(random: FastRandom(seed: 6)).picks(200, from: servers)
        let other = PowerOfTwoChoices(random: FastRandom(seed: 7)).picks(200, from: servers)
        #expect(first == second)
        #expect(first != other)
    }

    @Test func weightZeroServersAreBackups() {
        let servers = makeServers(weights: [0, 1, 0])
        servers[1].startRequests(50)
        let algorithm = PowerOfTwoChoices(random: FastRandom(seed: 8))
        #expect(algorithm.picks(100, from: servers).allSatisfy { $0 == 1 })
        // Without the weighted server, the less loaded backup wins.
        servers[0].startRequests(1)
        #expect(algorithm.picks(100, from: servers, excluding: [1]).allSatisfy { $0 == 2 })
    }

    @Test func returnsNilWhenNothingQualifies() {
        let algorithm = PowerOfTwoChoices(random: FastRandom(seed: 9))
        #expect(algorithm.pick(from: [], excluding: .none) == nil)
        let servers = makeServers(weights: [1, 0])
        #expect(algorithm.pick(from: servers, excluding: [0, 1]) == nil)
        servers[0].setHealthy(false)
        servers[1].setHealthy(false)
        #expect(algorithm.pick(from: servers, excluding: .none) == nil)
    }
}
