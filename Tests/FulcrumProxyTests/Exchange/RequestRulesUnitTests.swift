import NIOHTTP1
import Testing

@testable import FulcrumProxy

/// RFC 9112's request rules on a head, with no channel: Host present once and valid, the
/// absolute form rewritten to its authority, the asterisk form for OPTIONS only, no fragment,
/// and framing the decoder lets through but the proxy must not.
@Suite("Request rules (RFC 9112), unit")
struct RequestRulesUnitTests {
    /// Normalizes a head built from `target` and `headers`; returns the outcome as text
    /// ("unchanged", "rewritten", or "400 <detail>"), and the head and scan after it.
    static func check(
        _ target: String,
        method: HTTPMethod = .GET,
        version: HTTPVersion = .http1_1,
        headers: [(String, String)]
    ) -> (outcome: String, head: HTTPRequestHead, scan: ForwardingHeaders.Scan) {
        var head = HTTPRequestHead(version: version, method: method, uri: target, headers: HTTPHeaders(headers))
        var scan = ForwardingHeaders.scanRequest(head.headers)
        let outcome =
            switch RequestRules.check(&head, scan: &scan) {
            case .unchanged: "unchanged"
            case .rewritten: "rewritten"
            case .refused(let response):
                "\(response.status.code) \(response.closesConnection ? "close" : "keep-alive")"
            }
        return (outcome, head, scan)
    }

    @Test("an HTTP/1.1 request needs exactly one Host line; HTTP/1.0 may go without")
    func hostCount() {
        #expect(Self.check("/", headers: [("Host", "a.example")]).outcome == "unchanged")
        #expect(Self.check("/", headers: []).outcome == "400 close")
        #expect(Self.check("/", version: .http1_0, headers: []).outcome == "unchanged")
        #expect(Self.check("/", headers: [("Host", "a.example"), ("host", "a.example")]).outcome == "400 close")
        #expect(Self.check("/", version: .http1_0, headers: [("Host", "a"), ("Host", "b")]).outcome == "400 close")
    }

    @Test(
        "a Host value is host [\":\" port] (RFC 3986), an empty one included",
        arguments: [
            ("a.example", true), ("A.Example:8080", true), ("127.0.0.1", true), ("127.0.0.1:80", true),
            ("[::1]", true), ("[::1]:8443", true), ("[v1.fe80::a+en1]", true), ("xn--bcher-kva.example", true),
            ("a.example:", true), ("", true), ("my_host~1", true), ("%41.example", true),
            ("a example", false), ("a/b", false), ("user@a.example", false), ("a.example:80x", false),
            ("a.example:-1", false), ("[::1", false), ("[::1]x", false), ("[]", false), ("%4", false), ("%zz.example", false),
            ("a.example\t", false), ("a\"b", false), ("a<b>", false), ("é.example", false), ("a.example:8080:1", false),
        ]
    )
    func hostValues(value: String, valid: Bool) {
        #expect(RequestRules.isValidHost(value) == valid, "\(value)")
        let outcome = Self.check("/", headers: [("Host", value)]).outcome
        #expect(outcome == (valid ? "unchanged" : "400 close"), "\(value)")
    }

    @Test("an absolute-form target is routed and forwarded by its authority, in origin form")
    func absoluteForm() {
        let rewritten = Self.check("http://shop.example:8080/cart?item=1", headers: [("Host", "other.example")])
        #expect(rewritten.outcome == "rewritten")
        #expect(rewritten.head.uri == "/cart?item=1")
        #expect(rewritten.head.headers["host"] == ["shop.example:8080"])
        #expect(rewritten.scan.host == "shop.example:8080")
        #expect(rewritten.scan.hostLines == 1)

        let noHost = Self.check("HTTPS://Shop.Example", headers: [])
        #expect(noHost.outcome == "rewritten")
        #expect(noHost.head.uri == "/")
        #expect(noHost.head.headers["host"] == ["Shop.Example"])

        let query = Self.check("http://a.example?x=1", headers: [])
        #expect(query.head.uri == "/?x=1")
        #expect(Self.check("http://a.example/p#top", headers: []).outcome == "400 close")
    }

    @Test(
        "absolute forms that cannot be honoured get 400",
        arguments: [
            "ftp://a.example/file", "http:///path", "http://user:secret@a.example/", "http://a example/",
            "http://a.example:80x/", "a.example/x", "index.html",
        ]
    )
    func badAbsoluteForms(target: String) {
        #expect(Self.check(target, headers: [("Host", "a.example")]).outcome == "400 close", "\(target)")
    }

    @Test("the asterisk form is for OPTIONS only")
    func asteriskForm() {
        #expect(Self.check("*", method: .OPTIONS, headers: [("Host", "a.example")]).outcome == "unchanged")
        #expect(Self.check("*", method: .GET, headers: [("Host", "a.example")]).outcome == "400 close")
    }

    @Test("a target has no fragment")
    func fragments() {
        #expect(Self.check("/page#top", headers: [("Host", "a.example")]).outcome == "400 close")
        #expect(Self.check("/page?q=#", headers: [("Host", "a.example")]).outcome == "400 close")
        #expect(Self.check("/page?q=%23", headers: [("Host", "a.example")]).outcome == "unchanged")
    }

    @Test("an empty Transfer-Encoding, or one in HTTP/1.0, gets 400; Content-Length loses trailing blanks")
    func framing() {
        let host = ("Host", "a.example")
        #expect(Self.check("/", method: .POST, headers: [host, ("Transfer-Encoding", ""), ("Content-Length", "3")]).outcome == "400 close")
        #expect(Self.check("/", method: .POST, headers: [host, ("Transfer-Encoding", " , ")]).outcome == "400 close")
        #expect(Self.check("/", method: .POST, headers: [host, ("Transfer-Encoding", "chunked")]).outcome == "unchanged")
        #expect(Self.check("/", method: .POST, version: .http1_0, headers: [("Transfer-Encoding", "chunked")]).outcome == "400 close")
        let trailingBlank = Self.check("/", method: .POST, headers: [host, ("Content-Length", "3 \t")])
        #expect(trailingBlank.outcome == "unchanged")
        #expect(trailingBlank.scan.framing.contentLength == 3)
    }

    @Test("a registered name's bytes are exactly RFC 3986's unreserved characters and sub-delimiters")
    func registeredNameBytes() {
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=".utf8)
        for byte in UInt8.min...UInt8.max {
            #expect(RequestRules.isRegisteredNameByte(byte) == allowed.contains(byte), "byte \(byte)")
        }
    }

    @Test(
        "the last Transfer-Encoding coding must be chunked, read strictly (RFC 9112 §6.3)",
        arguments: [
            (["chunked"], true), (["gzip, chunked"], true), (["Chunked \t"], true), (["gzip,chunked"], true),
            (["gzip", "chunked"], true), (["gzip"], false), (["chunked, gzip"], false), (["chunked", "gzip"], false),
            (["gzip chunked"], false), (["chunked;x=1"], false), (["chunked,"], false), (["xchunked"], false),
        ]
    )
    func transferEncodingEndsInChunked(codings: [String], accepted: Bool) {
        let headers = [("Host", "a.example")] + codings.map { ("Transfer-Encoding", $0) }
        let outcome = Self.check("/", method: .POST, headers: headers).outcome
        #expect(outcome == (accepted ? "unchanged" : "400 close"), "\(codings)")
    }
}
