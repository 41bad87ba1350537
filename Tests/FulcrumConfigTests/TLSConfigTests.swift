import Foundation
import FulcrumConfig
import Testing

/// `frontends[].tls`, `redirect_to_https`, `h2c` and `limits.max_concurrent_streams`.
@Suite struct TLSConfigTests {
    private static func frontendYAML(_ settings: String) -> String {
        minimalYAML.replacingOccurrences(of: "    default_backend: web\n", with: "\(settings)\n    default_backend: web\n")
    }

    @Test("tls with defaults, and with every key set")
    func parsesTLS() throws {
        let directory = FileManager.default.temporaryDirectory.path
        #expect(try ConfigLoader.load(yaml: minimalYAML).frontends[0].tls == nil)
        let plain = try ConfigLoader.load(yaml: Self.frontendYAML("    tls: { certificates: \"\(directory)\" }"))
        #expect(plain.frontends[0].tls == FrontendTLSConfig(certificatesDirectory: directory))
        let set = try ConfigLoader.load(
            yaml: Self.frontendYAML(
                "    tls: { certificates: \"\(directory)\", default_certificate: Example.COM, min_version: \"1.3\", alpn: [http/1.1] }"
            )
        )
        var expected = FrontendTLSConfig(certificatesDirectory: directory)
        expected.defaultCertificate = "example.com"
        expected.minimumVersion = .v1_3
        expected.alpn = ["http/1.1"]
        #expect(set.frontends[0].tls == expected)
        #expect(plain.frontends[0].tls?.alpn == ["h2", "http/1.1"])
        let redirect = try ConfigLoader.load(yaml: Self.frontendYAML("    redirect_to_https: 8443"))
        #expect(redirect.frontends[0].redirectToHTTPSPort == 8443)
        #expect(redirect.frontends[0].h2c == false)
        #expect(redirect.frontends[0].limits.maxConcurrentStreams == 100)
        let h2c = try ConfigLoader.load(yaml: Self.frontendYAML("    h2c: true\n    limits: { max_concurrent_streams: 250 }"))
        #expect(h2c.frontends[0].h2c)
        #expect(h2c.frontends[0].limits.maxConcurrentStreams == 250)
    }

