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
