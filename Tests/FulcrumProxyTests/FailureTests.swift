import AsyncHTTPClient
import FulcrumWorker
import NIOCore
import NIOHTTP1
import Testing

/// Dead, slow and failing servers, and hostile or broken clients.
@Suite("Failures and bad input", .serialized)
struct FailureTests {
    private static let fast = WorkerBehaviour(delayMilliseconds: 0)

    @Test("a dead server is skipped: retries on the next server give 200 every time")
    func retryOnDeadServer() async throws {
        let dead = try refusingPort()
        try await withProxy(workers: [Self.fast], yaml: { ports in simpleConfig([dead, ports[0]]) }) { harness in
            for _ in 0..<6 {
                let response = try await harness.send("/work")
                #expect(response.status == .ok)
                #expect(response.worker == "w1")
            }
        }
    }

    @Test("all servers down: 503 page, HTML by default and JSON when preferred")
    func allServersDown() async throws {
        let dead1 = try refusingPort()
        let dead2 = try refusingPort()
        try await withProxy(workers: [], yaml: { _ in simpleConfig([dead1, dead2]) }) { harness in
            let html = try await harness.send("/work")
            #expect(html.status == .serviceUnavailable)
            #expect(html.headers.first(name: "content-type")?.hasPrefix("text/html") == true)
            #expect(html.text.contains("503 Service Unavailable"))

            let json = try await harness.send("/work", headers: [("Accept", "application/json")])
            #expect(json.status == .serviceUnavailable)
            #expect(json.headers.first(name: "content-type") == "application/json")
            #expect(try json.json["status"] as? Int == 503)
        }
    }

    @Test("retries are bounded: with retries 0 a dead first choice is a 503")
    func retriesBounded() async throws {
        let dead = try refusingPort()
        try await withProxy(workers: [Self.fast], yaml: { ports in simpleConfig([dead, ports[0]], retries: 0) }) { harness in
            var statuses: [UInt] = []
            for _ in 0..<4 { statuses.append(try await harness.send("/work").status.code) }
            // Round robin alternates between the dead and the live server.
            #expect(statuses.filter { $0 == 503 }.count == 2)
            #expect(statuses.filter { $0 == 200 }.count == 2)
        }
    }

    @Test("a server slower than the response timeout gives 504")
    func responseTimeout() async throws {
        try await withProxy(
            workers: [WorkerBehaviour(delayMilliseconds: 5_000)],
            yaml: { simpleConfig($0, backendTimeouts: "{ connect: 1s, response: 300ms }") }
        ) { harness in
            let clock = ContinuousClock()
            let start = clock.now
            let response = try await harness.send("/work")
            #expect(response.status == .gatewayTimeout)
            // Long before the server's 5 s (with room for a machine busy with other suites).
            #expect(clock.now - start < .seconds(4))
            // The next request works (delay overridden), on a fresh connection.
            #expect(try await harness.send("/work?delay_ms=1").status == .ok)
        }
    }