    @Test("a missing directory, an unknown version or protocol, and a redirect on a TLS frontend are reported")
    func rejectsBadTLS() {
        #expect(
            loadErrors(
                Self.frontendYAML(
                    "    tls: { certificates: /nonexistent/certs, min_version: \"1.1\", alpn: [h2, spdy] }\n    redirect_to_https: 443"
                )
            ) == [
                #"frontends[0].tls.certificates (line 4): "/nonexistent/certs" does not exist"#,
                #"frontends[0].tls.min_version (line 4): unknown TLS version "1.1"; expected one of: 1.2, 1.3"#,
                #"frontends[0].tls.alpn[1] (line 4): "spdy" is not a supported protocol (expected one of: h2, http/1.1)"#,
                "frontends[0].redirect_to_https (line 5): a TLS frontend cannot redirect to HTTPS",
            ]
        )
        #expect(
            loadErrors(
                Self.frontendYAML(
                    "    tls: { certificates: \"\(FileManager.default.temporaryDirectory.path)\" }\n    h2c: true"
                )
            ) == [
                "frontends[0].h2c (line 5): h2c is HTTP/2 without TLS; a TLS frontend offers h2 by ALPN (tls.alpn)"
            ]
        )
        #expect(
            loadErrors(Self.frontendYAML("    tls: { default_certificate: a.test }")) == [
                #"frontends[0].tls.certificates (line 4): required key "certificates" is missing"#
            ]
        )
    }

    @Test("tls.profile, tls.ciphers and tls.hsts: defaults, and every key set")
    func parsesProfileCiphersAndHSTS() throws {
        let directory = FileManager.default.temporaryDirectory.path
        let plain = try #require(try ConfigLoader.load(yaml: Self.frontendYAML("    tls: { certificates: \"\(directory)\" }")).frontends[0].tls)
        #expect(plain.profile == .intermediate && plain.ciphers == nil && plain.hsts == nil)
        #expect(plain.effectiveMinimumVersion == .v1_2)
        #expect(plain.effectiveCiphers == TLSProfile.intermediateCiphers)

        let modern = try #require(
            try ConfigLoader.load(yaml: Self.frontendYAML("    tls: { certificates: \"\(directory)\", profile: Modern, hsts: {} }")).frontends[0].tls
        )
        #expect(modern.profile == .modern && modern.minimumVersion == .v1_3 && modern.effectiveMinimumVersion == .v1_3)
        #expect(modern.hsts == HSTSConfig())
        #expect(modern.hsts?.headerValue == "max-age=63072000")

        let set = try #require(
            try ConfigLoader.load(
                yaml: Self.frontendYAML(
                    """
                        tls:
                          certificates: "\(directory)"
                          ciphers: "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE+AESGCM:!aNULL:!MD5"
                          hsts: { max_age: 31536000, include_subdomains: true, preload: true }
                    """
                )
            ).frontends[0].tls
        )
        #expect(set.effectiveCiphers == "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE+AESGCM:!aNULL:!MD5")
        #expect(set.hsts?.headerValue == "max-age=31536000; includeSubDomains; preload")
        let days = try ConfigLoader.load(yaml: Self.frontendYAML("    tls: { certificates: \"\(directory)\", hsts: { max_age: 1d } }"))
        #expect(days.frontends[0].tls?.hsts?.maxAgeSeconds == 86400)
    }

    @Test("the intermediate profile's TLS 1.2 suites are AEAD only, as BoringSSL reads them")
    func intermediateSuites() {
        #expect(
            TLSCipherList.suites(TLSProfile.intermediateCiphers) == [
                "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
            ]
        )
        #expect(TLSCipherList.suites("ECDHE+CHACHA20:!aPSK") == ["ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"])
    }

    @Test("an unknown cipher, a list that selects nothing, ciphers without TLS 1.2, a bad profile or hsts are reported")
    func rejectsBadProfileCiphersAndHSTS() {
        let directory = FileManager.default.temporaryDirectory.path
        #expect(
            loadErrors(
                Self.frontendYAML(
                    """
                        tls:
                          certificates: "\(directory)"
                          profile: old
                          ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GMC-SHA256"
                          hsts: { max_age: forever, preload: true, colour: red }
                    """
                )
            ) == [
                #"frontends[0].tls.profile (line 6): unknown TLS profile "old"; expected one of: intermediate, modern"#,
                #"frontends[0].tls.ciphers (line 7): unknown cipher suite or alias "ECDHE-ECDSA-AES128-GMC-SHA256" (BoringSSL's names, as OpenSSL spells them: ECDHE-ECDSA-AES128-GCM-SHA256)"#,
                #"frontends[0].tls.hsts.colour (line 8): unknown key "colour"; allowed keys: max_age, include_subdomains, preload"#,
                #"frontends[0].tls.hsts.max_age (line 8): "forever" is not a valid max_age (expected seconds, 63072000, or a duration: 8760h, 730d)"#,
                "frontends[0].tls.hsts.preload (line 8): preload needs include_subdomains: true and a max_age of at least a year (31536000), as the preload lists require",
            ]
        )
        #expect(
            loadErrors(Self.frontendYAML("    tls: { certificates: \"\(directory)\", ciphers: \"ECDHE+AESGCM:!ECDHE\" }")) == [
                #"frontends[0].tls.ciphers (line 4): "ECDHE+AESGCM:!ECDHE" selects no TLS 1.2 cipher suite"#
            ]
        )
        #expect(
            loadErrors(Self.frontendYAML("    tls: { certificates: \"\(directory)\", profile: modern, min_version: \"1.2\", ciphers: HIGH }")) == [
                "frontends[0].tls.min_version (line 4): the modern profile is TLS 1.3 only; remove min_version or use profile: intermediate",
                "frontends[0].tls.ciphers (line 4): ciphers choose TLS 1.2 suites, and the modern profile is TLS 1.3 only (TLS 1.3's suites are fixed)",
            ]
        )
        #expect(
            loadErrors(Self.frontendYAML("    tls: { certificates: \"\(directory)\", min_version: \"1.3\", ciphers: HIGH }")) == [
                "frontends[0].tls.ciphers (line 4): ciphers choose TLS 1.2 suites, and min_version is 1.3 (TLS 1.3's suites are fixed)"
            ]
        )
    }

    @Test("servers[].tls: verification on unless turned off, CA and client files must be readable")
    func parsesServerTLS() throws {
        let caFile = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-test-ca-\(UUID().uuidString).pem")
        try "placeholder".write(to: caFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: caFile) }
        func server(_ tls: String) -> String {
            minimalYAML.replacingOccurrences(
                of: "{ name: web1, address: \"127.0.0.1:9001\" }",
                with: "{ name: web1, address: \"api.internal:443\", tls: \(tls) }"
            )
        }
        let plain = try ConfigLoader.load(yaml: minimalYAML)
        #expect(plain.backends[0].servers[0].tls == nil)
        let defaults = try ConfigLoader.load(yaml: server("{}")).backends[0].servers[0].tls
        #expect(defaults == ServerTLSConfig())
        #expect(defaults?.verify == true)
        let set = try ConfigLoader.load(
            yaml: server(
                "{ verify: false, ca: \"\(caFile.path)\", sni: api.internal, client_certificate: \"\(caFile.path)\" }"
            )
        ).backends[0].servers[0].tls
        #expect(set?.verify == false && set?.caFile == caFile.path && set?.serverName == "api.internal")
        #expect(set?.clientCertificateFile == caFile.path)
        #expect(
            loadErrors(server("{ ca: /nonexistent/ca.pem, verify: maybe }")) == [
                #"backends[0].servers[0].tls.verify (line 8): expected true or false, found "maybe""#,
                #"backends[0].servers[0].tls.ca (line 8): "/nonexistent/ca.pem" does not exist"#,
            ]
        )
    }
}
