import Foundation
import Testing

/// `mode: tcp` with real programs on both sides: redis-benchmark and redis-cli against
/// redis-server, and `openssl s_client` against `openssl s_server` through Fulcrum, whose TLS
/// session passes through untouched. `.ci/run` installs them; where one is missing, its test
/// says so and skips.
@Suite("TCP mode with redis and openssl", .serialized)
struct TCPModePeerTests {
    @Test(
        "redis-benchmark and redis-cli against redis-server, through Fulcrum",
        .enabled(
            if: ExternalTool.find("redis-server") != nil && ExternalTool.find("redis-benchmark") != nil
                && ExternalTool.find("redis-cli") != nil,
            "redis-server, redis-benchmark or redis-cli is not installed"
        )
    )
    func redis() async throws {
        let redisPort = try deadPort()
        let redis = try await PeerProcess.start(
            "redis-server",
            config: "bind 127.0.0.1\nport \(redisPort)\nsave \"\"\nappendonly no\nprotected-mode no",
            arguments: { [$0] },
            ports: [redisPort]
        )
        defer { redis.stop() }
        try await withProxy(workers: [], yaml: { _ in TCPModeTests.config(servers: [redisPort]) }) { harness in
            let cli = try #require(ExternalTool.find("redis-cli"))
            let set = try await cli.run(["-h", "127.0.0.1", "-p", "\(harness.port)", "set", "fulcrum", "through"])
            #expect(set.output.trimmingCharacters(in: .whitespacesAndNewlines) == "OK")
            let get = try await cli.run(["-h", "127.0.0.1", "-p", "\(harness.port)", "get", "fulcrum"])
            #expect(get.output.trimmingCharacters(in: .whitespacesAndNewlines) == "through")

            // Pipelined commands over 20 connections: every reply must come back in order.
            let benchmark = try #require(ExternalTool.find("redis-benchmark"))
            let run = try await benchmark.run(
                ["-h", "127.0.0.1", "-p", "\(harness.port)", "-n", "20000", "-c", "20", "-P", "8", "-t", "set,get", "-q"],
                timeout: .seconds(60)
            )
            #expect(run.status == 0 && !run.timedOut, "\(run.output)")
            #expect(run.output.contains("SET:") && run.output.contains("GET:"), "\(run.output)")
            #expect(!run.output.lowercased().contains("error"), "\(run.output)")
        }
    }

    @Test(
        "openssl s_client reaches an openssl s_server behind Fulcrum: the TLS session is the server's",
        .enabled(if: ExternalTool.find("openssl") != nil, "openssl is not installed")
    )
    func tlsPassesThrough() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let authority = try TestCertificateAuthority()
        let issued = try authority.issue(commonName: "backend.test", names: ["backend.test"])
        try issued.certificate.serializeAsPEM().pemString.write(to: directory.appendingPathComponent("cert.pem"), atomically: true, encoding: .utf8)
        try issued.key.pemRepresentation.write(to: directory.appendingPathComponent("key.pem"), atomically: true, encoding: .utf8)
        try authority.certificate.serializeAsPEM().pemString.write(to: directory.appendingPathComponent("ca.pem"), atomically: true, encoding: .utf8)

        let serverPort = try deadPort()
        let server = try await PeerProcess.start(
            "openssl",
            config: "",
            arguments: { _ in
                [
                    "s_server", "-accept", "127.0.0.1:\(serverPort)", "-cert", directory.appendingPathComponent("cert.pem").path,
                    "-key", directory.appendingPathComponent("key.pem").path, "-www", "-quiet",
                ]
            },
            ports: [serverPort]
        )
        defer { server.stop() }
        try await withProxy(workers: [], yaml: { _ in TCPModeTests.config(servers: [serverPort]) }) { harness in
            let openssl = try #require(ExternalTool.find("openssl"))
            // `-www` answers a GET with a page about the session; the client verifies the
            // server's own certificate, for the server's name, through Fulcrum.
            let run = try await openssl.run(
                [
                    "s_client", "-connect", "127.0.0.1:\(harness.port)", "-servername", "backend.test",
                    "-verify_hostname", "backend.test", "-CAfile", directory.appendingPathComponent("ca.pem").path,
                    "-verify_return_error", "-ign_eof", "-quiet",
                ],
                input: "GET / HTTP/1.0\r\n\r\n"
            )
            #expect(run.status == 0, "\(run.output)")
            #expect(run.output.contains("HTTP/1.0 200 ok"), "\(run.output)")
            #expect(run.output.contains("s_server"), "\(run.output)")
        }
    }
}
