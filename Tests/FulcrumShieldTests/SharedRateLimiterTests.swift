import FulcrumShield
import Testing

/// `SharedRateLimiter`: `RateLimiter`'s semantics from several threads at once, exactly.
@Suite("SharedRateLimiter")
struct SharedRateLimiterTests {
    private static let hour: UInt64 = 3_600_000_000_000

    @Test("four threads hammering one key: exactly rate + burst pass")
    func exactUnderContention() async {
        let limiter = SharedRateLimiter(rate: 100, period: Self.hour, burst: 19, maxEntries: 1_000)
        let passed = await withTaskGroup(of: Int.self) { group in
            for thread in 0..<4 {
                group.addTask {
                    var passed = 0
                    for attempt in 0..<5_000 {
                        // Clocks a little apart, as two loops' are.
                        let now = 1_000_000 + UInt64(attempt) * 10 + UInt64(thread)
                        if case .allowed = limiter.check(key: "client", now: now) { passed += 1 }
                    }
                    return passed
                }
            }
            return await group.reduce(0, +)
        }
        #expect(passed == 20)
    }

    @Test("keys are counted apart, in whichever shard they fall")
    func keysApart() {
        let limiter = SharedRateLimiter(rate: 1, period: Self.hour, burst: 0, maxEntries: 1_000)
        for index in 0..<500 {
            #expect(limiter.check(key: "k\(index)", now: 1) == .allowed)
            #expect(limiter.check(key: "k\(index)", now: 2) != .allowed)
        }
        #expect(limiter.count == 500)
        #expect(limiter.shardCount == 16)
    }

    @Test("the shards hold maxEntries keys in all, however it divides")
    func capacity() {
        for maxEntries in [1, 3, 17, 10_000] {
            let limiter = SharedRateLimiter(rate: 1, period: Self.hour, burst: 0, maxEntries: maxEntries)
            for index in 0..<(maxEntries * 20 + 100) {
                _ = limiter.check(key: "key-\(index)", now: 1)
            }
            #expect(limiter.count == maxEntries, "maxEntries \(maxEntries)")
            #expect(limiter.shardCount <= max(1, maxEntries))
        }
    }
}
