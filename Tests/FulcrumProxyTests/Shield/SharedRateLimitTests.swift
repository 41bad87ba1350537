import Foundation
import FulcrumAdmin
import FulcrumProxy
import NIOHTTP1
import Testing

/// Rate limits with `shared: true`, counted in a real `redis-server` by two Fulcrum instances.
@Suite(
    "Shared rate limits: two instances, one redis-server",
    .enabled(if: RedisServerProcess.executable != nil, "redis-server is not installed (apt-get install redis-server): skipped")
)
struct SharedRateLimitTests {
    /// One frontend with `per_ip: 20/10s` (shared unless `shared` says otherwise), the store
    /// at `redisPort`.
    static func config(_ ports: [Int], redisPort: Int, onError: String = "local", timeout: String = "5s", shared: Bool = true) -> String {
        """
        global:
          workers: 2
          log: { level: warning, access: off }
          store: { redis: "redis://127.0.0.1:\(redisPort)/0", timeout: \(timeout), on_error: \(onError) }
        frontends:
          - name: test
            listen: ["127.0.0.1:8080"]
            rate_limits:
              per_ip: { key: src, rate: 20/10s, shared: \(shared) }
            default_backend: app
        backends:
          - name: app
            servers:
              - { name: w1, address: "127.0.0.1:\(ports[0])" }
        """
    }

    /// A browser's headers: nothing but `over-rate` can score.
    static let browser: [(String, String)] = [
        ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"),
        ("Accept", "text/html,application/xhtml+xml"),
        ("Accept-Language", "en"),
        ("Accept-Encoding", "gzip"),
    ]

    /// Runs `body` with two instances of `config` (each its own proxy, loops and worker).
    static func withTwoInstances(
        redisPort: Int,
        onError: String = "local",
        timeout: String = "5s",
        shared: Bool = true,
        _ body: (ProxyHarness, ProxyHarness) async throws -> Void
    ) async throws {
        let yaml = { (ports: [Int]) in config(ports, redisPort: redisPort, onError: onError, timeout: timeout, shared: shared) }
        try await withProxy(workers: [.init()], proxyThreads: 2, yaml: yaml) { first in
            try await withProxy(workers: [.init()], proxyThreads: 2, yaml: yaml) { second in
                try await body(first, second)
            }
        }
    }

    /// Sends `count` requests, alternating between the instances, four at a time; returns the
    /// statuses, how long it took, and the `Retry-After` of each 429.
    static func alternate(
        _ instances: [ProxyHarness],
        count: Int
    ) async throws -> (statuses: [UInt], elapsed: Duration, retryAfters: [String?]) {
        let start = ContinuousClock.now
        var statuses: [UInt] = []
        var retryAfters: [String?] = []
        for round in stride(from: 0, to: count, by: 4) {
            try await withThrowingTaskGroup(of: CollectedResponse.self) { group in
                for index in round..<min(round + 4, count) {
                    group.addTask { try await instances[index % instances.count].send("/work?delay_ms=0") }
                }
                for try await response in group {
                    statuses.append(response.status.code)
                    if response.status == .tooManyRequests { retryAfters.append(response.headers.first(name: "retry-after")) }
                }
            }
        }
        return (statuses, ContinuousClock.now - start, retryAfters)
    }

    /// What GCRA may admit beyond the limit in `elapsed`: one request per 500 ms (20/10s).
    static func refill(_ elapsed: Duration) -> Int {
        Int(elapsed / .milliseconds(500))
    }

    /// The store calls of `instances` that fell back (none, unless the machine is so loaded that
    /// Redis misses the timeout: each such request is then counted locally, by design).
    static func fallbacks(_ instances: [ProxyHarness]) async throws -> Int {
        var total = 0
        for instance in instances {
            total += try await instance.proxy.traffic().storeCalls.filter { $0.key.isError }.values.reduce(0, +)
        }
        return total
    }

