import FulcrumConfig
import FulcrumWorker
import Testing

/// `algorithm: hash` through a real proxy to real workers: a key keeps its server, a drained
/// server's keys move and no others, a request without a key is balanced by rotation.
@Suite("Hashing through the proxy", .serialized)
struct HashBalancingTests {
    static func config(_ ports: [Int], key: String) -> String {
        simpleConfig(ports, algorithm: "hash").replacingOccurrences(
            of: "algorithm: hash\n",
            with: "algorithm: hash\n    hash_key: \"\(key)\"\n"
        )
    }

    /// The worker that answers each user, by `X-User`.
    static func placement(_ harness: ProxyHarness, users: [String]) async throws -> [String: String] {
        var placement: [String: String] = [:]
        for user in users {
            placement[user] = try await harness.send("/work", headers: [("X-User", user)]).worker ?? "none"
        }
        return placement
    }

    @Test("hash_key header: a user keeps a worker; a drained worker's users move, no one else's; no header rotates")
    func headerKey() async throws {
        let workers = Array(repeating: WorkerBehaviour(delayMilliseconds: 0), count: 3)
        try await withProxy(workers: workers, yaml: { Self.config($0, key: "header:X-User") }) { harness in
            let users = (0..<30).map { "user-\($0)" }
            let first = try await Self.placement(harness, users: users)
            #expect(try await Self.placement(harness, users: users) == first)
            #expect(Set(first.values).count == 3, "\(first)")

            let drained = try #require(first["user-0"])
            #expect(harness.proxy.setServerState(.drain, backend: "app", server: drained))
            let after = try await Self.placement(harness, users: users)
            for user in users {
                if first[user] == drained {
                    #expect(after[user] != drained, "\(user)")
                } else {
                    #expect(after[user] == first[user], "\(user)")
                }
            }
            #expect(harness.proxy.setServerState(.ready, backend: "app", server: drained))
            #expect(try await Self.placement(harness, users: users) == first)

            // No key: round robin over the three.
            #expect(Set(try await harness.workersServing(requests: 3)).count == 3)
        }
    }

    @Test("hash_key query and cookie: the same value, the same worker")
    func queryAndCookieKeys() async throws {
        let workers = Array(repeating: WorkerBehaviour(delayMilliseconds: 0), count: 3)
        try await withProxy(workers: workers, yaml: { Self.config($0, key: "query:id") }) { harness in
            for id in ["7", "42", "abc"] {
                let answered = try await (0..<4).asyncMap { n in try await harness.send("/work?id=\(id)&n=\(n)").worker }
                #expect(Set(answered).count == 1, "\(id): \(answered)")
            }
            var config = harness.proxy.config
            config.backends[0].hashKey = .cookie("session")
            try await harness.proxy.reload(to: config)
            for session in ["s1", "s2", "s3"] {
                let answered = try await (0..<4).asyncMap { _ in
                    try await harness.send("/work", headers: [("Cookie", "theme=dark; session=\(session)")]).worker
                }
                #expect(Set(answered).count == 1, "\(session): \(answered)")
            }
        }
    }
}
