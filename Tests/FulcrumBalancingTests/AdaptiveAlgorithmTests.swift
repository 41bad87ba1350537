import FulcrumConfig
import Testing

@testable import FulcrumBalancing

/// `algorithm: adaptive` on one loop: delegation, switching, and the window it counts.
@Suite struct AdaptiveAlgorithmTests {
    @Test("starts with peak EWMA; picks with what it is told, then with the new algorithm")
    func delegatesAndSwitches() {
        // Its peak EWMA learns from the first response (it is the warm instance).
        let fresh = AdaptiveAlgorithm()
        #expect(fresh.current.name == .peakEWMA)
        fresh.observe(serverIndex: 0, responseNanoseconds: 400_000_000, failed: false, now: 1_000_000_000)
        fresh.observe(serverIndex: 1, responseNanoseconds: 4_000_000, failed: false, now: 1_000_000_000)
        let two = makeServers(count: 2)
        #expect((0..<3).map { _ in fresh.pick(from: two, excluding: .none, now: 1_000_000_000) } == [1, 1, 1])
        let adaptive = AdaptiveAlgorithm(initial: .roundRobin)
        let servers = makeServers(count: 3)
        #expect(adaptive.name == .adaptive)
        #expect(adaptive.current.name == .roundRobin)
        #expect(adaptive.picks(4, from: servers) == [0, 1, 2, 0])
        servers[0].startRequests(2)
        adaptive.use(.leastConnections)
        #expect(adaptive.current.name == .leastConnections)
        #expect(adaptive.picks(3, from: servers).allSatisfy { $0 != 0 })
        adaptive.use(.adaptive)  // not a concrete algorithm: ignored
        #expect(adaptive.current.name == .leastConnections)
    }

    @Test("counts requests, failures, latency and in-flight per server; closing starts a new window")
    func countsTheWindow() throws {
        let adaptive = AdaptiveAlgorithm()
        let servers = makeServers(weights: [1, 2])
        _ = adaptive.pick(from: servers, excluding: .none)
        servers[1].startRequests(3)
        for _ in 0..<19 { adaptive.observe(serverIndex: 1, responseNanoseconds: 10_000_000, failed: false, now: 1) }
        adaptive.observe(serverIndex: 1, responseNanoseconds: 200_000_000, failed: true, now: 1)
        let counts = adaptive.closeWindow()
        #expect(counts.count == 2)
        let window = counts[1].window(name: "s1", weight: 2)
        #expect(window.requests == 20)
        #expect(window.failures == 1)
        #expect(window.meanInFlight == 3)
        let p95 = try #require(window.p95Milliseconds)
        #expect(abs(p95 - 10) < 0.2)
        #expect(counts[0].window(name: "s0", weight: 1).p95Milliseconds == nil)
        #expect(adaptive.closeWindow().isEmpty)
    }

    @Test("windows from several loops merge")
    func windowsMerge() {
        var first = ServerWindowCounts()
        var second = ServerWindowCounts()
        for _ in 0..<50 { first.record(responseNanoseconds: 1_000_000, failed: false, inFlight: 1) }
        for _ in 0..<50 { second.record(responseNanoseconds: 100_000_000, failed: true, inFlight: 3) }
        first.merge(second)
        let window = first.window(name: "s", weight: 1)
        #expect(window.requests == 100)
        #expect(window.failures == 50)
        #expect(window.meanInFlight == 2)
        #expect(window.p95Milliseconds.map { abs($0 - 100) < 1 } == true)
        // A server that answered nothing: the requests it holds now stand in.
        #expect(ServerWindowCounts().window(name: "s", weight: 1, inFlightNow: 7).meanInFlight == 7)
        #expect(ServerWindowCounts().window(name: "s", weight: 1, inFlightNow: 7).p95Milliseconds == nil)
    }

