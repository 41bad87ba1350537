import AsyncHTTPClient
import FulcrumWorker
import NIOCore
import NIOHTTP1
import Testing

/// Requests and responses pass through intact: methods, headers, bodies, framing.
@Suite("Forwarding")
struct ForwardingTests {
    @Test("method, path, headers and body reach the server; X-Forwarded-* are added; Host is kept")
    func passThrough() async throws {
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: { simpleConfig($0) }) { harness in
            let response = try await harness.send(
                .PATCH,
                "/echo?x=1&y=two",
                headers: [("X-Custom", "abc"), ("X-Custom", "def"), ("Host", "shop.example:8443")],
                body: .bytes(ByteBuffer(string: "hello body"))
            )
            #expect(response.status == .ok)
            let echo = try response.json
            #expect(echo["method"] as? String == "PATCH")
            #expect(echo["path"] as? String == "/echo?x=1&y=two")
            #expect(echo["body"] as? String == "hello body")
            let headers = try response.echoedHeaders
            #expect(headers.filter { $0.0.lowercased() == "x-custom" }.map(\.1) == ["abc", "def"])
            #expect(headers.first { $0.0.lowercased() == "host" }?.1 == "shop.example:8443")
            #expect(headers.first { $0.0.lowercased() == "x-forwarded-for" }?.1 == "127.0.0.1")
            #expect(headers.first { $0.0.lowercased() == "x-forwarded-proto" }?.1 == "http")
            #expect(headers.first { $0.0.lowercased() == "x-forwarded-host" }?.1 == "shop.example:8443")
            #expect(response.worker == "w1")
        }
    }

    @Test("X-Forwarded-For is appended to, not replaced")
    func forwardedForAppends() async throws {
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: { simpleConfig($0) }) { harness in
            let response = try await harness.send("/echo", headers: [("X-Forwarded-For", "203.0.113.7, 10.1.2.3")])
            let forwarded = try response.echoedHeaders.filter { $0.0.lowercased() == "x-forwarded-for" }
            #expect(forwarded.map(\.1) == ["203.0.113.7, 10.1.2.3, 127.0.0.1"])
        }
    }

    @Test("hop-by-hop headers, and those Connection names, are not forwarded (TE but for trailers, which gRPC needs)")
    func hopByHopStripped() async throws {
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: { simpleConfig($0) }) { harness in
            let (raw, _) = try await RawClient.exchange(
                port: harness.port,
                chunks: [
                    "GET /echo HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n"
                        + "Keep-Alive: timeout=5\r\nTE: gzip\r\nProxy-Authorization: Basic Zm9v\r\nX-Kept: yes\r\n\r\n"
                ],
                timeout: .seconds(1)
            )
            #expect(raw.hasPrefix("HTTP/1.1 200"))
            let body = String(raw[raw.range(of: "\r\n\r\n")!.upperBound...]).lowercased()
            #expect(body.contains("x-kept"))
            for name in ["x-secret", "keep-alive", "\"te\"", "proxy-authorization", "\"connection\""] {
                #expect(!body.contains(name), "\(name) was forwarded")
            }
        }
    }

    @Test("a 10 MB body streams through in both directions intact (FNV-1a checksum)")
    func largeBodiesStream() async throws {
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: { simpleConfig($0) }) { harness in
            let size = 10 * 1024 * 1024
            // Upload, chunked (unknown length) so the chunked path is exercised too.
            let chunks = (0..<(size / 65_536)).map { index in
                ByteBuffer(bytes: (0..<65_536).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ index) })
            }
            var expected = FNV1a64()
            for chunk in chunks { expected.update(chunk) }
            let upload = try await harness.send(
                .POST,
                "/sink",
                body: .stream(AsyncStreamOfBuffers(chunks), length: .unknown)
            )
            #expect(upload.status == .ok)
            let uploaded = try upload.json
            #expect(uploaded["bytes"] as? Int == size)
            #expect(uploaded["checksum"] as? String == expected.hexDigest)

            // Download with a known length.
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(harness.port)/bytes?n=\(size)&seed=3")
            request.method = .GET
            let response = try await harness.client.execute(request, timeout: .seconds(60))
            #expect(response.status == .ok)
            var received = 0
            var checksum = FNV1a64()
            for try await part in response.body {
                received += part.readableBytes
                checksum.update(part)
            }
            var want = FNV1a64()
            want.update((0..<size).lazy.map { WorkerServer.patternByte(index: $0, seed: 3) })
            #expect(received == size)
            #expect(checksum.hexDigest == want.hexDigest)
        }
    }

    @Test("keep-alive: many requests reuse a few backend connections")
    func backendKeepAlive() async throws {
        try await withProxy(
            workers: [WorkerBehaviour(delayMilliseconds: 0), WorkerBehaviour(delayMilliseconds: 0)],
            proxyThreads: 2,
            clientConnections: 1,
            yaml: { simpleConfig($0) }
        ) { harness in
            for _ in 0..<60 {
                let response = try await harness.send("/work")
                #expect(response.status == .ok)
            }
            // One client connection lives on one loop; even so, at most loops × servers.
            let opened = try await harness.proxy.backendConnectionsOpened()["app"] ?? [:]
            let total = opened.values.reduce(0, +)
            #expect(total >= 1)
            #expect(total <= 2 * 2, "opened \(opened)")
            #expect(harness.workers.map(\.connectionsAccepted).reduce(0, +) == total)
            #expect(harness.workers.map(\.requestsServed).reduce(0, +) == 60)
        }
    }

    @Test("pipelined requests are answered in order")
    func pipelining() async throws {
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: { simpleConfig($0) }) { harness in
            let (raw, _) = try await RawClient.exchange(
                port: harness.port,
                chunks: [
                    "GET /echo?n=1 HTTP/1.1\r\nHost: a\r\n\r\nGET /echo?n=2 HTTP/1.1\r\nHost: a\r\n\r\n"
                        + "GET /echo?n=3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                ]
            )
            let first = try #require(raw.range(of: "/echo?n=1"))
            let second = try #require(raw.range(of: "/echo?n=2"))
            let third = try #require(raw.range(of: "/echo?n=3"))
            #expect(first.lowerBound < second.lowerBound && second.lowerBound < third.lowerBound)
            #expect(raw.components(separatedBy: "HTTP/1.1 200 OK").count == 4)
        }
    }

    @Test("HTTP/1.0 clients get a response they can read, then the connection closes")
    func http10Client() async throws {
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: { simpleConfig($0) }) { harness in
            let (raw, closed) = try await RawClient.exchange(port: harness.port, chunks: ["GET /work HTTP/1.0\r\n\r\n"])
            #expect(raw.hasPrefix("HTTP/1.1 200"))
            #expect(raw.lowercased().contains("connection: close"))
            #expect(!raw.lowercased().contains("transfer-encoding: chunked"))
            #expect(raw.contains("work done by w1"))
            #expect(closed)
        }
    }

    @Test("HEAD responses carry headers only, and the connection stays usable")
    func headRequests() async throws {
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: { simpleConfig($0) }) { harness in
            let (raw, _) = try await RawClient.exchange(
                port: harness.port,
                chunks: [
                    "HEAD /bytes?n=5000 HTTP/1.1\r\nHost: a\r\n\r\nGET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                ]
            )
            #expect(raw.hasPrefix("HTTP/1.1 200"))
            let responses = raw.components(separatedBy: "HTTP/1.1 200 OK")
            #expect(responses.count == 3)
            #expect(responses.last?.hasSuffix("ok") == true)
        }
    }
}

/// An async sequence over fixed buffers, for streamed request bodies.
struct AsyncStreamOfBuffers: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let buffers: [ByteBuffer]
    init(_ buffers: [ByteBuffer]) { self.buffers = buffers }

    struct AsyncIterator: AsyncIteratorProtocol {
        var remaining: ArraySlice<ByteBuffer>
        mutating func next() async -> ByteBuffer? { remaining.popFirst() }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(remaining: buffers[...]) }
}