    @Test("20 per 10 s over two instances admits 20 requests, not 40; the rest get 429 with Retry-After")
    func exactAcrossInstances() async throws {
        let redis = try await RedisServerProcess.start()
        try await Self.withTwoInstances(redisPort: redis.port) { first, second in
            let (statuses, elapsed, retryAfters) = try await Self.alternate([first, second], count: 40)
            let admitted = statuses.filter { $0 == 200 }.count
            let fallbacks = try await Self.fallbacks([first, second])
            #expect(
                admitted >= 20 && admitted <= 20 + Self.refill(elapsed) + fallbacks,
                "admitted \(admitted) in \(elapsed), \(fallbacks) fallbacks"
            )
            #expect(statuses.filter { $0 == 429 }.count == 40 - admitted)
            #expect(!retryAfters.isEmpty && retryAfters.allSatisfy { (Int($0 ?? "") ?? 0) >= 1 }, "\(retryAfters)")
            // Both instances asked the store (a fallback, under heavy load, is allowed for above).
            for instance in [first, second] {
                let calls = try await instance.proxy.traffic().storeCalls
                #expect((calls[.allowed] ?? 0) > 0 && (calls[.limited] ?? 0) > 0, "\(calls)")
            }
        }
    }

    @Test("A limit that is not shared counts per instance: 40 pass, and the store is never asked")
    func notShared() async throws {
        let redis = try await RedisServerProcess.start()
        try await Self.withTwoInstances(redisPort: redis.port, shared: false) { first, second in
            let (statuses, elapsed, _) = try await Self.alternate([first, second], count: 40)
            let admitted = statuses.filter { $0 == 200 }.count
            #expect(admitted == 40, "admitted \(admitted) in \(elapsed)")
            #expect(try await first.proxy.traffic().storeCalls.isEmpty)
        }
    }

    @Test("Redis stopped mid-test: on_error local, each instance counts the limit itself; nothing fails")
    func fallbackToLocal() async throws {
        let redis = try await RedisServerProcess.start()
        try await Self.withTwoInstances(redisPort: redis.port) { first, second in
            let (shared, _, _) = try await Self.alternate([first, second], count: 10)
            #expect(shared.allSatisfy { $0 == 200 })
            redis.kill()
            // Each instance alone now: its own 20 (its local count starts now), then 429.
            let (alone, elapsed, _) = try await Self.alternate([first], count: 25)
            let admitted = alone.filter { $0 == 200 }.count
            #expect(admitted >= 20 && admitted <= 20 + Self.refill(elapsed), "admitted \(admitted) in \(elapsed)")
            #expect(alone.allSatisfy { $0 == 200 || $0 == 429 }, "\(alone)")
            let calls = try await first.proxy.traffic().storeCalls
            #expect((calls[.unavailable] ?? 0) >= 1, "\(calls)")
            let metrics = try await MetricsExporter().scrape(proxy: first.proxy, reloads: .init())
            #expect(metrics.contains(#"fulcrum_store_errors_total{reason="unavailable"}"#), "\(metrics)")
            #expect(metrics.contains(#"fulcrum_store_decisions_total{result="allowed"}"#))
            // Back: the store decides again (its counts were lost with the process).
            try await redis.restart()
            try await Task.sleep(for: .milliseconds(1_200))  // the client's rest after a failure
            let (back, _, _) = try await Self.alternate([second], count: 4)
            #expect(back.allSatisfy { $0 == 200 }, "\(back)")
            let after = try await second.proxy.traffic().storeCalls
            #expect((after[.allowed] ?? 0) >= 5 + 4, "\(after)")
        }
    }

    @Test("Redis paused (answers nothing): on_error allow, requests pass within the timeout")
    func fallbackToAllow() async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.resume() }
        try await Self.withTwoInstances(redisPort: redis.port, onError: "allow", timeout: "100ms") { first, second in
            #expect(try await first.send("/work").status == .ok)
            redis.pause()
            let (statuses, _, _) = try await Self.alternate([first, second], count: 40)
            #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses)")
            // A timeout per connection, then a rest in which calls fail at once, without
            // waiting out the timeout each.
            let calls = try await first.proxy.traffic().storeCalls
            #expect((calls[.timeout] ?? 0) >= 1, "\(calls)")
            #expect((calls[.unavailable] ?? 0) >= 1, "\(calls)")
        }
    }

    @Test("The anti-bot shield's rate, shared: over 6 in 10 s over both instances is over-rate, and blocked")
    func sharedAntibotRate() async throws {
        let redis = try await RedisServerProcess.start()
        let yaml = { (ports: [Int]) in
            """
            global:
              workers: 2
              log: { level: warning, access: off }
              store: { redis: "redis://127.0.0.1:\(redis.port)/0", timeout: 5s }
            frontends:
              - name: test
                listen: ["127.0.0.1:8080"]
                antibot: { mode: block, threshold: 40, rate: 6/10s, shared: true }
                default_backend: app
            backends:
              - name: app
                servers:
                  - { name: w1, address: "127.0.0.1:\(ports[0])" }
            """
        }
        try await withProxy(workers: [.init()], proxyThreads: 2, yaml: yaml) { first in
            try await withProxy(workers: [.init()], proxyThreads: 2, yaml: yaml) { second in
                let start = ContinuousClock.now
                var statuses: [UInt] = []
                for index in 0..<12 {
                    statuses.append(try await [first, second][index % 2].send("/work", headers: Self.browser).status.code)
                }
                let admitted = statuses.filter { $0 == 200 }.count
                let fallbacks = try await Self.fallbacks([first, second])
                // Six in the window over both (each alone would pass its own six: 12).
                #expect(
                    admitted >= 6 && admitted <= 6 + Int((ContinuousClock.now - start) / .seconds(10) * 6) + fallbacks,
                    "\(statuses), \(fallbacks) fallbacks"
                )
                #expect(statuses.filter { $0 == 403 }.count == 12 - admitted)
                var blocked = 0
                for instance in [first, second] {
                    let decisions = try await instance.proxy.traffic().shieldDecisions
                    blocked += decisions[ShieldDecision(frontend: "test", decision: "blocked", reason: "over-rate")] ?? 0
                }
                #expect(blocked == 12 - admitted)
            }
        }
    }
}
