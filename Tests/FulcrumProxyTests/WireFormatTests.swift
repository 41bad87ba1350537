import NIOCore
import Testing

@testable import FulcrumProxy

/// The bytes Fulcrum writes itself: request heads for servers, response heads for clients,
/// and the chunked framing it re-applies in both directions (the decoders de-chunk bodies).
@Suite("Wire format", .serialized)
struct WireFormatTests {
    @Test("a chunked request reaches the server re-chunked, with its trailers; its Transfer-Encoding is kept")
    func chunkedRequestWithTrailers() async throws {
        let server = try await ScriptedServer(
            requestEnd: "X-Checksum: 9\r\n\r\n",
            response: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        )
        try await withProxy(workers: [], yaml: { _ in simpleConfig([server.port]) }) { harness in
            let (raw, _) = try await RawClient.exchange(
                port: harness.port,
                chunks: [
                    "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n",
                    "3\r\nabc\r\n",
                    "6\r\ndefghi\r\n0\r\nX-Checksum: 9\r\n\r\n",
                ],
                pause: .milliseconds(20)
            )
            #expect(raw.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(raw)")
            let request = try #require(server.requests.first)
            #expect(request.hasPrefix("POST /upload HTTP/1.1\r\n"))
            #expect(request.contains("\r\nTransfer-Encoding: gzip, chunked\r\n"))
            #expect(!request.lowercased().contains("connection:"))
            let body = try #require(request.range(of: "\r\n\r\n")).upperBound
            let (payload, trailers) = try Self.dechunk(String(request[body...]))
            #expect(payload == "abcdefghi")
            #expect(trailers == ["X-Checksum: 9"])
        }
        try await server.close()
    }

    @Test("request trailers lose the fields that belong in the header section (RFC 9110 §6.5.1)")
    func requestTrailersFiltered() async throws {
        let server = try await ScriptedServer(
            requestEnd: "Server-Timing: db;dur=5\r\n\r\n",
            response: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        )
        try await withProxy(workers: [], yaml: { _ in simpleConfig([server.port]) }) { harness in
            let (raw, _) = try await RawClient.exchange(
                port: harness.port,
                chunks: [
                    "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                        + "3\r\nabc\r\n0\r\nHost: evil.example\r\nAuthorization: Basic eA==\r\nCookie: s=1\r\n"
                        + "Content-Type: text/plain\r\nIf-Match: *\r\nX-Forwarded-For: 10.0.0.1\r\nConnection: x\r\n"
                        + "X-Checksum: 9\r\nServer-Timing: db;dur=5\r\n\r\n"
                ]
            )
            #expect(raw.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(raw)")
            let request = try #require(server.requests.first)
            let body = try #require(request.range(of: "\r\n\r\n")).upperBound
            let (payload, trailers) = try Self.dechunk(String(request[body...]))
            #expect(payload == "abc")
            #expect(trailers == ["X-Checksum: 9", "Server-Timing: db;dur=5"])
        }
        try await server.close()
    }

    @Test("a chunked response keeps its codings and trailers and is re-chunked for the client")
    func chunkedResponseWithTrailers() async throws {
        let server = try await ScriptedServer(
            response: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nX-Kept: 1\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
        )
        try await withProxy(workers: [], yaml: { _ in simpleConfig([server.port]) }) { harness in
            let (raw, _) = try await RawClient.exchange(
                port: harness.port,
                chunks: ["GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"]
            )
            let head = try #require(raw.range(of: "\r\n\r\n"))
            let headers = raw[..<head.lowerBound].lowercased()
            #expect(headers.hasPrefix("http/1.1 200 ok\r\n"))
            #expect(headers.contains("\r\ntransfer-encoding: gzip, chunked"))
            #expect(headers.contains("\r\nx-kept: 1"))
            #expect(headers.contains("\r\nconnection: close"))
            let (payload, trailers) = try Self.dechunk(String(raw[head.upperBound...]))
            #expect(payload == "hello world")
            #expect(trailers == ["X-Trailer: t"])
        }
        try await server.close()
    }

