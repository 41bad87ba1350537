/// Limits how often each key — a client address, a header or cookie value — may pass, in the
/// manner of nginx's `limit_req` (and of an HAProxy stick table holding a request rate), with
/// a bounded number of keys remembered.
///
/// ## Semantics
///
/// Configured with `rate` requests per `period` and a `burst`, the limiter is GCRA (the
/// generic cell rate algorithm, a token bucket kept as one timestamp per key):
/// - requests of a key are spaced at least `period / rate` apart, except that up to `burst`
///   requests may come early: a quiet key can send `burst + 1` requests at once;
/// - consequently, **in any window of length `period`, at most `rate + burst` requests of a key
///   pass** — the window slides with time, it is not a fixed minute on the clock;
/// - a refused request does not count: hammering while limited does not prolong the wait;
/// - `retryAfterSeconds` is the wait, rounded up to a whole second (at least 1), after which
///   the next request of that key will pass if no other passes first.
///
/// With rate 5 per minute and burst 0, requests are spaced 12 s apart: requests at 0, 12, 24,
/// 36 and 48 s pass; a 6th at 59 s is refused (`retryAfterSeconds` 1: it is inside the minute
/// that began at 0 s), one at 60 s passes (the window has slid past the first). A second
/// request at 0 s is refused with `retryAfterSeconds` 12. With burst 4 the five may all come at
/// 0 s, and at most 9 pass in any minute.
///
/// Burst 0 is strict, and fits a login form; for page views set `burst` to at least the number
/// of requests a page load makes at once. `burst: rate - 1` lets a whole period's allowance
/// through at once, like a sliding-window counter does.
///
/// Compared to the two-window weighted counter (HAProxy's `http_req_rate`, Cloudflare's
/// limiter), GCRA needs one integer per key instead of three, the bound above is exact rather
/// than an estimate that assumes evenly spread traffic, and the retry time is exact.
///
/// ## Memory
///
/// At most `maxEntries` keys are remembered; a new key beyond that evicts the least recently
/// seen one (LRU). A flood of spoofed keys therefore cannot exhaust memory — it can at worst
/// push an offender out of the table, which then starts again with a full allowance (as it
/// would from an HAProxy stick table). Every operation is O(1): a dictionary from key to slot
/// and a doubly linked list threaded through a preallocated array by index. Once the table is
/// full, a check allocates nothing (the key's own storage belongs to the caller's string).
/// The dictionary's hashing is seeded per process, so crafted keys cannot make it degrade.
///
/// ## Threading
///
/// Not thread-safe. The proxy uses it through `SharedRateLimiter`, which shards keys over
/// several of these, each behind a mutex, so that every event loop counts in one table.
package final class RateLimiter {
    /// Whether a request may pass.
    package enum Decision: Hashable, Sendable {
        case allowed
        /// Refused; the next request of this key will pass after this many seconds.
        case limited(retryAfterSeconds: Int)
    }

    /// Requests per `period` in the long run.
    package let rate: Int
    /// The period `rate` is counted over, in nanoseconds.
    package let period: UInt64
    /// Requests a key may send ahead of its schedule.
    package let burst: Int
    /// Keys remembered at most.
    package let maxEntries: Int

    /// The spacing between a key's requests: period / rate, rounded up so that the bound
    /// `rate + burst` per window holds.
    private let interval: UInt64
    /// How far ahead of schedule a key may be: burst × interval.
    private let tolerance: UInt64

    private struct Entry {
        var key: String
        /// GCRA's *theoretical arrival time*: when the key will be back on schedule. At or
        /// before now means the key has its full allowance.
        var dueAt: UInt64
        var newer: Int32
        var older: Int32
    }

    private static let none: Int32 = -1
    private var slots: [String: Int32]
    private var entries: [Entry]
    private var newest: Int32 = RateLimiter.none
    private var oldest: Int32 = RateLimiter.none

    /// - Parameters:
    ///   - rate: requests per `period`, at least 1.
    ///   - period: nanoseconds, e.g. `60_000_000_000` for a minute.
    ///   - burst: requests a key may send ahead of its schedule, at least 0.
    ///   - maxEntries: keys remembered at most, at least 1. Memory is about 60 bytes per key
    ///     (plus a key's text beyond 15 bytes), reserved up front.
    package init(rate: Int, period: UInt64, burst: Int, maxEntries: Int) {
        precondition(rate >= 1 && period >= 1 && burst >= 0, "rate and period must be positive, burst not negative")
        precondition(maxEntries >= 1 && maxEntries <= Int(Int32.max), "maxEntries out of range")
        self.rate = rate
        self.period = period
        self.burst = burst
        self.maxEntries = maxEntries
        interval = (period + UInt64(rate) - 1) / UInt64(rate)
        let (product, overflow) = UInt64(burst).multipliedReportingOverflow(by: interval)
        precondition(!overflow, "burst × period / rate does not fit in 64 bits of nanoseconds")
        tolerance = product
        slots = Dictionary(minimumCapacity: maxEntries)
        entries = []
        entries.reserveCapacity(maxEntries)
    }

    /// Keys currently remembered (≤ `maxEntries`).
    package var count: Int {
        slots.count
    }

    /// Decides on a request of `key` at `now` and counts it if it passes.
    ///
    /// - Parameter now: a monotonic clock in nanoseconds (the proxy's event-loop clock);
    ///   it must not go backwards between calls.
    package func check(key: String, now: UInt64) -> Decision {
        if let slot = slots[key] {
            moveToNewest(slot)
            let dueAt = max(entries[Int(slot)].dueAt, now)
            let ahead = dueAt - now
            guard ahead <= tolerance else {
                let wait = ahead - tolerance
                return .limited(retryAfterSeconds: Int((wait + 999_999_999) / 1_000_000_000))
            }
            entries[Int(slot)].dueAt = dueAt + interval
            return .allowed
        }
        // A key not remembered has its full allowance, so its first request always passes.
        insert(key: key, dueAt: now + interval)
        return .allowed
    }

    /// Forgets every key.
    package func removeAll() {
        slots.removeAll(keepingCapacity: true)
        entries.removeAll(keepingCapacity: true)
        newest = Self.none
        oldest = Self.none
    }

    private func insert(key: String, dueAt: UInt64) {
        let slot: Int32
        if entries.count < maxEntries {
            slot = Int32(entries.count)
            entries.append(Entry(key: key, dueAt: dueAt, newer: Self.none, older: Self.none))
        } else {
            // Reuse the least recently seen key's slot.
            slot = oldest
            unlink(slot)
            slots.removeValue(forKey: entries[Int(slot)].key)
            entries[Int(slot)].key = key
            entries[Int(slot)].dueAt = dueAt
        }
        slots[key] = slot
        linkAsNewest(slot)
    }

    private func moveToNewest(_ slot: Int32) {
        guard slot != newest else { return }
        unlink(slot)
        linkAsNewest(slot)
    }

    private func unlink(_ slot: Int32) {
        // The two links only: copying the entry would retain its key.
        let newer = entries[Int(slot)].newer
        let older = entries[Int(slot)].older
        if newer != Self.none {
            entries[Int(newer)].older = older
        } else {
            newest = older
        }
        if older != Self.none {
            entries[Int(older)].newer = newer
        } else {
            oldest = newer
        }
    }

    private func linkAsNewest(_ slot: Int32) {
        entries[Int(slot)].older = newest
        entries[Int(slot)].newer = Self.none
        if newest != Self.none {
            entries[Int(newest)].newer = slot
        } else {
            oldest = slot
        }
        newest = slot
    }
}

extension RateLimiter {
    /// The keys from most to least recently seen (for tests and diagnostics; O(count)).
    package var keysByRecency: [String] {
        var keys: [String] = []
        keys.reserveCapacity(count)
        var slot = newest
        while slot != Self.none {
            keys.append(entries[Int(slot)].key)
            slot = entries[Int(slot)].older
        }
        return keys
    }
}