    @Test("server errors pass through unchanged")
    func serverErrorsPassThrough() async throws {
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0, errorRate: 1)], yaml: { simpleConfig($0) }) { harness in
            let response = try await harness.send("/work")
            #expect(response.status == .internalServerError)
            #expect(response.worker == "w1")
            #expect(try await harness.send("/echo?status=418").status.code == 418)
        }
    }

    @Test("conflicting Content-Length and Transfer-Encoding: 400 and the connection closes")
    func conflictingFraming() async throws {
        try await withProxy(workers: [Self.fast], yaml: { simpleConfig($0) }) { harness in
            let (raw, closed) = try await RawClient.exchange(
                port: harness.port,
                chunks: [
                    "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                ]
            )
            #expect(raw.hasPrefix("HTTP/1.1 400"))
            #expect(closed)
            #expect(harness.workers[0].requestsServed == 0)
        }
    }

    @Test("two different Content-Length values: 400")
    func duplicateContentLength() async throws {
        try await withProxy(workers: [Self.fast], yaml: { simpleConfig($0) }) { harness in
            let (raw, closed) = try await RawClient.exchange(
                port: harness.port,
                chunks: [
                    "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
                ]
            )
            #expect(raw.hasPrefix("HTTP/1.1 400"))
            #expect(closed)
        }
    }

    @Test("a malformed request line: 400")
    func malformedRequest() async throws {
        try await withProxy(workers: [Self.fast], yaml: { simpleConfig($0) }) { harness in
            let (raw, closed) = try await RawClient.exchange(port: harness.port, chunks: ["GARBAGE\u{1}\r\n\r\n"])
            #expect(raw.hasPrefix("HTTP/1.1 400"))
            #expect(closed)
        }
    }

    @Test("headers beyond the limit: 431")
    func oversizedHeaders() async throws {
        try await withProxy(
            workers: [Self.fast],
            yaml: {
                simpleConfig($0, frontendExtra: "    limits: { max_header_size: 8k }")
            }
        ) { harness in
            let big = String(repeating: "x", count: 10_000)
            let (raw, closed) = try await RawClient.exchange(
                port: harness.port,
                chunks: [
                    "GET /work HTTP/1.1\r\nHost: a\r\nX-Big: \(big)\r\n\r\n"
                ]
            )
            #expect(raw.hasPrefix("HTTP/1.1 431"))
            #expect(closed)
            // A normal request still works.
            #expect(try await harness.send("/work").status == .ok)
        }
    }

    @Test("a body beyond max_body_size: 413")
    func oversizedBody() async throws {
        try await withProxy(
            workers: [Self.fast],
            yaml: {
                simpleConfig($0, frontendExtra: "    limits: { max_body_size: 1k }")
            }
        ) { harness in
            let declared = try await harness.send(.POST, "/sink", body: .bytes(ByteBuffer(repeating: 1, count: 4096)))
            #expect(declared.status == .payloadTooLarge)
            let small = try await harness.send(.POST, "/sink", body: .bytes(ByteBuffer(repeating: 1, count: 100)))
            #expect(small.status == .ok)
        }
    }

    @Test("a client trickling its headers past header_read gets 408; others are unaffected")
    func slowHeaders() async throws {
        try await withProxy(
            workers: [Self.fast],
            yaml: {
                simpleConfig($0, frontendExtra: "    timeouts: { client_idle: 5s, header_read: 400ms }")
            }
        ) { harness in
            async let slow = RawClient.exchange(
                port: harness.port,
                chunks: ["GET /work HTTP/1.1\r\n", "Host: a\r\n", "X-A: 1\r\n", "X-B: 2\r\n", "X-C: 3\r\n"],
                pause: .milliseconds(150),
                timeout: .seconds(3)
            )
            // Meanwhile a well-behaved client is served.
            #expect(try await harness.send("/work").status == .ok)
            let (raw, closed) = try await slow
            #expect(raw.hasPrefix("HTTP/1.1 408"))
            #expect(closed)
        }
    }

    @Test("an empty line after a request does not start the header-read timer")
    func strayLineBreak() async throws {
        try await withProxy(
            workers: [Self.fast],
            yaml: {
                simpleConfig($0, frontendExtra: "    timeouts: { client_idle: 2s, header_read: 300ms }")
            }
        ) { harness in
            let (raw, _) = try await RawClient.exchange(
                port: harness.port,
                chunks: ["GET /work HTTP/1.1\r\nHost: a\r\n\r\n", "\r\n"],
                pause: .milliseconds(100),
                timeout: .milliseconds(900)
            )
            #expect(raw.hasPrefix("HTTP/1.1 200"))
            #expect(!raw.contains("408"))
        }
    }

    @Test("a new connection may wait past header_read for its first byte, up to client_idle")
    func newConnectionWaitsForClientIdle() async throws {
        try await withProxy(
            workers: [Self.fast],
            yaml: {
                simpleConfig($0, frontendExtra: "    timeouts: { client_idle: 3s, header_read: 250ms }")
            }
        ) { harness in
            // The first byte comes after header_read: the connection is still open, and the
            // request is served (header_read starts with the first byte).
            let (raw, closed) = try await RawClient.exchange(
                port: harness.port,
                chunks: ["GET /work HTTP/1.1\r\nHost: a\r\n\r\n"],
                pause: .milliseconds(700),
                timeout: .milliseconds(600)
            )
            #expect(raw.hasPrefix("HTTP/1.1 200"))
            #expect(!closed)
        }
        try await withProxy(
            workers: [Self.fast],
            yaml: {
                simpleConfig($0, frontendExtra: "    timeouts: { client_idle: 900ms, header_read: 200ms }")
            }
        ) { harness in
            // A connection that never sends a byte is closed at client_idle, not header_read.
            let start = ContinuousClock.now
            let (raw, closed) = try await RawClient.exchange(port: harness.port, chunks: [], timeout: .seconds(5))
            let elapsed = ContinuousClock.now - start
            #expect(raw.isEmpty)
            #expect(closed)
            #expect(elapsed >= .milliseconds(800), "closed after \(elapsed)")
        }
    }

    @Test("an idle keep-alive connection is closed after client_idle")
    func idleClientClosed() async throws {
        try await withProxy(
            workers: [Self.fast],
            yaml: {
                simpleConfig($0, frontendExtra: "    timeouts: { client_idle: 300ms, header_read: 5s }")
            }
        ) { harness in
            let (raw, closed) = try await RawClient.exchange(
                port: harness.port,
                chunks: ["GET /work HTTP/1.1\r\nHost: a\r\n\r\n"],
                timeout: .seconds(3)
            )
            #expect(raw.hasPrefix("HTTP/1.1 200"))
            #expect(closed)
        }
    }
}
