import Testing

@testable import FulcrumShield

private let second: UInt64 = 1_000_000_000
private let minute: UInt64 = 60 * second

@Suite struct RateLimiterTests {
    @Test("rate 5/min, burst 0: requests 12 s apart pass, a 6th inside the minute is refused, at 60 s it passes")
    func sixthInsideTheMinuteIsRefused() {
        let limiter = RateLimiter(rate: 5, period: minute, burst: 0, maxEntries: 100)
        let start: UInt64 = 1_000 * second  // not 0: the clock is arbitrary
        for request in 0..<5 {
            #expect(limiter.check(key: "a", now: start + UInt64(request) * 12 * second) == .allowed)
        }
        #expect(limiter.check(key: "a", now: start + 59 * second) == .limited(retryAfterSeconds: 1))
        #expect(limiter.check(key: "a", now: start + 60 * second) == .allowed)
        // The window keeps sliding: the next one is due 12 s later.
        #expect(limiter.check(key: "a", now: start + 71 * second) == .limited(retryAfterSeconds: 1))
        #expect(limiter.check(key: "a", now: start + 72 * second) == .allowed)
    }

    @Test("burst 0: a second request at once waits period / rate")
    func burstZeroSpacesRequests() {
        let limiter = RateLimiter(rate: 5, period: minute, burst: 0, maxEntries: 100)
        #expect(limiter.check(key: "a", now: 0) == .allowed)
        #expect(limiter.check(key: "a", now: 0) == .limited(retryAfterSeconds: 12))
        #expect(limiter.check(key: "a", now: 3 * second) == .limited(retryAfterSeconds: 9))
    }

    @Test("retryAfter is the exact wait rounded up: 1 ns before it is refused, at it passes")
    func retryAfterIsExact() {
        let limiter = RateLimiter(rate: 5, period: minute, burst: 0, maxEntries: 100)
        #expect(limiter.check(key: "a", now: 0) == .allowed)
        let refusedAt = 5 * second + second / 2
        #expect(limiter.check(key: "a", now: refusedAt) == .limited(retryAfterSeconds: 7))  // 6.5 s, rounded up
        #expect(limiter.check(key: "a", now: 12 * second - 1) == .limited(retryAfterSeconds: 1))
        #expect(limiter.check(key: "a", now: 12 * second) == .allowed)
    }

    @Test("refused requests do not count: hammering while limited does not prolong the wait")
    func refusalsDoNotCount() {
        let limiter = RateLimiter(rate: 1, period: 10 * second, burst: 0, maxEntries: 100)
        #expect(limiter.check(key: "a", now: 0) == .allowed)
        for millisecond in stride(from: UInt64(0), to: 10_000, by: 7) {
            #expect(limiter.check(key: "a", now: millisecond * 1_000_000) != .allowed)
        }
        #expect(limiter.check(key: "a", now: 10 * second) == .allowed)
    }

    @Test("burst 4 at 5/min: five pass at once, the sixth waits 12 s, and a minute holds at most 9")
    func burst() {
        let limiter = RateLimiter(rate: 5, period: minute, burst: 4, maxEntries: 100)
        for _ in 0..<5 {
            #expect(limiter.check(key: "a", now: 0) == .allowed)
        }
        #expect(limiter.check(key: "a", now: 0) == .limited(retryAfterSeconds: 12))
        // Hammer every 100 ms for the rest of the minute: 4 more pass (at 12, 24, 36, 48 s).
        var passed = 5
        for tenth in 1..<600 {
            if limiter.check(key: "a", now: UInt64(tenth) * second / 10) == .allowed { passed += 1 }
        }
        #expect(passed == 9)
        // A quiet key gets its burst back: after the schedule catches up (one interval per
        // request ahead), five pass at once again.
        let later = 10 * minute
        for _ in 0..<5 {
            #expect(limiter.check(key: "a", now: later) == .allowed)
        }
        #expect(limiter.check(key: "a", now: later) == .limited(retryAfterSeconds: 12))
    }

    @Test("under random traffic no window of one period passes more than rate + burst, and each retryAfter is honoured")
    func slidingWindowBoundHolds() {
        for (rate, burst) in [(5, 0), (5, 4), (100, 20), (3, 7)] {
            let period = 10 * second
            let interval = period / UInt64(rate)
            let limiter = RateLimiter(rate: rate, period: period, burst: burst, maxEntries: 10)
            var random = SplitMix64(seed: UInt64(rate * 31 + burst))
            var passed: [UInt64] = []
            var now: UInt64 = 0
            var promised: UInt64?  // when a refusal said the next request would pass
            // Cycles of quiet (the burst allowance refills) then two periods of requests
            // arriving faster than the rate, at random.
            for _ in 0..<30 {
                now += 2 * period + random.next() % period
                let busyUntil = now + 2 * period
                while now < busyUntil {
                    now += 1 + random.next() % (interval / 2)
                    if let due = promised, now >= due {
                        #expect(limiter.check(key: "k", now: now) == .allowed, "rate \(rate) burst \(burst) at \(now)")
                        passed.append(now)
                        promised = nil
                        continue
                    }
                    switch limiter.check(key: "k", now: now) {
                    case .allowed:
                        passed.append(now)
                        promised = nil
                    case .limited(let seconds):
                        #expect(seconds >= 1)
                        promised = now + UInt64(seconds) * second
                    }
                }
            }
            // The most passes in any window (t - period, t] ending at a pass.
            var maximum = 0
            var first = 0
            for last in passed.indices {
                while passed[first] + period <= passed[last] { first += 1 }
                maximum = max(maximum, last - first + 1)
            }
            #expect(maximum == rate + burst, "rate \(rate) burst \(burst)")  // reached, never exceeded
        }
    }

