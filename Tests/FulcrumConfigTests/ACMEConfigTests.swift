import Foundation
import FulcrumConfig
import Testing

/// `frontends[].tls.acme`.
@Suite struct ACMEConfigTests {
    /// A TLS frontend with `acme`, and a plain one unless `plain` is false.
    private static func yaml(_ acme: String, plain: Bool = true) -> String {
        """
        frontends:
          - name: secure
            listen: "127.0.0.1:8443"
            default_backend: web
            tls: { certificates: \(FileManager.default.temporaryDirectory.path), acme: \(acme) }
        \(plain ? "  - { name: plain, listen: \"127.0.0.1:8080\", default_backend: web }" : "")
        backends:
          - name: web
            servers: [{ name: web1, address: "127.0.0.1:9001" }]
        """
    }

    @Test("The defaults: Let's Encrypt, HTTP-01, no contact, the system's roots; names lowercased")
    func defaults() throws {
        let acme = try #require(try ConfigLoader.load(yaml: Self.yaml("{ domains: [Example.com] }")).frontends[0].tls?.acme)
        #expect(acme.directory == "https://acme-v02.api.letsencrypt.org/directory")
        #expect(acme.domains == ["example.com"])
        #expect(acme.challenge == .http01)
        #expect(acme.email == nil && acme.caFile == nil)
        #expect(try ConfigLoader.load(yaml: Self.yaml("{ domains: example.com }")).frontends[0].tls?.acme?.domains == ["example.com"])
    }

    @Test("TLS-ALPN-01 is chosen by name, in any case, and needs no plain HTTP frontend")
    func tlsALPN01() throws {
        for written in ["tls-alpn-01", "TLS-ALPN-01"] {
            let config = try ConfigLoader.load(yaml: Self.yaml("{ domains: [a.example], challenge: \(written) }", plain: false))
            #expect(config.frontends[0].tls?.acme?.challenge == .tlsALPN01)
        }
    }

    @Test("HTTP-01 without a plain HTTP frontend to answer it is an error that says what to do")
    func http01NeedsAPlainFrontend() {
        #expect(
            loadErrors(Self.yaml("{ domains: [a.example] }", plain: false)) == [
                #"frontends (line 2): frontend "secure" obtains its certificate by ACME HTTP-01, which a plain HTTP frontend answers (on port 80), and there is none: add one, or use challenge: tls-alpn-01"#
            ]
        )
    }

    @Test("Errors: no domains, a wildcard, a plain-HTTP directory, a bad email, an unknown challenge, a missing CA file")
    func errors() {
        #expect(loadErrors(Self.yaml("{ email: a@b.c }")) == [#"frontends[0].tls.acme.domains (line 5): required key "domains" is missing"#])
        #expect(loadErrors(Self.yaml("{ domains: [\"*.example.com\"] }")).count == 1)
        #expect(
            loadErrors(Self.yaml("{ domains: [a.example], directory: \"http://ca/dir\" }"))
                == [#"frontends[0].tls.acme.directory (line 5): "http://ca/dir" is not an https:// URL (ACME is spoken over HTTPS)"#]
        )
        #expect(loadErrors(Self.yaml("{ domains: [a.example], email: nobody }")).count == 1)
        #expect(
            loadErrors(Self.yaml("{ domains: [a.example], challenge: dns-01 }"))
                == [#"frontends[0].tls.acme.challenge (line 5): unknown ACME challenge "dns-01"; expected one of: http-01, tls-alpn-01"#]
        )
        #expect(loadErrors(Self.yaml("{ domains: [a.example], ca: /nonexistent/ca.pem }")).count == 1)
    }
}
