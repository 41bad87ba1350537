import FulcrumConfig
import NIOCore
import NIOHTTP1
import Testing

@testable import FulcrumProxy

/// Reading and writing the sticky cookie, without sockets.
@Suite("Sticky cookie")
struct StickyCookieTests {
    static let insert = StickyCookie(StickyConfig(cookie: "SRV"), backend: "app", servers: ["a", "b", "c"])
    static let prefix = StickyCookie(StickyConfig(cookie: "SID", mode: .prefix), backend: "app", servers: ["a", "b", "c"])

    @Test("values: 16 hex digits from the names, distinct per backend, the same for a server however many there are")
    func values() {
        let values = Self.insert.values
        #expect(Set(values).count == 3)
        #expect(values.allSatisfy { $0.utf8.count == 16 && $0.allSatisfy(\.isHexDigit) })
        let other = StickyCookie(StickyConfig(cookie: "SRV"), backend: "api", servers: ["a"])
        #expect(other.values[0] != values[0])
        let fewer = StickyCookie(StickyConfig(cookie: "SRV"), backend: "app", servers: ["c", "a"])
        #expect(fewer.values == [values[2], values[0]])
    }

    /// The `Cookie` lines the server would receive, and the server the cookie names.
    static func forwarded(_ sticky: StickyCookie, _ headers: HTTPHeaders) -> (lines: String, server: Int?) {
        var buffer = ByteBuffer()
        var server: Int??
        for (name, value) in headers where name.lowercased() == "cookie" {
            sticky.writeCookieLine(name: name, value: value, server: &server, into: &buffer)
        }
        return (String(buffer: buffer), server ?? nil)
    }

    @Test("insert: the cookie is read from any cookie field (HTTP/2 may send one per cookie) and left out of the line")
    func insertTakes() {
        let b = Self.insert.values[1]
        let headers: HTTPHeaders = ["Cookie": "theme=dark", "host": "x", "cookie": "SRV=\(b)", "COOKIE": "lang=en;SRVX=1 ; SRV=\(b)"]
        #expect(Self.forwarded(Self.insert, headers).server == 1)
        #expect(Self.forwarded(Self.insert, headers).lines == "Cookie: theme=dark\r\nCOOKIE: lang=en; SRVX=1\r\n")

        let only: HTTPHeaders = ["cookie": "  SRV=\(b)  "]
        #expect(Self.forwarded(Self.insert, only).server == 1)
        #expect(Self.forwarded(Self.insert, only).lines == "", "a line left empty is not written")

        let unknown: HTTPHeaders = ["cookie": "SRV=ffffffffffffffff; a=1"]
        #expect(Self.forwarded(Self.insert, unknown).server == nil)
        #expect(Self.forwarded(Self.insert, unknown).lines == "cookie: a=1\r\n")

        for bad in ["SRV=", "SRV", "SRV=\(b)0", "SRV=\(b.uppercased())x", "srv=\(b)", "XSRV=\(b)"] {
            #expect(Self.forwarded(Self.insert, ["cookie": bad]).server == nil, "\(bad)")
        }
        // Upper-case hex digits name the same server.
        #expect(Self.forwarded(Self.insert, ["cookie": "SRV=\(b.uppercased())"]).server == 1)

        let none: HTTPHeaders = ["cookie": "a=1;  b=2"]
        #expect(Self.forwarded(Self.insert, none).server == nil)
        #expect(Self.forwarded(Self.insert, none).lines == "cookie: a=1; b=2\r\n")
    }

    @Test("prefix: the prefix is read and taken off; values without one, or with another shape, pass as they are")
    func prefixTakes() {
        let c = Self.prefix.values[2]
        let headers: HTTPHeaders = ["cookie": "x=1; SID=\(c)~abc~def"]
        #expect(Self.forwarded(Self.prefix, headers).server == 2)
        #expect(Self.forwarded(Self.prefix, headers).lines == "cookie: x=1; SID=abc~def\r\n")

        let plain: HTTPHeaders = ["cookie": "SID=abc~def"]
        #expect(Self.forwarded(Self.prefix, plain).server == nil)
        #expect(Self.forwarded(Self.prefix, plain).lines == "cookie: SID=abc~def\r\n")

        // A prefix of the right shape that names no server is taken off all the same.
        let stale: HTTPHeaders = ["cookie": "SID=0123456789abcdef~abc"]
        #expect(Self.forwarded(Self.prefix, stale).server == nil)
        #expect(Self.forwarded(Self.prefix, stale).lines == "cookie: SID=abc\r\n")
    }

    @Test("insert stamps only when the cookie named another server, or none; Cache-Control: private unless already private")
    func insertStamps() {
        let a = Self.insert.values[0]
        var head = HTTPResponseHead(version: .http1_1, status: .ok)
        Self.insert.stamp(&head, server: 0, requested: 0, isSecure: false)
        #expect(head.headers.isEmpty)

        Self.insert.stamp(&head, server: 0, requested: 2, isSecure: true)
        #expect(head.headers["set-cookie"] == ["SRV=\(a); Path=/; HttpOnly; Secure"])
        #expect(head.headers["cache-control"] == ["private"])

        for directive in ["no-store", "private, max-age=60", "No-Cache"] {
            var kept = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Cache-Control": directive])
            Self.insert.stamp(&kept, server: 0, requested: nil, isSecure: false)
            #expect(kept.headers["cache-control"] == [directive])
            #expect(kept.headers["set-cookie"].count == 1)
        }
        var cacheable = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Cache-Control": "public, max-age=60"])
        Self.insert.stamp(&cacheable, server: 0, requested: nil, isSecure: false)
        #expect(cacheable.headers["cache-control"] == ["public, max-age=60", "private"])

        var informational = HTTPResponseHead(version: .http1_1, status: .continue)
        Self.insert.stamp(&informational, server: 0, requested: nil, isSecure: false)
        #expect(informational.headers.isEmpty)
    }

    @Test("prefix stamps the server's own cookie, every one of its Set-Cookie fields kept apart")
    func prefixStamps() {
        let b = Self.prefix.values[1]
        var head = HTTPResponseHead(
            version: .http1_1,
            status: .ok,
            headers: ["Set-Cookie": "theme=dark", "set-cookie": "SID=xyz; Path=/; Secure", "x": "y", "Set-Cookie": "SIDE=1"]
        )
        Self.prefix.stamp(&head, server: 1, requested: nil, isSecure: false)
        #expect(head.headers["set-cookie"] == ["theme=dark", "SID=\(b)~xyz; Path=/; Secure", "SIDE=1"])
        #expect(head.headers["x"] == ["y"])
        #expect(!head.headers.contains(name: "cache-control"))
    }
}