    @Test("keys are limited independently")
    func keysAreIndependent() {
        let limiter = RateLimiter(rate: 1, period: minute, burst: 0, maxEntries: 100)
        #expect(limiter.check(key: "192.0.2.1", now: 0) == .allowed)
        #expect(limiter.check(key: "192.0.2.2", now: 0) == .allowed)
        #expect(limiter.check(key: "192.0.2.1", now: 0) == .limited(retryAfterSeconds: 60))
        #expect(limiter.count == 2)
    }

    @Test("the least recently seen key is evicted; a touched key stays")
    func leastRecentlyUsedIsEvicted() {
        let limiter = RateLimiter(rate: 1, period: minute, burst: 0, maxEntries: 3)
        for key in ["a", "b", "c"] {
            #expect(limiter.check(key: key, now: 0) == .allowed)
        }
        #expect(limiter.keysByRecency == ["c", "b", "a"])
        // Touching "a" (even a refused request) makes it the most recent; "b" is then the oldest.
        #expect(limiter.check(key: "a", now: second) == .limited(retryAfterSeconds: 59))
        #expect(limiter.check(key: "d", now: second) == .allowed)
        #expect(limiter.keysByRecency == ["d", "a", "c"])
        #expect(limiter.count == 3)
        // "a" is still remembered (limited); "b" was forgotten, so it starts afresh.
        #expect(limiter.check(key: "a", now: 2 * second) == .limited(retryAfterSeconds: 58))
        #expect(limiter.check(key: "b", now: 2 * second) == .allowed)  // evicts "c"
        #expect(limiter.keysByRecency == ["b", "a", "d"])
        #expect(limiter.check(key: "c", now: 2 * second) == .allowed)  // evicts "d"
        #expect(limiter.keysByRecency == ["c", "b", "a"])
    }

    @Test("one entry: every new key evicts the last")
    func singleEntry() {
        let limiter = RateLimiter(rate: 1, period: minute, burst: 0, maxEntries: 1)
        #expect(limiter.check(key: "a", now: 0) == .allowed)
        #expect(limiter.check(key: "a", now: 0) == .limited(retryAfterSeconds: 60))
        #expect(limiter.check(key: "b", now: 0) == .allowed)
        #expect(limiter.check(key: "a", now: 0) == .allowed)
        #expect(limiter.count == 1)
        #expect(limiter.keysByRecency == ["a"])
    }

    @Test("1,000,000 distinct keys with maxEntries 10,000: the count stays at 10,000, the newest remain, in a few seconds")
    func boundedMemoryUnderAFlood() {
        let limiter = RateLimiter(rate: 100, period: 10 * second, burst: 0, maxEntries: 10_000)
        // The keys are made before the clock starts: the limiter's time is what is measured.
        let keys = (0..<1_000_000).map { "10.\($0 >> 16).\($0 >> 8 & 0xff).\($0 & 0xff)" }
        var maximumCount = 0
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            for (index, key) in keys.enumerated() {
                if limiter.check(key: key, now: UInt64(index)) != .allowed {
                    Issue.record("a new key was refused")
                }
                if index & 0x3ff == 0 { maximumCount = max(maximumCount, limiter.count) }
            }
        }
        print("RateLimiter: 1,000,000 distinct keys, maxEntries 10,000: \(elapsed)")
        #expect(maximumCount <= 10_000)
        #expect(limiter.count == 10_000)
        let recent = limiter.keysByRecency
        #expect(recent.count == 10_000)
        #expect(recent.first == keys.last)
        #expect(Set(recent) == Set(keys.suffix(10_000)))
        // The newest keys are remembered (limited), the oldest forgotten (allowed afresh).
        #expect(limiter.check(key: keys[999_999], now: 1_000_000) == .limited(retryAfterSeconds: 1))
        #expect(limiter.check(key: keys[0], now: 1_000_000) == .allowed)
        // About 2 s in a debug build on a quiet machine. The bound is there to catch work per
        // check that grows with the entries (a linear eviction would take minutes), not noise:
        // 5 s failed on a machine loaded by parallel builds.
        #expect(elapsed < .seconds(30))
    }

    @Test("removeAll forgets every key")
    func removeAll() {
        let limiter = RateLimiter(rate: 1, period: minute, burst: 0, maxEntries: 2)
        _ = limiter.check(key: "a", now: 0)
        _ = limiter.check(key: "b", now: 0)
        limiter.removeAll()
        #expect(limiter.count == 0)
        #expect(limiter.keysByRecency.isEmpty)
        #expect(limiter.check(key: "a", now: 0) == .allowed)
        #expect(limiter.check(key: "c", now: 0) == .allowed)
        #expect(limiter.check(key: "d", now: 0) == .allowed)
        #expect(limiter.keysByRecency == ["d", "c"])
    }

    @Test("a rate that does not divide the period rounds the spacing up, keeping the bound")
    func roundingKeepsTheBound() {
        // 3 per 10 ns: spacing 4 ns (not 3.33), so at most 3 in any 10 ns.
        let limiter = RateLimiter(rate: 3, period: 10, burst: 0, maxEntries: 1)
        let passedAt = (0..<20).filter { limiter.check(key: "a", now: UInt64($0)) == .allowed }
        #expect(passedAt == [0, 4, 8, 12, 16])
    }
}

/// A deterministic random source for tests (SplitMix64).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
