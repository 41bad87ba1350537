import Synchronization

/// A `RateLimiter` every event loop checks against, so that a limit is exact however a
/// client's connections spread over the loops, as HAProxy's stick tables are across threads
/// and nginx's `limit_req` zones across workers.
///
/// The table is split into shards by the key's hash, each a `RateLimiter` behind its own
/// mutex: a check locks one shard for the few hundred nanoseconds of one GCRA step, and two
/// loops collide only when their keys fall in the same shard at the same moment. A key always
/// maps to the same shard, so its count is exact. The semantics are `RateLimiter`'s, with one
/// difference: the least recently seen key is evicted per shard, not over the whole table.
/// The shards' capacities add up to `maxEntries` exactly.
package final class SharedRateLimiter: Sendable {
    /// Shards at most: enough that two or a few dozen loops rarely meet in one.
    private static let maxShards = 16

    /// One shard: a `Mutex` cannot be copied, so an array holds it in a class.
    private final class Shard: Sendable {
        let limiter: Mutex<RateLimiter>

        init(_ limiter: consuming sending RateLimiter) {
            self.limiter = Mutex(limiter)
        }
    }

    private let shards: [Shard]
    /// `shards.count - 1`; the count is a power of two.
    private let shardMask: Int

    package let rate: Int
    package let period: UInt64
    package let burst: Int
    package let maxEntries: Int

    /// The parameters are `RateLimiter`'s.
    package init(rate: Int, period: UInt64, burst: Int, maxEntries: Int) {
        precondition(maxEntries >= 1, "maxEntries out of range")
        var shardCount = 1
        while shardCount < Self.maxShards, shardCount * 2 <= maxEntries { shardCount *= 2 }
        shards = (0..<shardCount).map { index in
            // The remainder goes to the first shards, one each.
            let capacity = maxEntries / shardCount + (index < maxEntries % shardCount ? 1 : 0)
            return Shard(RateLimiter(rate: rate, period: period, burst: burst, maxEntries: capacity))
        }
        shardMask = shardCount - 1
        self.rate = rate
        self.period = period
        self.burst = burst
        self.maxEntries = maxEntries
    }

    /// Decides on a request of `key` at `now` and counts it if it passes (`RateLimiter.check`).
    /// Loops may pass slightly different clocks; a `now` a little behind the key's last one is
    /// harmless (GCRA takes the later of the two).
    package func check(key: String, now: UInt64) -> RateLimiter.Decision {
        shards[key.hashValue & shardMask].limiter.withLock { $0.check(key: key, now: now) }
    }

    /// Keys remembered now, over every shard (≤ `maxEntries`).
    package var count: Int {
        shards.reduce(0) { total, shard in total + shard.limiter.withLock { $0.count } }
    }

    /// Shards the table is split into (for tests).
    package var shardCount: Int { shards.count }
}
