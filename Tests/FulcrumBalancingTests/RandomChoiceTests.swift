import Testing

@testable import FulcrumBalancing

@Suite struct RandomChoiceTests {
    @Test func proportionsFollowWeights() {
        let servers = makeServers(weights: [1, 2, 3])
        let algorithm = RandomChoice(random: FastRandom(seed: 1))
        let counts = algorithm.pickCounts(60_000, from: servers)
        // Expected 10k/20k/30k; the standard deviations are ~120, so ±600 is about 5σ.
        for (count, expected) in zip(counts, [10_000, 20_000, 30_000]) {
            #expect(abs(count - expected) <= 600, "got \(counts)")
        }
    }

    @Test func sameSeedGivesSameSequence() {
        let servers = makeServers(weights: [1, 2, 3, 4])
        let first = RandomChoice(random: FastRandom(seed: 99)).picks(200, from: servers)
        let second = RandomChoice(random: FastRandom(seed: 99)).picks(200, from: servers)
        let other = RandomChoice(random: FastRandom(seed: 100)).picks(200, from: servers)
        #expect(first == second)
        #expect(first != other)
    }

    @Test func skipsExcludedAndUnavailableServers() {
        let servers = makeServers(weights: [1, 1, 1, 1])
        servers[3].setHealthy(false)
        let algorithm = RandomChoice(random: FastRandom(seed: 2))
        let counts = algorithm.pickCounts(30_000, from: servers, excluding: [0])
        #expect(counts[0] == 0)
        #expect(counts[3] == 0)
        #expect(abs(counts[1] - 15_000) <= 500 && abs(counts[2] - 15_000) <= 500, "got \(counts)")
    }

    @Test func weightZeroServersAreBackups() {
        let servers = makeServers(weights: [0, 1, 0, 2])
        let algorithm = RandomChoice(random: FastRandom(seed: 3))
        let counts = algorithm.pickCounts(3000, from: servers)
        #expect(counts[0] == 0 && counts[2] == 0)
        // Without the weighted servers, the backups are chosen uniformly.
        let backupCounts = algorithm.pickCounts(20_000, from: servers, excluding: [1, 3])
        #expect(backupCounts[1] == 0 && backupCounts[3] == 0)
        #expect(abs(backupCounts[0] - 10_000) <= 500, "got \(backupCounts)")
    }

    @Test func singleEligibleServerIsAlwaysPicked() {
        let servers = makeServers(weights: [3, 1, 2])
        let algorithm = RandomChoice(random: FastRandom(seed: 4))
        #expect(algorithm.picks(50, from: servers, excluding: [0, 2]).allSatisfy { $0 == 1 })
    }

    @Test func returnsNilWhenNothingQualifies() {
        let algorithm = RandomChoice(random: FastRandom(seed: 5))
        #expect(algorithm.pick(from: [], excluding: .none) == nil)
        let servers = makeServers(weights: [1, 0])
        #expect(algorithm.pick(from: servers, excluding: [0, 1]) == nil)
        servers[0].setHealthy(false)
        servers[1].setHealthy(false)
        #expect(algorithm.pick(from: servers, excluding: .none) == nil)
    }
}
