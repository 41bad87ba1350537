import Foundation
import Testing

/// `protocol: h2` against nginx (`listen … ssl http2`), a real HTTP/2-over-TLS server: ALPN
/// chooses h2, health checks and requests go over it; a TLS server that only speaks HTTP/1.1
/// is refused with a clear error. `.ci/run` installs nginx; without it, this suite skips.
@Suite("HTTP/2 over TLS to nginx", .serialized)
struct HTTP2UpstreamPeerTests {
    @Test(
        "h2 to nginx by ALPN: requests and health checks over HTTP/2; an HTTP/1.1-only TLS server fails with a clear error",
        .enabled(if: ExternalTool.find("nginx", alternatives: ["/usr/sbin/nginx"]) != nil, "nginx is not installed")
    )
    func nginxOverTLS() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let authority = try TestCertificateAuthority()
        let issued = try authority.issue(commonName: "backend.test", names: ["backend.test"])
        let (certificate, key, ca) = (
            directory.appendingPathComponent("backend.crt").path, directory.appendingPathComponent("backend.key").path,
            directory.appendingPathComponent("ca.pem").path
        )
        try issued.certificate.serializeAsPEM().pemString.write(toFile: certificate, atomically: true, encoding: .utf8)
        try issued.key.pemRepresentation.write(toFile: key, atomically: true, encoding: .utf8)
        try authority.certificate.serializeAsPEM().pemString.write(toFile: ca, atomically: true, encoding: .utf8)
        let (h2Port, http1Port) = (try deadPort(), try deadPort())
        let nginx = try await PeerProcess.startNginx(
            in: directory,
            http: """
                ssl_certificate \(certificate);
                ssl_certificate_key \(key);
                server {
                    listen 127.0.0.1:\(h2Port) ssl http2;
                    location / { return 200 "$server_protocol $ssl_protocol $http_x_forwarded_for\\n"; }
                }
                server {
                    listen 127.0.0.1:\(http1Port) ssl;
                    location / { return 200 "$server_protocol\\n"; }
                }
                """,
            ports: [h2Port, http1Port]
        )
        defer { nginx.stop() }
        let tls = "tls: { ca: \"\(ca)\", sni: backend.test }, protocol: h2"
        let yaml = """
            global:
              workers: 1
              log: { level: warning, access: off }
            frontends:
              - name: test
                listen: ["127.0.0.1:8080"]
                acls:
                  wrong: { path_prefix: /wrong }
                rules:
                  - { if: wrong, use_backend: http1 }
                default_backend: h2
            backends:
              - name: h2
                health_check: { path: /, interval: 100ms, timeout: 1s, rise: 1, fall: 1 }
                servers: [{ name: n1, address: "127.0.0.1:\(h2Port)", \(tls) }]
              - name: http1
                retries: 0
                servers: [{ name: n2, address: "127.0.0.1:\(http1Port)", \(tls) }]
            """
        let logs = LogCapture()
        try await withProxy(workers: [], logs: logs, yaml: { _ in yaml }) { harness in
            for _ in 0..<3 {
                let response = try await harness.send("/")
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).hasPrefix("HTTP/2.0 TLSv1."))
                #expect(String(buffer: response.body).hasSuffix(" 127.0.0.1\n"))
            }
            // Probes every 100 ms, over HTTP/2 too: the server stays up.
            try await Task.sleep(for: .milliseconds(400))
            #expect(try await harness.proxy.stats().first { $0.name == "h2" }?.servers.first?.state == .up)

            let refused = try await harness.send("/wrong")
            #expect(refused.status == .badGateway)
        }
        #expect(logs.messages.contains { $0.contains("did not agree to HTTP/2 by ALPN") }, "\(logs.messages)")
    }
}
