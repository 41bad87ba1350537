import AsyncHTTPClient
import FulcrumWorker
import NIOCore
import NIOHTTP1
import Testing

/// The algorithms and the ACL rules, observed through real requests.
@Suite("Routing and balancing", .serialized)
struct RoutingAndBalancingTests {
    private static let fast = WorkerBehaviour(delayMilliseconds: 0)

    @Test("round robin visits the servers in exact order")
    func roundRobinOrder() async throws {
        try await withProxy(workers: [Self.fast, Self.fast, Self.fast], yaml: { simpleConfig($0) }) { harness in
            var order: [String] = []
            for _ in 0..<9 {
                order.append(try await harness.send("/work").worker ?? "?")
            }
            let start = try #require(["w1", "w2", "w3"].firstIndex(of: order[0]))
            let expected = (0..<9).map { "w\((start + $0) % 3 + 1)" }
            #expect(order == expected)
        }
    }

    @Test("weighted round robin splits exactly by weight (3:1)")
    func weightedProportions() async throws {
        try await withProxy(
            workers: [Self.fast, Self.fast],
            yaml: { simpleConfig($0, algorithm: "weighted_round_robin", weights: [3, 1]) }
        ) { harness in
            var counts: [String: Int] = [:]
            for _ in 0..<200 {
                counts[try await harness.send("/work").worker ?? "?", default: 0] += 1
            }
            #expect(counts == ["w1": 150, "w2": 50])
        }
    }

    @Test("least connections sends new requests to the idle server while the other is busy")
    func leastConnectionsAvoidsBusyServer() async throws {
        try await withProxy(
            workers: [Self.fast, Self.fast],
            yaml: { simpleConfig($0, algorithm: "least_connections") }
        ) { harness in
            // A slow request occupies one server...
            let slow = Task { try await harness.send("/work?delay_ms=1500") }
            try await waitUntil(timeout: .seconds(15)) {
                try await harness.proxy.requestsInFlight()["app"]?.values.reduce(0, +) == 1
            }
            // ...so every quick request goes to the other one.
            var quick: [String] = []
            for _ in 0..<8 {
                quick.append(try await harness.send("/work?delay_ms=1").worker ?? "?")
            }
            let busy = try await slow.value.worker
            #expect(busy != nil)
            #expect(Set(quick).count == 1)
            #expect(quick.first != busy)
        }
    }

    @Test("latency-aware algorithms send most requests to the fast server; round robin does not")
    func latencyAwareAlgorithmsPreferFastServer() async throws {
        let slow = WorkerBehaviour(delayMilliseconds: 40)
        for algorithm in ["least_response_time", "peak_ewma", "round_robin"] {
            try await withProxy(workers: [slow, Self.fast], yaml: { simpleConfig($0, algorithm: algorithm) }) { harness in
                var counts: [String: Int] = [:]
                for _ in 0..<40 {
                    counts[try await harness.send("/work").worker ?? "?", default: 0] += 1
                }
                if algorithm == "round_robin" {
                    #expect(counts == ["w1": 20, "w2": 20])
                } else {
                    // Both are tried at first (neither is measured); then w1's 40 ms keeps it
                    // out until its average decays, which takes seconds.
                    #expect(counts["w2", default: 0] >= 36, "\(algorithm): \(counts)")
                    #expect(counts["w1", default: 0] >= 1, "\(algorithm): \(counts)")
                }
            }
        }
    }

    @Test("random and power-of-two spread requests over every server")
    func randomisedAlgorithmsSpread() async throws {
        for algorithm in ["random", "power_of_two"] {
            try await withProxy(workers: [Self.fast, Self.fast, Self.fast], yaml: { simpleConfig($0, algorithm: algorithm) }) { harness in
                var counts: [String: Int] = [:]
                for _ in 0..<90 {
                    counts[try await harness.send("/work").worker ?? "?", default: 0] += 1
                }
                #expect(Set(counts.keys) == ["w1", "w2", "w3"], "\(algorithm): \(counts)")
            }
        }
    }

    @Test("ACL rules route by path, deny by method unless the source matches, and fall back to the default")
    func aclRouting() async throws {
        try await withProxy(
            workers: [Self.fast, Self.fast],
            yaml: { ports in
                """
                global:
                  workers: 1
                  log: { level: warning, access: off }
                frontends:
                  - name: public
                    listen: ["127.0.0.1:8080"]
                    acls:
                      api:    { path_prefix: /api/ }
                      static: { path_regex: '\\.(css|js|png)$' }
                      beta:   { header: { name: X-Beta, equals: "1" } }
                      posts:  { method: [POST, PUT] }
                      office: { src: ["10.0.0.0/8"] }
                      blog:   { host: blog.example.com }
                    rules:
                      - { use_backend: api, if: [api] }
                      - { use_backend: api, if: [beta] }
                      - { use_backend: api, if: [blog] }
                      - { deny: 403, if: [static] }
                      - { deny: 405, if: [posts], unless: [office] }
                    default_backend: web
                backends:
                  - name: web
                    servers: [{ name: web1, address: "127.0.0.1:\(ports[0])" }]
                  - name: api
                    servers: [{ name: api1, address: "127.0.0.1:\(ports[1])" }]
                """
            }
        ) { harness in
            #expect(try await harness.send("/api/users").worker == "w2")
            #expect(try await harness.send("/home").worker == "w1")
            #expect(try await harness.send("/home", headers: [("X-Beta", "1")]).worker == "w2")
            #expect(try await harness.send("/home", headers: [("Host", "Blog.Example.com:8080")]).worker == "w2")
            let denied = try await harness.send("/site.css")
            #expect(denied.status == .forbidden)
            #expect(denied.text.contains("403"))
            #expect(denied.worker == nil)
            let post = try await harness.send(.POST, "/form", body: .bytes(ByteBuffer(string: "a=1")))
            #expect(post.status == .methodNotAllowed)
            // The API rule comes first, so a POST to /api/ is forwarded.
            #expect(try await harness.send(.POST, "/api/x", body: .bytes(ByteBuffer(string: "a=1"))).worker == "w2")
        }
    }
}
