import NIOHPACK
import NIOHTTP1
import Testing

@testable import FulcrumProxy

/// `HTTP2Heads` and `HTTP2FieldRules`: a client's block becomes the HTTP/1.1 head the server
/// receives, or is refused; a server's head becomes the block the client receives.
@Suite("HTTP/2 heads")
struct HTTP2HeadsTests {
    private static let get = [(":method", "GET"), (":scheme", "https"), (":authority", "example.com"), (":path", "/a?b=c")]

    private static func head(_ fields: [(String, String)], endStream: Bool = true) throws -> HTTPRequestHead {
        try HTTP2Heads.requestHead(from: HPACKHeaders(fields), endStream: endStream)
    }

    @Test("a request block becomes an HTTP/1.1 head: :authority as Host, the fields in order")
    func requestHead() throws {
        let head = try Self.head(Self.get + [("accept", "*/*"), ("cookie", "a=1"), ("cookie", "b=2")])
        #expect(head.method == .GET)
        #expect(head.uri == "/a?b=c")
        #expect(head.version == HTTPVersion(major: 2, minor: 0))
        #expect(head.headers.map { "\($0.name): \($0.value)" } == ["host: example.com", "accept: */*", "cookie: a=1", "cookie: b=2"])
        // A Host of the client's own is kept, and no second one is made.
        let withHost = try Self.head(Self.get + [("host", "other.example")])
        #expect(withHost.headers["host"] == ["other.example"])
    }

    @Test("a body's framing: content-length as sent, else 0 when the block ends the stream, else chunked")
    func bodyFraming() throws {
        let post = [(":method", "POST"), (":scheme", "http"), (":authority", "a"), (":path", "/")]
        #expect(try Self.head(post, endStream: true).headers["content-length"] == ["0"])
        #expect(try Self.head(post, endStream: false).headers["transfer-encoding"] == ["chunked"])
        let sized = try Self.head(post + [("content-length", "12")], endStream: false)
        #expect(sized.headers["content-length"] == ["12"] && sized.headers["transfer-encoding"].isEmpty)
        // A GET gets neither.
        #expect(try Self.head(Self.get, endStream: false).headers["transfer-encoding"].isEmpty)
    }

    @Test(
        "malformed request blocks are refused",
        arguments: [
            ("no :method", [(":scheme", "http"), (":authority", "a"), (":path", "/")]),
            ("no :path", [(":method", "GET"), (":scheme", "http"), (":authority", "a")]),
            ("an empty :path", [(":method", "GET"), (":scheme", "http"), (":authority", "a"), (":path", "")]),
            ("no :scheme", [(":method", "GET"), (":authority", "a"), (":path", "/")]),
            ("a :path twice", get + [(":path", "/b")]),
            ("a pseudo-header after a field", [(":method", "GET"), ("accept", "*/*"), (":scheme", "http"), (":path", "/")]),
            ("an unknown pseudo-header", get + [(":protocol", "websocket")]),
            ("a space in :path", [(":method", "GET"), (":scheme", "http"), (":path", "/a b HTTP/1.1")]),
            ("a CR LF in a value", get + [("x-a", "1\r\nx-b: 2")]),
            ("a NUL in a value", get + [("x-a", "1\u{0}")]),
            ("an upper-case name", get + [("Accept", "*/*")]),
            ("a space in a name", get + [("x a", "1")]),
            ("an empty name", get + [("", "1")]),
            ("a non-ASCII name", get + [("x-é", "1")]),
            ("Connection", get + [("connection", "close")]),
            ("Transfer-Encoding", get + [("transfer-encoding", "chunked")]),
            ("Keep-Alive", get + [("keep-alive", "5")]),
            ("Upgrade", get + [("upgrade", "websocket")]),
            ("Proxy-Connection", get + [("proxy-connection", "x")]),
            ("TE other than trailers", get + [("te", "gzip")]),
            ("CONNECT with a :path", [(":method", "CONNECT"), (":authority", "a:443"), (":path", "/")]),
            ("CONNECT without :authority", [(":method", "CONNECT")]),
        ] as [(String, [(String, String)])]
    )
    func malformed(_ reason: String, _ fields: [(String, String)]) {
        #expect(throws: HTTP2Heads.MalformedRequest.self, "\(reason)") { try Self.head(fields) }
    }

    @Test("what RFC 9113 allows passes: TE: trailers, obs-text and tabs in values, CONNECT's authority form")
    func allowed() throws {
        _ = try Self.head(Self.get + [("te", "trailers"), ("x-a", "caf\u{e9}\tau lait"), ("x-b", "")])
        let connect = try Self.head([(":method", "CONNECT"), (":authority", "example.com:443")])
        #expect(connect.method == .CONNECT && connect.uri == "example.com:443")
    }

    @Test("trailers: regular fields only, checked as a head's are")
    func trailers() throws {
        #expect(try HTTP2Heads.trailers(from: HPACKHeaders([("grpc-status", "0")]))["grpc-status"] == ["0"])
        #expect(throws: HTTP2Heads.MalformedRequest.self) { try HTTP2Heads.trailers(from: HPACKHeaders([(":path", "/")])) }
        #expect(throws: HTTP2Heads.MalformedRequest.self) { try HTTP2Heads.trailers(from: HPACKHeaders([("x-a", "1\n")])) }
    }

    @Test("a response head becomes :status and lower-case fields, without those that end at this hop")
    func responseBlock() {
        let head = HTTPResponseHead(
            version: .http1_1,
            status: .ok,
            headers: [
                "Content-Type": "text/plain", "Connection": "keep-alive, X-Hop", "Keep-Alive": "timeout=5",
                "Transfer-Encoding": "chunked", "X-Hop": "1", "Upgrade": "h2c", "Proxy-Connection": "x",
                "Set-Cookie": "a=1", "set-cookie": "b=2", "Strict-Transport-Security": "max-age=1",
            ]
        )
        let block = HTTP2Heads.responseBlock(head, strictTransportSecurity: nil)
        #expect(
            block.map { "\($0.name): \($0.value)" } == [
                ":status: 200", "content-type: text/plain", "set-cookie: a=1", "set-cookie: b=2",
                "strict-transport-security: max-age=1",
            ]
        )
        // tls.hsts replaces the server's own.
        let secure = HTTP2Heads.responseBlock(head, strictTransportSecurity: "max-age=60")
        #expect(secure[canonicalForm: "strict-transport-security"] == ["max-age=60"])
        #expect(HTTP2Heads.trailersBlock(["Grpc-Status": "0"]).map(\.name) == ["grpc-status"])
    }
}
