import NIOCore
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

    @Test("a request block becomes an HTTP/1.1 head: :authority as Host, the fields in order, cookie fields as one")
    func requestHead() throws {
        let head = try Self.head(Self.get + [("accept", "*/*"), ("cookie", "a=1"), ("x-a", "1"), ("cookie", "b=2")])
        #expect(head.method == .GET)
        #expect(head.uri == "/a?b=c")
        #expect(head.version == HTTPVersion(major: 2, minor: 0))
        // Cookie fields as one line, joined with "; " (RFC 9113 §8.2.3), where the first was.
        #expect(head.headers.map { "\($0.name): \($0.value)" } == ["host: example.com", "accept: */*", "cookie: a=1; b=2", "x-a: 1"])
        let oneCookie = try Self.head(Self.get + [("cookie", "a=1")])
        #expect(oneCookie.headers["cookie"] == ["a=1"])
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

    @Test("a head serialized for HTTP/1.1 becomes the server's request block: Host as :authority, names in lower case, no connection fields")
    func requestBlockFromSerializedHead() throws {
        let serialized = ByteBuffer(
            string: "POST /upload?x=1 HTTP/1.1\r\nUser-Agent: test\r\nHost: api.example\r\nTransfer-Encoding: chunked\r\n"
                + "te: trailers\r\nConnection: upgrade\r\nUpgrade: websocket\r\nx-forwarded-for: 10.0.0.1\r\n\r\n"
        )
        let block = try #require(HTTP2Heads.requestBlock(serializedHead: serialized, scheme: "https", authority: "10.0.0.9:8443"))
        #expect(
            block.map { "\($0.name): \($0.value)" } == [
                ":method: POST", ":scheme: https", ":authority: api.example", ":path: /upload?x=1",
                "user-agent: test", "te: trailers", "x-forwarded-for: 10.0.0.1",
            ]
        )
        // Without a Host, the server's address.
        let bare = try #require(
            HTTP2Heads.requestBlock(serializedHead: ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n"), scheme: "http", authority: "10.0.0.9:80")
        )
        #expect(bare.first(name: ":authority") == "10.0.0.9:80")
        // Anything but a whole head is refused.
        for broken in ["GET / HTTP/1.1\r\nhost: a\r\n", "GET\r\n\r\n", "GET / HTTP/1.1\r\nno colon\r\n\r\n"] {
            #expect(HTTP2Heads.requestBlock(serializedHead: ByteBuffer(string: broken), scheme: "http", authority: "a") == nil, "\(broken)")
        }
    }

    @Test("a server's block becomes a response head: :status, fields as sent, chunked or content-length 0 when it has none")
    func responseHeadFromBlock() throws {
        func head(_ fields: [(String, String)], method: HTTPMethod = .GET, endStream: Bool = false) throws -> HTTPResponseHead {
            try HTTP2Heads.responseHead(from: HPACKHeaders(fields), requestMethod: method, endStream: endStream)
        }
        let ok = try head([(":status", "200"), ("content-type", "text/plain")])
        #expect(ok.status == .ok)
        #expect(ok.headers.map { "\($0.name): \($0.value)" } == ["content-type: text/plain", "transfer-encoding: chunked"])
        #expect(try head([(":status", "200")], endStream: true).headers["content-length"] == ["0"])
        #expect(try head([(":status", "200"), ("content-length", "5")]).headers["transfer-encoding"].isEmpty)
        // No body to frame: interim, 204, 304, and any answer to HEAD.
        #expect(try head([(":status", "103")]).headers.isEmpty)
        #expect(try head([(":status", "204")]).headers.isEmpty)
        #expect(try head([(":status", "200")], method: .HEAD).headers.isEmpty)
        for bad in [[("content-type", "x")], [(":status", "20")], [(":status", "200"), (":status", "200")], [("a", "b"), (":status", "200")]] {
            #expect(throws: HTTP2Heads.MalformedResponse.self) { try head(bad) }
        }
    }
}
