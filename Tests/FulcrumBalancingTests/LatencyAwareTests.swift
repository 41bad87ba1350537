import FulcrumConfig
import Testing

@testable import FulcrumBalancing

/// `least_response_time` and `peak_ewma`, driven with injected times and response times.
@Suite struct LatencyAwareTests {
    private static let millisecond: Int64 = 1_000_000
    private static let second: UInt64 = 1_000_000_000
    private let start: UInt64 = 1_000 * 1_000_000_000

    @Test(arguments: [AlgorithmName.leastResponseTime, .peakEWMA])
    func prefersTheFasterServer(name: AlgorithmName) {
        let algorithm = LatencyAware(name: name)
        let servers = makeServers(count: 2)
        algorithm.observe(serverIndex: 0, responseNanoseconds: 100 * Self.millisecond, failed: false, now: start)
        algorithm.observe(serverIndex: 1, responseNanoseconds: 10 * Self.millisecond, failed: false, now: start)
        let picks = (0..<10).map { _ in algorithm.pick(from: servers, excluding: .none, now: start + 1) }
        #expect(picks.allSatisfy { $0 == 1 })
    }

    @Test("cost grows with requests in flight, so a fast server does not take everything")
    func inFlightCounts() {
        let algorithm = LatencyAware(name: .leastResponseTime)
        let servers = makeServers(count: 2)
        algorithm.observe(serverIndex: 0, responseNanoseconds: 30 * Self.millisecond, failed: false, now: start)
        algorithm.observe(serverIndex: 1, responseNanoseconds: 10 * Self.millisecond, failed: false, now: start)
        // 10 ms × (2 + 1) = 30 ms ≈ 30 ms × (0 + 1): with three in flight the fast one costs more.
        servers[1].startRequests(3)
        #expect(algorithm.pick(from: servers, excluding: .none, now: start) == 0)
    }

    @Test("peak EWMA reacts to one slow response at once; least response time averages it in")
    func peakSensitivity() {
        let peak = LatencyAware(name: .peakEWMA)
        let average = LatencyAware(name: .leastResponseTime)
        for algorithm in [peak, average] {
            for step in 0..<20 {
                algorithm.observe(
                    serverIndex: 0,
                    responseNanoseconds: 10 * Self.millisecond,
                    failed: false,
                    now: start + UInt64(step) * Self.second / 10
                )
            }
            algorithm.observe(serverIndex: 0, responseNanoseconds: 500 * Self.millisecond, failed: false, now: start + 2 * Self.second)
        }
        let now = start + 2 * Self.second
        let peakTime = try! #require(peak.expectedResponseNanoseconds(of: 0, now: now))
        let averageTime = try! #require(average.expectedResponseNanoseconds(of: 0, now: now))
        #expect(peakTime == Double(500 * Self.millisecond))
        // A sample right after the previous one weighs little in a time-decayed average.
        #expect(averageTime < Double(100 * Self.millisecond))
        #expect(averageTime > Double(10 * Self.millisecond))
    }

    @Test("a slow server is tried again once its time has decayed")
    func decayBringsServersBack() {
        let algorithm = LatencyAware(name: .peakEWMA, decay: .seconds(10))
        let servers = makeServers(count: 2)
        algorithm.observe(serverIndex: 0, responseNanoseconds: 2_000 * Self.millisecond, failed: false, now: start)
        // Server 1 keeps answering in 20 ms; server 0 gets nothing after its 2 s response.
        var picks: [UInt64: Int?] = [:]
        for second in UInt64(1)...60 {
            let now = start + second * Self.second
            algorithm.observe(serverIndex: 1, responseNanoseconds: 20 * Self.millisecond, failed: false, now: now)
            picks[second] = algorithm.pick(from: servers, excluding: .none, now: now)
        }
        // 2 s × e^(−t / 10 s) falls below 20 ms after 10 s × ln 100 ≈ 46 s.
        #expect(picks[30] == 1)
        #expect(picks[45] == 1)
        #expect(picks[47] == 0)
        #expect(picks[60] == 0)
    }

    @Test("failures count as the failure penalty")
    func failuresArePenalised() {
        let algorithm = LatencyAware(name: .peakEWMA, failurePenalty: .seconds(1))
        let servers = makeServers(count: 2)
        algorithm.observe(serverIndex: 0, responseNanoseconds: 2 * Self.millisecond, failed: true, now: start)
        algorithm.observe(serverIndex: 1, responseNanoseconds: 50 * Self.millisecond, failed: false, now: start)
        #expect(algorithm.expectedResponseNanoseconds(of: 0, now: start) == 1e9)
        #expect(algorithm.pick(from: servers, excluding: .none, now: start) == 1)
    }

    @Test("unmeasured servers get traffic; ties rotate")
    func unmeasuredServersAndTies() {
        let algorithm = LatencyAware(name: .leastResponseTime)
        let servers = makeServers(count: 3)
        // Nothing measured: all cost the same, so picks rotate.
        let picks = (0..<6).map { _ in algorithm.pick(from: servers, excluding: .none, now: start) }
        #expect(picks == [0, 1, 2, 0, 1, 2])
        // One measured slow server: the unmeasured ones cost as much as it, so they still share.
        algorithm.observe(serverIndex: 0, responseNanoseconds: 80 * Self.millisecond, failed: false, now: start)
        #expect(algorithm.pick(from: servers, excluding: .none, now: start) != nil)
    }

    @Test("weights divide the cost; exclusions and availability are honoured")
    func weightsAndEligibility() {
        let algorithm = LatencyAware(name: .peakEWMA)
        let servers = makeServers(weights: [1, 4])
        algorithm.observe(serverIndex: 0, responseNanoseconds: 10 * Self.millisecond, failed: false, now: start)
        algorithm.observe(serverIndex: 1, responseNanoseconds: 30 * Self.millisecond, failed: false, now: start)
        #expect(algorithm.pick(from: servers, excluding: .none, now: start) == 1)
        #expect(algorithm.pick(from: servers, excluding: [1] as ServerIndexSet, now: start) == 0)
        servers[0].setHealthy(false)
        #expect(algorithm.pick(from: servers, excluding: [1] as ServerIndexSet, now: start) == nil)
    }
}
