import NIOHTTP1
import Testing

@testable import FulcrumProxy

/// How the HTTP/1 writer frames a server's response for its client.
@Suite("HTTP/1 response framing")
struct HTTP1ResponseFramingTests {
    static func framing(
        _ status: HTTPResponseStatus,
        _ headers: [(String, String)],
        method: HTTPMethod = .GET,
        version: HTTPVersion = .http1_1,
        keepAlive: Bool = true
    ) -> HTTP1ResponseWriter.Framing {
        let head = HTTPResponseHead(version: .http1_1, status: status, headers: HTTPHeaders(headers))
        return HTTP1ResponseWriter.framing(
            for: head,
            scan: ForwardingHeaders.scanResponse(head.headers),
            request: HTTPRequestHead(version: version, method: method, uri: "/"),
            keepAlive: keepAlive
        )
    }

    @Test("a chunked body is chunked again; a body ended by close is re-framed as chunked")
    func chunking() {
        let chunked = Self.framing(.ok, [("transfer-encoding", "chunked")])
        #expect(chunked.chunked && !chunked.head.addChunked && chunked.keepAlive)
        let byClose = Self.framing(.ok, [])
        #expect(byClose.chunked && byClose.head.addChunked && byClose.keepAlive)
        let sized = Self.framing(.ok, [("content-length", "5")])
        #expect(!sized.chunked && !sized.head.addChunked && sized.head.connection == nil)
    }

    @Test("no body: HEAD, 204 and 304 are never chunked, and a 204's Transfer-Encoding goes")
    func bodyless() {
        let head = Self.framing(.ok, [("transfer-encoding", "chunked")], method: .HEAD)
        #expect(!head.chunked && !head.head.dropTransferEncoding)
        let noContent = Self.framing(.noContent, [("transfer-encoding", "chunked")])
        #expect(!noContent.chunked && noContent.head.dropTransferEncoding)
        let notModified = Self.framing(.notModified, [("transfer-encoding", "chunked")])
        #expect(!notModified.chunked && !notModified.head.dropTransferEncoding)
    }

    @Test("HTTP/1.0: no chunks, so a body of unknown length ends with the connection")
    func http10() {
        let chunked = Self.framing(.ok, [("transfer-encoding", "chunked")], version: .http1_0)
        #expect(!chunked.chunked && chunked.head.dropTransferEncoding && !chunked.keepAlive)
        #expect(chunked.head.connection.map { "\($0)" } == "close")
        let sized = Self.framing(.ok, [("content-length", "5")], version: .http1_0)
        #expect(sized.keepAlive && sized.head.connection.map { "\($0)" } == "keep-alive")
        let closing = Self.framing(.ok, [("content-length", "5")], keepAlive: false)
        #expect(closing.head.connection.map { "\($0)" } == "close")
    }
}
