import AsyncHTTPClient
import Foundation
import FulcrumWorker
import NIOCore
import NIOPosix
import NIOSSL
import Testing

@testable import FulcrumProxy

/// What a TLS frontend offers, seen by real clients: the versions and TLS 1.2 suites of its
/// profile (`openssl s_client`), its `Strict-Transport-Security` header, and OCSP stapling.
/// The `openssl` tests skip, saying so, where the `openssl` command is missing.
@Suite("TLS profiles", .serialized)
struct TLSProfileTests {
    /// A directory with `localhost.pem` (a P-256 certificate of a fresh test CA).
    private static func certificates() throws -> (directory: URL, authority: TestCertificateAuthority) {
        let authority = try TestCertificateAuthority()
        let directory = try makeTemporaryDirectory()
        try pemFile(try authority.issue(commonName: "localhost", names: ["localhost"]))
            .write(to: directory.appendingPathComponent("localhost.pem"), atomically: true, encoding: .utf8)
        return (directory, authority)
    }

    private static func tlsConfig(_ ports: [Int], directory: URL, extra: String = "") -> String {
        simpleConfig(ports, frontendExtra: "    tls: { certificates: \"\(directory.path)\"\(extra) }")
    }

    /// Runs `body` against a TLS frontend whose `tls` mapping ends with `extra`, with the
    /// `openssl` command as the client; skips, saying so, without it.
    private static func withOpenSSLClient(
        tls extra: String = "",
        _ body: (_ handshake: ([String]) async throws -> Handshake) async throws -> Void
    ) async throws {
        guard let openssl = ExternalTool.find("openssl") else {
            print("skipped: the openssl command is not installed")
            return
        }
        let (directory, _) = try Self.certificates()
        defer { try? FileManager.default.removeItem(at: directory) }
        let yaml = { Self.tlsConfig($0, directory: directory, extra: extra) }
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: yaml) { harness async throws in
            try await body { options in try await Handshake(openssl, port: harness.port, options) }
        }
    }

    @Test("the default profile (Mozilla intermediate) refuses CBC suites and TLS 1.1, accepts AEAD suites and TLS 1.3")
    func intermediateProfile() async throws {
        try await Self.withOpenSSLClient { handshake in
            for cbc in ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA"] {
                let refused = try await handshake(["-tls1_2", "-cipher", cbc])
                #expect(refused.suite == nil, "\(cbc) was accepted: \(refused.output)")
            }
            for aead in ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"] {
                let accepted = try await handshake(["-tls1_2", "-cipher", aead])
                #expect(accepted.suite == aead, "\(accepted.output)")
            }
            // OpenSSL's own floor would refuse TLS 1.1 first; level 0 lets it ask.
            let old = try await handshake(["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
            #expect(old.suite == nil, "\(old.output)")
            let tls13 = try await handshake(["-tls1_3"])
            #expect(tls13.version == "TLSv1.3", "\(tls13.output)")
        }
    }

    @Test("profile: modern refuses TLS 1.2 and serves TLS 1.3")
    func modernProfile() async throws {
        try await Self.withOpenSSLClient(tls: ", profile: modern") { handshake in
            let tls12 = try await handshake(["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"])
            #expect(tls12.suite == nil, "\(tls12.output)")
            let tls13 = try await handshake(["-tls1_3"])
            #expect(tls13.version == "TLSv1.3", "\(tls13.output)")
        }
    }

    @Test("tls.ciphers replaces the profile's TLS 1.2 suites")
    func customCiphers() async throws {
        try await Self.withOpenSSLClient(tls: ", ciphers: \"ECDHE+CHACHA20:!aNULL\"") { handshake in
            let chacha = try await handshake(["-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"])
            #expect(chacha.suite == "ECDHE-ECDSA-CHACHA20-POLY1305", "\(chacha.output)")
            let gcm = try await handshake(["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"])
            #expect(gcm.suite == nil, "\(gcm.output)")
        }
    }

    @Test("hsts: every response over TLS carries one Strict-Transport-Security, local ones too; plain HTTP none")
    func strictTransportSecurity() async throws {
        let (directory, authority) = try Self.certificates()
        defer { try? FileManager.default.removeItem(at: directory) }
        // The server sends its own, weaker header: the frontend's replaces it.
        let server = try await ScriptedServer(
            response: "HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=60\r\nContent-Length: 2\r\n\r\nok"
        )
        let plainPort = try deadPort()
        let yaml = { (_: [Int]) in
            """
            global:
              workers: 1
              log: { level: warning, access: off }
            frontends:
              - name: secure
                listen: ["127.0.0.1:8080"]
                tls: { certificates: "\(directory.path)", hsts: { max_age: 365d, include_subdomains: true } }
                acls:
                  denied: { path_prefix: /denied }
                rules:
                  - { deny: 403, if: denied }
                default_backend: app
              - name: plain
                listen: ["127.0.0.1:\(plainPort)"]
                default_backend: app
            backends:
              - name: app
                servers:
                  - { name: s1, address: "127.0.0.1:\(server.port)" }
            """
        }
        try await withProxy(workers: [], yaml: yaml) { harness async throws in
            let expected = ["max-age=31536000; includeSubDomains"]
            for version in [HTTPClient.Configuration.HTTPVersion.http1Only, .automatic] {
                var tls = TLSConfiguration.makeClientConfiguration()
                tls.trustRoots = .certificates([try authority.nioCertificate])
                var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
                configuration.httpVersion = version
                let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
                do {
                    for path in ["/proxied", "/denied"] {
                        let response = try await client.execute(
                            HTTPClientRequest(url: "https://localhost:\(harness.port)\(path)"),
                            timeout: .seconds(10)
                        )
                        _ = try await response.body.collect(upTo: 1 << 20)
                        #expect(response.status == (path == "/denied" ? .forbidden : .ok))
                        #expect(response.headers["strict-transport-security"] == expected, "\(version) \(path)")
                    }
                } catch {
                    try await client.shutdown()
                    throw error
                }
                try await client.shutdown()
            }
            let plain = try await harness.client.send(.GET, url: "http://127.0.0.1:\(plainPort)/proxied")
            #expect(plain.status == .ok)
            // Over plain HTTP, the server's own header passes untouched, and none is added.
            #expect(plain.headers[canonicalForm: "strict-transport-security"] == ["max-age=60"])
        }
        try await server.close()
    }
}

/// What `openssl s_client` negotiated with the proxy: a nil suite when the handshake failed.
private struct Handshake {
    var version: String?
    var suite: String?
    var output: String

    init(_ openssl: ExternalTool, port: Int, _ options: [String]) async throws {
        let run = try await openssl.run(["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "localhost", "-brief"] + options)
        func value(_ label: String) -> String? {
            run.output.split(separator: "\n").first { $0.hasPrefix(label) }.map {
                $0.dropFirst(label.count).trimmingCharacters(in: .whitespaces)
            }
        }
        output = run.output
        if run.status == 0 {
            version = value("Protocol version:")
            suite = value("Ciphersuite:")
        }
    }
}
