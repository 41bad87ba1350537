import Testing

@testable import FulcrumBalancing

@Suite struct LeastConnectionsTests {
    @Test func picksTheIdleServer() {
        let servers = makeServers(count: 3)
        servers[0].startRequests(2)
        servers[2].startRequests(1)
        let algorithm = LeastConnections()
        #expect(algorithm.picks(3, from: servers) == [1, 1, 1])
    }

    @Test func followsRequestsAsTheyStartAndFinish() {
        let servers = makeServers(count: 2)
        let algorithm = LeastConnections()
        // Simulate a proxy that keeps every request open: load alternates.
        var picks: [Int] = []
        for _ in 0..<4 {
            let index = algorithm.pick(from: servers, excluding: .none)!
            servers[index].requestStarted()
            picks.append(index)
        }
        #expect(picks == [0, 1, 0, 1])
        #expect(servers.map(\.inFlight) == [2, 2])
        servers[1].requestFinished()
        #expect(algorithm.pick(from: servers, excluding: .none) == 1)
    }

    @Test func comparesLoadPerUnitOfWeight() {
        let servers = makeServers(weights: [1, 2])
        servers[0].startRequests(1)
        servers[1].startRequests(1)
        let algorithm = LeastConnections()
        // 1/1 against 1/2: the heavier server is less loaded.
        #expect(algorithm.pick(from: servers, excluding: .none) == 1)
        servers[1].startRequests(2)
        // 1/1 against 3/2: now the lighter one is.
        #expect(algorithm.pick(from: servers, excluding: .none) == 0)
    }

    @Test func equalLoadPerWeightIsATie() {
        // Weight 2 with 2 in flight and weight 1 with 1 in flight are equally loaded, so
        // they take turns; weight 3 with 4 in flight (4/3) is never picked.
        let servers = makeServers(weights: [2, 1, 3])
        servers[0].startRequests(2)
        servers[1].startRequests(1)
        servers[2].startRequests(4)
        #expect(LeastConnections().picks(4, from: servers) == [0, 1, 0, 1])
    }

    @Test func tiesRotate() {
        let servers = makeServers(count: 3)
        #expect(LeastConnections().picks(7, from: servers) == [0, 1, 2, 0, 1, 2, 0])
    }

    @Test func tiesRotateAroundALoadedServer() {
        let servers = makeServers(count: 4)
        servers[1].startRequests(1)
        #expect(LeastConnections().picks(6, from: servers) == [0, 2, 3, 0, 2, 3])
    }

    @Test func skipsExcludedAndUnavailableServers() {
        let servers = makeServers(count: 3)
        servers[1].startRequests(5)
        servers[2].setHealthy(false)
        let algorithm = LeastConnections()
        // Idle server 0 is excluded and idle server 2 is down: the loaded one is all there is.
        #expect(algorithm.pick(from: servers, excluding: [0]) == 1)
        #expect(algorithm.pick(from: servers, excluding: .none) == 0)
    }

    @Test func weightZeroServersAreBackups() {
        let servers = makeServers(weights: [0, 1, 0])
        servers[1].startRequests(100)
        let algorithm = LeastConnections()
        // An idle backup does not beat a busy weighted server…
        #expect(algorithm.picks(3, from: servers) == [1, 1, 1])
        // …but without it, the least loaded backup wins, ties rotating.
        servers[0].startRequests(1)
        #expect(algorithm.picks(2, from: servers, excluding: [1]) == [2, 2])
        servers[0].requestFinished()
        #expect(algorithm.picks(4, from: servers, excluding: [1]) == [0, 2, 0, 2])
    }

    @Test func extremeValuesDoNotOverflow() {
        let servers = makeServers(weights: [BalancedServer.maximumWeight, 1])
        servers[0].startRequests(3)
        // 3 in flight on the heaviest possible server is far less load than 1 on weight 1.
        let algorithm = LeastConnections()
        servers[1].startRequests(1)
        #expect(algorithm.pick(from: servers, excluding: .none) == 0)
        // Products that overflow 64 bits still compare correctly.
        #expect(ServerLoad(inFlight: .max, weight: 1).isLess(than: ServerLoad(inFlight: .max, weight: 2)) == false)
        #expect(ServerLoad(inFlight: .max, weight: 2).isLess(than: ServerLoad(inFlight: .max, weight: 1)))
        #expect(ServerLoad(inFlight: .max - 1, weight: .max).isLess(than: ServerLoad(inFlight: 1, weight: 1)))
        #expect(!ServerLoad(inFlight: .max, weight: .max).isLess(than: ServerLoad(inFlight: 1, weight: 1)))
        // Here the two products differ in their high words (max·2 < 2^64 ≤ max·4).
        #expect(ServerLoad(inFlight: .max, weight: 4).isLess(than: ServerLoad(inFlight: .max, weight: 2)))
        #expect(!ServerLoad(inFlight: .max, weight: 2).isLess(than: ServerLoad(inFlight: .max, weight: 4)))
        // A counter driven below zero by a missing requestStarted() still orders sensibly.
        #expect(ServerLoad(inFlight: -1, weight: 1).isLess(than: ServerLoad(inFlight: 0, weight: 1)))
    }

    @Test func toleratesTheServerListShrinking() {
        let servers = makeServers(count: 5)
        let algorithm = LeastConnections()
        #expect(algorithm.picks(4, from: servers) == [0, 1, 2, 3])
        #expect(algorithm.picks(3, from: Array(servers.prefix(2))) == [0, 1, 0])
    }

    @Test func returnsNilWhenNothingQualifies() {
        let algorithm = LeastConnections()
        #expect(algorithm.pick(from: [], excluding: .none) == nil)
        let servers = makeServers(weights: [1, 0])
        #expect(algorithm.pick(from: servers, excluding: [0, 1]) == nil)
        servers[0].setHealthy(false)
        servers[1].setHealthy(false)
        #expect(algorithm.pick(from: servers, excluding: .none) == nil)
    }
}