    @Test("a body the server ends by closing is chunked for the client, whose connection stays open")
    func closeDelimitedResponseIsChunked() async throws {
        let server = try await ScriptedServer(
            response: "HTTP/1.1 200 OK\r\nX-Server: scripted\r\n\r\nuntil the end",
            closeAfterResponse: true
        )
        try await withProxy(workers: [], yaml: { _ in simpleConfig([server.port]) }) { harness in
            let (raw, _) = try await RawClient.exchange(
                port: harness.port,
                chunks: [
                    "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n",
                    "GET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                ],
                pause: .milliseconds(300)
            )
            let responses = raw.components(separatedBy: "HTTP/1.1 200 OK\r\n").dropFirst()
            #expect(responses.count == 2, "\(raw)")
            for response in responses {
                #expect(response.lowercased().contains("transfer-encoding: chunked\r\n"))
                let body = try #require(response.range(of: "\r\n\r\n")).upperBound
                let (payload, _) = try Self.dechunk(String(response[body...]))
                #expect(payload == "until the end")
            }
            #expect(server.requests.count == 2)
        }
        try await server.close()
    }

    @Test("hop-by-hop response headers, and those the server's Connection names, stay behind; any status code passes")
    func responseHopByHopHeaders() async throws {
        let server = try await ScriptedServer(
            response: "HTTP/1.1 299 Custom Thing\r\nConnection: X-Secret, keep-alive\r\nX-Secret: s\r\n"
                + "Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nX-Public: p\r\nContent-Length: 2\r\n\r\nok"
        )
        try await withProxy(workers: [], yaml: { _ in simpleConfig([server.port]) }) { harness in
            let (raw, _) = try await RawClient.exchange(
                port: harness.port,
                chunks: ["GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"]
            )
            // NIO's decoder keeps no reason phrase: a code it does not know goes out with an
            // empty one, which RFC 9112 §4 allows (clients must ignore the phrase).
            #expect(raw.hasPrefix("HTTP/1.1 299 \r\n"), "\(raw)")
            let lower = raw.lowercased()
            #expect(lower.contains("\r\nx-public: p\r\n"))
            #expect(lower.contains("\r\ncontent-length: 2\r\n"))
            #expect(!lower.contains("x-secret"))
            #expect(!lower.contains("keep-alive"))
            #expect(!lower.contains("proxy-authenticate"))
            #expect(raw.hasSuffix("\r\n\r\nok"))
        }
        try await server.close()
    }

    @Test("chunk sizes are written in lower-case hexadecimal")
    func chunkHeaders() {
        for (size, expected) in [(0, "0"), (1, "1"), (15, "f"), (16, "10"), (4096, "1000"), (1_048_575, "fffff")] {
            var buffer = ByteBuffer()
            buffer.writeChunkHeader(size: size)
            #expect(String(buffer: buffer) == "\(expected)\r\n")
        }
    }

    /// Decodes a chunked body: its payload and its trailer lines. (Works on bytes: for a
    /// Swift `String`, "\r\n" is one character.)
    private static func dechunk(_ text: String) throws -> (payload: String, trailers: [String]) {
        var rest = Array(text.utf8)[...]
        var payload: [UInt8] = []
        func line() throws -> String {
            let end = try #require(
                rest.indices.first { rest[$0] == UInt8(ascii: "\r") && rest.dropFirst($0 - rest.startIndex + 1).first == UInt8(ascii: "\n") }
            )
            let text = String(decoding: rest[..<end], as: UTF8.self)
            rest = rest[(end + 2)...]
            return text
        }
        while true {
            let sizeLine = try line()
            let size = try #require(Int(sizeLine, radix: 16), "bad chunk size line \"\(sizeLine)\" in \(text)")
            if size == 0 { break }
            payload += rest.prefix(size)
            rest = rest.dropFirst(size)
            #expect(try line() == "")
        }
        var trailers: [String] = []
        while !rest.isEmpty {
            let trailer = try line()
            if trailer.isEmpty { break }
            trailers.append(trailer)
        }
        #expect(rest.isEmpty, "bytes after the chunked body")
        return (String(decoding: payload, as: UTF8.self), trailers)
    }
}
