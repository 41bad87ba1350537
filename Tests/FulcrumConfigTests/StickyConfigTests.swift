import FulcrumConfig
import Testing

/// `sticky`: what it loads as, and what is refused.
@Suite("Sticky sessions: settings")
struct StickyConfigTests {
    static func yaml(sticky: String, mode: String = "http") -> String {
        """
        frontends:
          - { name: public, listen: "127.0.0.1:8080", default_backend: web, mode: \(mode) }
        backends:
          - name: web
            mode: \(mode)
            sticky: \(sticky)
            servers:
              - { name: web1, address: "127.0.0.1:9001" }
        """
    }

    @Test("insert by default, HttpOnly, Secure as the connection, no Max-Age or SameSite; prefix; every attribute")
    func loads() throws {
        let plain = try #require(try ConfigLoader.load(yaml: Self.yaml(sticky: "{ cookie: SRV }")).backends[0].sticky)
        #expect(plain == StickyConfig(cookie: "SRV", mode: .insert))
        #expect(plain.httpOnly && plain.secure == nil && plain.ttl == nil && plain.sameSite == nil)
        let prefix = try ConfigLoader.load(yaml: Self.yaml(sticky: "{ cookie: JSESSIONID, mode: prefix }"))
        #expect(prefix.backends[0].sticky == StickyConfig(cookie: "JSESSIONID", mode: .prefix))
        let full = try ConfigLoader.load(
            yaml: Self.yaml(sticky: "{ cookie: lb, mode: insert, ttl: 1h, secure: true, httponly: false, samesite: strict }")
        )
        var expected = StickyConfig(cookie: "lb")
        expected.ttl = .seconds(3600)
        expected.secure = true
        expected.httpOnly = false
        expected.sameSite = .strict
        #expect(full.backends[0].sticky == expected)
        for config in [prefix, full] {
            #expect(try ConfigLoader.load(yaml: ConfigRenderer.yaml(config)) == config)
        }
    }

    @Test(
        "refused: no cookie, a name that is no token, an unknown mode, attributes in prefix mode, SameSite=None without Secure, TCP",
        arguments: [
            (yaml(sticky: "{ mode: insert }"), #"backends[0].sticky.cookie (line 6): required key "cookie" is missing"#),
            (
                yaml(sticky: #"{ cookie: "my cookie" }"#),
                #"backends[0].sticky.cookie (line 6): "my cookie" is not a cookie name (letters, digits and !#$%&'*+-.^_`|~)"#
            ),
            (
                yaml(sticky: "{ cookie: SRV, mode: rewrite }"),
                #"backends[0].sticky.mode (line 6): unknown mode "rewrite"; expected one of: insert, prefix"#
            ),
            (
                yaml(sticky: "{ cookie: SRV, mode: prefix, ttl: 1h }"),
                "backends[0].sticky.ttl (line 6): applies only to mode: insert (in mode: prefix, the server's cookie keeps its own attributes)"
            ),
            (
                yaml(sticky: "{ cookie: SRV, samesite: none }"),
                "backends[0].sticky.samesite (line 6): none needs secure: true (browsers refuse a SameSite=None cookie that is not Secure)"
            ),
            (
                yaml(sticky: "{ cookie: SRV, ttl: 500ms }"),
                "backends[0].sticky.ttl (line 6): must be at least 1s (a cookie's Max-Age counts seconds)"
            ),
            (
                yaml(sticky: "{ cookie: SRV }", mode: "tcp"),
                "backends[0].sticky (line 6): applies only to mode: http (a TCP connection carries no cookie; algorithm: hash keeps a client on its server)"
            ),
        ]
    )
    func errors(yaml: String, expected: String) {
        #expect(loadErrors(yaml) == [expected])
    }
}
