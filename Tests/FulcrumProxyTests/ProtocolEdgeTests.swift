import AsyncHTTPClient
import FulcrumWorker
import NIOCore
import NIOHTTP1
import Testing

/// Protocol corner cases where a proxy can go wrong: smuggling, pipelined bodies, half-close,
/// upgrades, local answers on keep-alive connections, and in-flight accounting.
@Suite("Protocol edge cases", .serialized)
struct ProtocolEdgeTests {
    private static let fast = WorkerBehaviour(delayMilliseconds: 0)

    @Test("Connection cannot strip Content-Length: a body is never read as a second request")
    func noSmugglingThroughConnection() async throws {
        try await withProxy(workers: [Self.fast], yaml: { simpleConfig($0) }) { harness in
            let smuggled = "GET /echo?smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
            let (raw, _) = try await RawClient.exchange(
                port: harness.port,
                chunks: [
                    "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \(smuggled.utf8.count)\r\n"
                        + "Connection: content-length, close\r\n\r\n\(smuggled)"
                ]
            )
            #expect(raw.hasPrefix("HTTP/1.1 200"))
            #expect(raw.components(separatedBy: "HTTP/1.1 ").count == 2, "exactly one response")
            #expect(raw.contains(#""body_bytes":\#(smuggled.utf8.count)"#))
            try await Task.sleep(for: .milliseconds(200))
            #expect(harness.workers[0].requestsServed == 1)
        }
    }

    @Test("pipelined requests with bodies are all forwarded and answered")
    func pipelinedBodies() async throws {
        try await withProxy(workers: [Self.fast], yaml: { simpleConfig($0) }) { harness in
            let (raw, _) = try await RawClient.exchange(
                port: harness.port,
                chunks: [
                    "POST /echo?n=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                        + "POST /echo?n=2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ndef\r\n0\r\n\r\n"
                        + "POST /echo?n=3 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nghi"
                ],
                timeout: .seconds(4)
            )
            #expect(raw.components(separatedBy: "HTTP/1.1 200 OK").count == 4, "\(raw)")
            for body in ["abc", "def", "ghi"] { #expect(raw.contains(#""body":"\#(body)""#)) }
        }
    }

    @Test("a client that half-closes after its request still gets the response")
    func halfClose() async throws {
        try await withProxy(workers: [Self.fast], yaml: { simpleConfig($0) }) { harness in
            let (raw, closed) = try await RawClient.exchange(
                port: harness.port,
                chunks: ["GET /work HTTP/1.1\r\nHost: a\r\n\r\n"],
                halfClose: true
            )
            #expect(raw.hasPrefix("HTTP/1.1 200"))
            #expect(raw.contains("work done by w1"))
            #expect(closed)
        }
    }

    @Test("a non-WebSocket Upgrade request is forwarded without Upgrade and the connection then closes; CONNECT gets 405")
    func upgradeAndConnect() async throws {
        try await withProxy(workers: [Self.fast], yaml: { simpleConfig($0) }) { harness in
            let (raw, closed) = try await RawClient.exchange(
                port: harness.port,
                chunks: [
                    "GET /echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
                ]
            )
            #expect(raw.hasPrefix("HTTP/1.1 200"))
            #expect(!raw.lowercased().contains("\"upgrade\""))
            #expect(raw.lowercased().contains("connection: close"))
            #expect(closed)

            let (connect, _) = try await RawClient.exchange(
                port: harness.port,
                chunks: [
                    "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
                ]
            )
            #expect(connect.hasPrefix("HTTP/1.1 405"))
        }
    }

    @Test("a denied bodyless request keeps the connection alive for the next one")
    func denyKeepsAlive() async throws {
        try await withProxy(
            workers: [Self.fast],
            yaml: { ports in
                simpleConfig(
                    ports,
                    frontendExtra: """
                            acls:
                              admin: { path_prefix: /admin }
                            rules:
                              - { deny: 403, if: [admin] }
                        """
                )
            }
        ) { harness in
            let (raw, _) = try await RawClient.exchange(
                port: harness.port,
                chunks: [
                    "GET /admin HTTP/1.1\r\nHost: a\r\n\r\nGET /work HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                ]
            )
            #expect(raw.hasPrefix("HTTP/1.1 403"))
            #expect(raw.contains("HTTP/1.1 200 OK"))
            #expect(raw.contains("work done by w1"))
        }
    }

    @Test("a client that leaves mid-request gives its server's in-flight count back")
    func inFlightReturnsToZero() async throws {
        try await withProxy(workers: [Self.fast], yaml: { simpleConfig($0) }) { harness in
            // The client waits 200 ms, less than the 800 ms the server takes, then hangs up. A
            // FIN may be a half-close, so the request runs on (as in HAProxy without
            // `abortonclose`); once the server has answered, the count must be back to zero.
            _ = try await RawClient.exchange(
                port: harness.port,
                chunks: ["GET /work?delay_ms=800 HTTP/1.1\r\nHost: a\r\n\r\n"],
                timeout: .milliseconds(200)
            )
            // (Polled: a busy machine may take longer than the server's 800 ms; a leaked count
            // never returns to zero.)
            try await waitUntil(timeout: .seconds(15)) { try await harness.proxy.requestsInFlight()["app"]?["w1"] == 0 }
            // And while a request is under way it is counted.
            async let slow = harness.send("/work?delay_ms=600")
            try await waitUntil(timeout: .seconds(15)) { try await harness.proxy.requestsInFlight()["app"]?["w1"] == 1 }
            #expect(try await slow.status == .ok)
            #expect(try await harness.proxy.requestsInFlight()["app"]?["w1"] == 0)
        }
    }
}
