import Foundation
import FulcrumProxy
import FulcrumWorker
import NIOCore
import NIOHTTP1
import Testing

/// The rule actions beyond routing: header changes, redirects and the tarpit, end to end.
@Suite("Rule actions", .serialized)
struct RuleActionTests {
    private static let rules = """
            acls:
              old: { host: old.test }
              bad: { path_prefix: /bad }
              moved: { path: /old-page }
            rules:
              - { set_header: { name: X-Env, value: prod } }
              - { del_header: X-Internal }
              - { redirect: { to: "https://new.test{uri}", code: 301 }, if: old }
              - { redirect: { to: "https://{host}/moved{query}" }, if: [moved] }
              - { tarpit: 2s, if: bad }
        """

    private static func config(_ ports: [Int]) -> String {
        simpleConfig(ports, frontendExtra: rules)
    }

    @Test("set_header replaces what the client sent, del_header removes it; both apply to every request they match")
    func headers() async throws {
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: Self.config) { harness in
            let response = try await harness.send("/echo", headers: [("X-Env", "dev"), ("X-Internal", "secret"), ("X-Other", "kept")])
            #expect(response.status == .ok)
            let headers = try response.echoedHeaders
            #expect(headers.filter { $0.0.lowercased() == "x-env" }.map(\.1) == ["prod"])
            #expect(!headers.contains { $0.0.lowercased() == "x-internal" })
            #expect(headers.contains { $0.0.lowercased() == "x-other" && $0.1 == "kept" })
            // Added when the client sent none.
            let plain = try await harness.send("/echo")
            #expect(try plain.echoedHeaders.contains { $0.0.lowercased() == "x-env" && $0.1 == "prod" })
        }
    }

    @Test("redirect answers with the code and the location filled in from the request; the server sees nothing")
    func redirects() async throws {
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: Self.config) { harness in
            let moved = try await harness.send("/a/b?x=1", headers: [("Host", "old.test")])
            #expect(moved.status == .movedPermanently)
            #expect(moved.headers.first(name: "location") == "https://new.test/a/b?x=1")
            let page = try await harness.send("/old-page?utm=1", headers: [("Host", "shop.test:8080")])
            #expect(page.status == .found)
            #expect(page.headers.first(name: "location") == "https://shop.test/moved?utm=1")
            #expect(try await harness.send("/work").status == .ok)
            let served = try await harness.proxy.stats()[0].servers[0].metrics.totals.requests
            #expect(served == 1)
        }
    }

    @Test("tarpit holds the request, then answers 403 and closes; other connections are served meanwhile")
    func tarpit() async throws {
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: Self.config) { harness in
            let clock = ContinuousClock()
            let start = clock.now
            async let held = {
                let answer = try await RawClient.exchange(
                    port: harness.port,
                    chunks: ["GET /bad/page HTTP/1.1\r\nHost: a\r\n\r\nGET /work HTTP/1.1\r\nHost: a\r\n\r\n"],
                    timeout: .seconds(5)
                )
                return (answer, clock.now)
            }()
            // While it is held, the loop serves others: another request is answered before the
            // held one is (a wall-clock bound instead would fail on a busy machine).
            try await Task.sleep(for: .milliseconds(50))
            #expect(try await harness.send("/work").status == .ok)
            let otherAnswered = clock.now
            let ((raw, closed), heldAnswered) = try await held
            #expect(otherAnswered < heldAnswered)
            let elapsed = heldAnswered - start
            #expect(raw.hasPrefix("HTTP/1.1 403"), "\(raw.prefix(80))")
            #expect(elapsed >= .seconds(2))
            #expect(closed)
            // The pipelined request after it was not served: the connection closed instead.
            #expect(raw.components(separatedBy: "HTTP/1.1 ").count == 2)
            let served = try await harness.proxy.stats()[0].servers[0].metrics.totals.requests
            #expect(served == 1)
        }
    }

    @Test("a client that leaves during the tarpit costs nothing more")
    func tarpitClientLeaves() async throws {
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: Self.config) { harness in
            let (raw, _) = try await RawClient.exchange(
                port: harness.port,
                chunks: ["GET /bad HTTP/1.1\r\nHost: a\r\n\r\n"],
                timeout: .milliseconds(100)
            )
            #expect(raw.isEmpty)
            try await Task.sleep(for: .milliseconds(500))  // its timer was cancelled: nothing fires later
            #expect(try await harness.send("/work").status == .ok)
        }
    }
}
