import FulcrumTestSupport
import NIOCore
import NIOHPACK
import NIOHTTP2
import Testing

/// What Fulcrum makes of an HTTP/2 server's response frames, before they reach a client: the
/// server here answers with frames the test wrote (`FaultyHTTP2Server`).
@Suite("HTTP/2 to servers: the server's frames", .serialized)
struct HTTP2UpstreamFramesTests {
    static func headers(_ fields: [(String, String)], endStream: Bool = false) -> HTTP2Frame.FramePayload {
        .headers(.init(headers: HPACKHeaders(fields), endStream: endStream))
    }

    /// Runs `body` with a proxy whose only answering server sends `frames` for every request.
    static func withServerAnswering(_ frames: [HTTP2Frame.FramePayload], _ body: (ProxyHarness) async throws -> Void) async throws {
        let server = try await FaultyHTTP2Server.start(.answer(frames))
        do {
            // The worker is a backup that no request reaches: there is no retry.
            try await HTTP2UpstreamTests.withH2CWorkers(["w1"], faulty: [server], backendExtra: "    retries: 0") { harness, workers in
                try await body(harness)
                #expect(workers[0].requestsServed == 0)
            }
        } catch {
            try await server.shutdown()
            throw error
        }
        try await server.shutdown()
    }

    @Test(
        "a response field HTTP/2 does not allow is refused with a 502: nothing of it reaches an HTTP/1.1 client",
        arguments: [
            ("x-injected", "a\r\nset-cookie: stolen=1"),  // a CR LF would split the HTTP/1.1 field
            ("X-Upper", "1"),  // names are lower case in HTTP/2
            ("connection", "close"),  // connection-specific
            (":path", "/"),  // a request's pseudo-header field
        ]
    )
    func malformedResponseFields(_ field: (String, String)) async throws {
        let frames = [Self.headers([(":status", "200"), field]), .data(.init(data: .byteBuffer(ByteBuffer(string: "hello")), endStream: true))]
        try await Self.withServerAnswering(frames) { harness in
            let response = try await harness.send("/")
            #expect(response.status == .badGateway)
            #expect(!response.headers.contains(name: "set-cookie"))
            #expect(!response.text.contains("hello"))
        }
    }

    @Test("a response with no :status is refused too")
    func noStatus() async throws {
        try await Self.withServerAnswering([Self.headers([("content-type", "text/plain")], endStream: true)]) { harness in
            let response = try await harness.send("/")
            #expect(response.status == .badGateway)
        }
    }

    @Test("an interim 103 passes, and a body without content-length reaches an HTTP/1.1 client chunked, trailers and all")
    func interimAndChunked() async throws {
        let frames: [HTTP2Frame.FramePayload] = [
            Self.headers([(":status", "103"), ("link", "</style.css>; rel=preload")]),
            Self.headers([(":status", "200"), ("content-type", "text/plain")]),
            .data(.init(data: .byteBuffer(ByteBuffer(string: "hello, ")))),
            .data(.init(data: .byteBuffer(ByteBuffer(string: "world")))),
            Self.headers([("x-checksum", "42")], endStream: true),
        ]
        try await Self.withServerAnswering(frames) { harness in
            let response = try await harness.send("/")
            #expect(response.status == .ok)
            #expect(response.text == "hello, world")
            #expect(response.headers["transfer-encoding"] == ["chunked"])
            #expect(response.headers["content-type"] == ["text/plain"])
        }
    }

    @Test("a final response that ends with its HEADERS frame has an empty body, content-length 0")
    func headersOnly() async throws {
        try await Self.withServerAnswering([Self.headers([(":status", "404")], endStream: true)]) { harness in
            let response = try await harness.send("/missing")
            #expect(response.status == .notFound)
            #expect(response.headers["content-length"] == ["0"])
            #expect(response.body.readableBytes == 0)
        }
    }
}