    @Test("latency-aware candidates learn while another algorithm picks, so a switch to one starts informed")
    func candidatesStayWarm() {
        let adaptive = AdaptiveAlgorithm(initial: .roundRobin)
        let servers = makeServers(count: 2)
        // Round robin picks while server 0 turns out slow.
        _ = adaptive.pick(from: servers, excluding: .none)
        adaptive.observe(serverIndex: 0, responseNanoseconds: 500_000_000, failed: false, now: 1_000_000_000)
        adaptive.observe(serverIndex: 1, responseNanoseconds: 5_000_000, failed: false, now: 1_000_000_000)
        adaptive.use(.peakEWMA)
        let latency = adaptive.current as! LatencyAware
        #expect(latency.name == .peakEWMA)
        #expect(latency.expectedResponseNanoseconds(of: 0, now: 1_000_000_000) == 500_000_000)
        #expect(latency.pick(from: servers, excluding: .none, now: 1_000_000_001) == 1)
    }

    @Test("the rotation guard leaves alike servers to round robin")
    func guardIdleWhenAlike() {
        let adaptive = AdaptiveAlgorithm(initial: .roundRobin)
        let servers = makeServers(count: 3)
        let second: UInt64 = 1_000_000_000
        for index in 0..<3 {
            adaptive.observe(serverIndex: index, responseNanoseconds: Int64(45_000_000 + index * 5_000_000), failed: false, now: second)
        }
        servers[0].startRequests(2)
        servers[1].startRequests(1)
        let picks = (0..<6).map { _ in adaptive.pick(from: servers, excluding: .none, now: second) }
        #expect(picks == [0, 1, 2, 0, 1, 2])
        #expect(adaptive.closeWindow().allSatisfy { $0.guarded == 0 })
    }

    @Test("the rotation guard passes over a server that turned slow, from its first slow answer, and counts it")
    func guardPassesOverASlowServer() {
        let adaptive = AdaptiveAlgorithm(initial: .roundRobin)
        let servers = makeServers(count: 3)
        let second: UInt64 = 1_000_000_000
        adaptive.observe(serverIndex: 0, responseNanoseconds: 50_000_000, failed: false, now: second)
        adaptive.observe(serverIndex: 1, responseNanoseconds: 50_000_000, failed: false, now: second)
        adaptive.observe(serverIndex: 2, responseNanoseconds: 500_000_000, failed: false, now: second)
        let counts = (0..<30).reduce(into: [0, 0, 0]) { counts, _ in
            counts[adaptive.pick(from: servers, excluding: .none, now: second)!] += 1
        }
        #expect(counts[2] == 0, "\(counts)")
        #expect(counts[0] + counts[1] == 30)
        #expect(adaptive.closeWindow()[2].guarded == 10)
    }

    @Test("the rotation guard passes over a server whose queue grows (less capacity), before its answers slow")
    func guardPassesOverAQueue() {
        let adaptive = AdaptiveAlgorithm(initial: .roundRobin)
        let servers = makeServers(count: 3)
        let second: UInt64 = 1_000_000_000
        for index in 0..<3 { adaptive.observe(serverIndex: index, responseNanoseconds: 50_000_000, failed: false, now: second) }
        servers[0].startRequests(1)
        servers[1].startRequests(1)
        servers[2].startRequests(6)  // (6 + 1) > 3 × (1 + 1): out of line
        let picks = (0..<3).map { _ in adaptive.pick(from: servers, excluding: .none, now: second) }
        #expect(!picks.contains(2))
        servers[2].requestFinished()  // (5 + 1) ≤ 3 × (1 + 1): back in line
        _ = adaptive.closeWindow()
        #expect((0..<3).map { _ in adaptive.pick(from: servers, excluding: .none, now: second) }.contains(2))
    }

    @Test("the guard is for rotation only: a load-aware algorithm's own pick stands")
    func guardOnlyInRotation() {
        let adaptive = AdaptiveAlgorithm(initial: .leastConnections)
        let servers = makeServers(count: 2)
        adaptive.observe(serverIndex: 0, responseNanoseconds: 900_000_000, failed: false, now: 1_000_000_000)
        adaptive.observe(serverIndex: 1, responseNanoseconds: 1_000_000, failed: false, now: 1_000_000_000)
        servers[1].startRequests(1)
        #expect(adaptive.pick(from: servers, excluding: .none, now: 1_000_000_000) == 0)
        #expect(adaptive.closeWindow().allSatisfy { $0.guarded == 0 })
    }
}
