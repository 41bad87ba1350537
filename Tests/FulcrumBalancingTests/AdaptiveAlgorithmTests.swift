import FulcrumConfig
import Testing

@testable import FulcrumBalancing

/// `algorithm: adaptive` on one loop: delegation, switching, and the window it counts.
@Suite struct AdaptiveAlgorithmTests {
    @Test("picks with round robin until told otherwise, then with the new algorithm")
    func delegatesAndSwitches() {
        let adaptive = AdaptiveAlgorithm()
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
        let adaptive = AdaptiveAlgorithm()
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
}
