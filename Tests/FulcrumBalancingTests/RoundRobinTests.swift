import Testing

@testable import FulcrumBalancing

@Suite struct RoundRobinTests {
    @Test func rotatesInIndexOrder() {
        let servers = makeServers(count: 3)
        #expect(RoundRobin().picks(7, from: servers) == [0, 1, 2, 0, 1, 2, 0])
    }

    @Test func ignoresPositiveWeights() {
        let servers = makeServers(weights: [10, 1, 3])
        #expect(RoundRobin().picks(6, from: servers) == [0, 1, 2, 0, 1, 2])
    }

    @Test func skipsExcludedServers() {
        let servers = makeServers(count: 3)
        #expect(RoundRobin().picks(4, from: servers, excluding: [1]) == [0, 2, 0, 2])
    }

    @Test func skipsUnavailableServers() {
        let servers = makeServers(count: 4)
        servers[0].setHealthy(false)
        servers[2].setHealthy(false)
        #expect(RoundRobin().picks(4, from: servers) == [1, 3, 1, 3])
    }

    @Test func rotationContinuesAfterTheServerActuallyPicked() {
        let servers = makeServers(count: 4)
        let roundRobin = RoundRobin()
        #expect(roundRobin.pick(from: servers, excluding: .none) == 0)
        // A retry that excludes 1 lands on 2; the rotation then carries on from 3.
        #expect(roundRobin.pick(from: servers, excluding: [1]) == 2)
        #expect(roundRobin.picks(3, from: servers) == [3, 0, 1])
    }

    @Test func serverComingBackRejoinsTheRotation() {
        let servers = makeServers(count: 3)
        let roundRobin = RoundRobin()
        servers[1].setHealthy(false)
        #expect(roundRobin.picks(2, from: servers) == [0, 2])
        servers[1].setHealthy(true)
        #expect(roundRobin.picks(3, from: servers) == [0, 1, 2])
    }

    @Test func weightZeroServersAreBackups() {
        let servers = makeServers(weights: [0, 1, 0, 1])
        let roundRobin = RoundRobin()
        #expect(roundRobin.picks(4, from: servers) == [1, 3, 1, 3])
        // With both weighted servers excluded, the backups rotate.
        #expect(roundRobin.picks(4, from: servers, excluding: [1, 3]) == [0, 2, 0, 2])
    }

    @Test func toleratesTheServerListShrinking() {
        let servers = makeServers(count: 5)
        let roundRobin = RoundRobin()
        #expect(roundRobin.picks(4, from: servers) == [0, 1, 2, 3])
        let fewer = Array(servers.prefix(2))
        #expect(roundRobin.picks(3, from: fewer) == [0, 1, 0])
    }

    @Test func returnsNilWhenNothingQualifies() {
        let roundRobin = RoundRobin()
        #expect(roundRobin.pick(from: [], excluding: .none) == nil)
        let servers = makeServers(count: 2)
        #expect(roundRobin.pick(from: servers, excluding: [0, 1]) == nil)
        servers[0].setHealthy(false)
        #expect(roundRobin.pick(from: servers, excluding: [1]) == nil)
    }
}
