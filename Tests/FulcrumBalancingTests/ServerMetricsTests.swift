import Testing

@testable import FulcrumBalancing

@Suite struct ServerMetricsTests {
    private static let millisecond: Int64 = 1_000_000
    private static let second: UInt64 = 1_000_000_000

    @Test("rates, error rate and percentiles over the window; totals by kind of failure")
    func windowAndTotals() {
        let metrics = ServerMetrics()
        let now = 100 * Self.second
        for index in 0..<100 {
            metrics.record(.response(status: index < 10 ? 503 : 200), responseNanoseconds: Int64(index + 1) * Self.millisecond, now: now)
        }
        metrics.record(.connectFailure, responseNanoseconds: 0, now: now)
        metrics.record(.timeout, responseNanoseconds: 0, now: now)
        metrics.record(.noResponse, responseNanoseconds: 0, now: now)
        let snapshot = metrics.snapshot(now: now + Self.second)
        #expect(snapshot.totals == .init(requests: 103, responses5xx: 10, connectFailures: 1, timeouts: 1, noResponses: 1))
        #expect(snapshot.totals.errors == 13)
        #expect(snapshot.windowRequests == 103)
        #expect(abs(snapshot.errorRate - 13.0 / 103) < 1e-9)
        // The window began at the start of the oldest slot: 100 s is the start of a slot, so
        // the window is 15 s of earlier slots plus the 1 s since.
        #expect(snapshot.windowNanoseconds == 16 * Self.second)
        #expect(abs(snapshot.requestRate - 103.0 / 16) < 1e-9)
        let p50 = snapshot.percentileMilliseconds(50)!
        let p99 = snapshot.percentileMilliseconds(99)!
        #expect(abs(p50 - 50) <= 1)
        #expect(abs(p99 - 99) <= 1.5)
        #expect(snapshot.ewmaMilliseconds! > 80)  // the EWMA follows the latest (slowest) responses
    }

    @Test("old slots leave the window; totals stay")
    func slidingWindow() {
        let metrics = ServerMetrics()
        metrics.record(.response(status: 200), responseNanoseconds: 500 * Self.millisecond, now: 0)
        let later = UInt64(ServerMetrics.slotCount) * ServerMetrics.slotNanoseconds
        metrics.record(.response(status: 200), responseNanoseconds: 2 * Self.millisecond, now: later)
        let snapshot = metrics.snapshot(now: later)
        #expect(snapshot.totals.requests == 2)
        #expect(snapshot.windowRequests == 1)
        #expect(abs(snapshot.percentileMilliseconds(100)! - 2) < 0.1)
        let quiet = metrics.snapshot(now: later * 3)
        #expect(quiet.windowRequests == 0 && quiet.requestRate == 0 && quiet.percentileMilliseconds(50) == nil)
    }

    @Test("loops merge: counts add up, percentiles cover both, the EWMA is weighted by traffic")
    func merge() {
        let fast = ServerMetrics()
        let slow = ServerMetrics()
        let now = 42 * Self.second
        for _ in 0..<90 { fast.record(.response(status: 200), responseNanoseconds: 10 * Self.millisecond, now: now) }
        for _ in 0..<10 { slow.record(.response(status: 500), responseNanoseconds: 100 * Self.millisecond, now: now) }
        var merged = fast.snapshot(now: now)
        merged.merge(slow.snapshot(now: now))
        #expect(merged.totals.requests == 100 && merged.windowErrors == 10)
        #expect(abs(merged.percentileMilliseconds(50)! - 10) < 0.2)
        #expect(abs(merged.percentileMilliseconds(95)! - 100) < 1)
        #expect(abs(merged.ewmaMilliseconds! - 19) < 0.5)
    }
}
