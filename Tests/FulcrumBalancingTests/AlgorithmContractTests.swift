import FulcrumConfig
import Testing

@testable import FulcrumBalancing

/// Rules every algorithm must follow, checked against all of them.
@Suite struct AlgorithmContractTests {
    @Test(arguments: AlgorithmName.allCases)
    func factoryBuildsTheNamedAlgorithm(name: AlgorithmName) {
        let algorithm = makeAlgorithm(name, random: FastRandom(seed: 1))
        #expect(algorithm.name == name)
        let expectedType: any LoadBalancingAlgorithm.Type =
            switch name {
            case .roundRobin: RoundRobin.self
            case .hash: ConsistentHash.self
            case .weightedRoundRobin: SmoothWeightedRoundRobin.self
            case .leastConnections: LeastConnections.self
            case .random: RandomChoice<FastRandom>.self
            case .powerOfTwo: PowerOfTwoChoices<FastRandom>.self
            case .leastResponseTime, .peakEWMA: LatencyAware.self
            case .adaptive: AdaptiveAlgorithm.self
            }
        #expect(type(of: algorithm) == expectedType)
    }

    @Test(arguments: AlgorithmName.allCases)
    func factoryGivesIndependentInstances(name: AlgorithmName) {
        #expect(makeAlgorithm(name) !== makeAlgorithm(name))
    }

    @Test(arguments: AlgorithmName.allCases)
    func seededFactoryInstancesAreDeterministic(name: AlgorithmName) {
        let servers = makeServers(weights: [1, 2, 3, 4, 5])
        let first = makeAlgorithm(name, random: FastRandom(seed: 11)).picks(100, from: servers)
        let second = makeAlgorithm(name, random: FastRandom(seed: 11)).picks(100, from: servers)
        #expect(first == second)
    }

    @Test(arguments: AlgorithmName.allCases)
    func returnsNilWhenNothingQualifies(name: AlgorithmName) {
        let algorithm = makeAlgorithm(name, random: FastRandom(seed: 2))
        let servers = makeServers(weights: [1, 2, 0])
        #expect(algorithm.pick(from: [], excluding: .none) == nil)
        #expect(algorithm.pick(from: servers, excluding: [0, 1, 2]) == nil)
        for server in servers { server.setHealthy(false) }
        #expect(algorithm.pick(from: servers, excluding: .none) == nil)
        servers[1].setHealthy(true)
        #expect(algorithm.pick(from: servers, excluding: [1]) == nil)
        #expect(algorithm.pick(from: servers, excluding: .none) == 1)
    }

    @Test(arguments: AlgorithmName.allCases)
    func handlesIndicesBeyond63(name: AlgorithmName) {
        let algorithm = makeAlgorithm(name, random: FastRandom(seed: 3))
        let servers = makeServers(count: 100)
        var excluded = ServerIndexSet()
        for index in 0..<100 where index != 64 && index != 99 { excluded.insert(index) }
        let picks = algorithm.picks(50, from: servers, excluding: excluded)
        #expect(picks.allSatisfy { $0 == 64 || $0 == 99 })
        #expect(picks.contains(64) && picks.contains(99))
        excluded.insert(64)
        excluded.insert(99)
        #expect(algorithm.pick(from: servers, excluding: excluded) == nil)
    }

    /// Random server states (availability, weights including 0, loads, exclusions, list
    /// length changes across 64) and the invariants of `pick` checked after each.
    @Test(arguments: AlgorithmName.allCases)
    func neverPicksAnIneligibleServer(name: AlgorithmName) {
        var random = FastRandom(seed: 4)
        let algorithm = makeAlgorithm(name, random: FastRandom(seed: 5))
        let pool = makeServers(count: 80)
        var picks = 0
        for _ in 0..<3_000 {
            let count = Int(random.next(upperBound: 81 as UInt64))
            let servers = Array(pool.prefix(count))
            var excluded = ServerIndexSet()
            for (index, server) in servers.enumerated() {
                server.setHealthy(random.next(upperBound: 4 as UInt64) != 0)
                server.setWeight(Int(random.next(upperBound: 4 as UInt64)))
                if random.next(upperBound: 8 as UInt64) == 0 { server.requestStarted() }
                if random.next(upperBound: 3 as UInt64) == 0 { excluded.insert(index) }
            }
            let eligible = servers.indices.filter { !excluded.contains($0) && servers[$0].isAvailable }
            let anyWeighted = eligible.contains { servers[$0].weight > 0 }

            let picked = algorithm.pick(from: servers, excluding: excluded)

            guard let picked else {
                #expect(eligible.isEmpty, "\(name) returned nil with eligible servers \(eligible)")
                continue
            }
            picks += 1
            #expect(eligible.contains(picked), "\(name) picked ineligible server \(picked)")
            if anyWeighted {
                #expect(servers[picked].weight > 0, "\(name) picked a weight-0 server over weighted ones")
            }
        }
        #expect(picks > 2_000)  // the states are mostly pickable, so the checks above ran
    }
}
