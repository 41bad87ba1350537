import FulcrumConfig
import FulcrumRedis
import FulcrumShield
import NIOCore
import NIOPosix
import Testing

@testable import FulcrumProxy

/// The store's script against a real `redis-server`: the same GCRA as the local limiter.
@Suite(
    "SharedLimitStore: the GCRA script in redis-server",
    .enabled(if: RedisServerProcess.executable != nil, "redis-server is not installed (apt-get install redis-server): skipped")
)
struct SharedLimitStoreTests {
    /// `count` checks of one key at once, through the store, as outcomes.
    private static func checks(_ limit: RateLimitConfig, key: String, count: Int, redisPort: Int) async throws -> [SharedLimitStore.Outcome] {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        var config = StoreConfig(redis: RedisURL(host: "127.0.0.1", port: redisPort))
        config.timeout = .seconds(10)
        let setup = try SharedLimitStoreSetup(config)
        return try await loop.flatSubmit {
            let store = setup.makeStore(on: loop, counters: TrafficCounters(), logger: .init(label: "test"))
            let futures = (0..<count).map { _ in store.check(frontend: "web", limit: limit, key: key) }
            return EventLoopFuture.whenAllSucceed(futures, on: loop)
        }.get()
    }

    @Test(
        "A burst admits what the local limiter admits, and the first refusal's wait is the same",
        arguments: [(20, 10, 0), (5, 60, 4), (1, 1, 0), (100, 60, 50)]
    )
    func sameAsLocal(requests: Int, seconds: Int, burst: Int) async throws {
        let redis = try await RedisServerProcess.start()
        var limit = RateLimitConfig(name: "per_ip", key: .source, requests: requests, period: .seconds(seconds))
        limit.burst = burst
        let count = requests + burst + 5
        let shared = try await Self.checks(limit, key: "203.0.113.7", count: count, redisPort: redis.port)
        // The local limiter as FrontendShield configures it, at one instant.
        let local = SharedRateLimiter(
            rate: requests,
            period: UInt64(seconds) * 1_000_000_000,
            burst: requests - 1 + burst,
            maxEntries: 10
        )
        let expected = (0..<count).map { _ in SharedLimitStore.Outcome.decided(local.check(key: "k", now: 1_000_000_000_000)) }
        // (Slow enough rates that the milliseconds the checks take admit nothing more.)
        #expect(shared.filter { $0 == .decided(.allowed) }.count == requests + burst)
        #expect(shared == expected)
        // Another key has its own allowance.
        #expect(try await Self.checks(limit, key: "203.0.113.8", count: 1, redisPort: redis.port) == [.decided(.allowed)])
    }

    @Test("The script is sent once (NOSCRIPT), then run by its digest; a flush loads it again")
    func scriptLoading() async throws {
        let redis = try await RedisServerProcess.start()
        let limit = RateLimitConfig(name: "l", key: .source, requests: 1000, period: .seconds(1))
        #expect(try await Self.checks(limit, key: "a", count: 3, redisPort: redis.port).allSatisfy { $0 == .decided(.allowed) })
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: redis.port)
        let exists = try await loop.flatSubmit {
            let client = RedisClient(endpoint: .init(address: address), eventLoop: loop, timeout: .seconds(2))
            return client.send(["SCRIPT", "EXISTS", SharedLimitStore.scriptDigest]).flatMap { exists in
                client.send(["SCRIPT", "FLUSH"]).map { _ in
                    client.close()
                    return exists
                }
            }
        }.get()
        #expect(exists == .array([.integer(1)]))
        #expect(try await Self.checks(limit, key: "a", count: 1, redisPort: redis.port) == [.decided(.allowed)])
    }

    @Test("No Redis: failed as unavailable, counted, never an error")
    func unavailable() async throws {
        let redis = try await RedisServerProcess.start()
        redis.kill()
        let limit = RateLimitConfig(name: "l", key: .source, requests: 10, period: .seconds(1))
        #expect(try await Self.checks(limit, key: "a", count: 3, redisPort: redis.port).allSatisfy { $0 == .failed(.unavailable) })
    }
}
