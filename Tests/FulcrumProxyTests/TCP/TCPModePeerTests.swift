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
        "a health check that sends PING and expects +PONG takes a redis-server that wants a password out",
        .enabled(
            if: ExternalTool.find("redis-server") != nil && ExternalTool.find("redis-cli") != nil,
            "redis-server or redis-cli is not installed"
        )
    )
    func redisHealthCheck() async throws {
        let (openPort, lockedPort) = (try deadPort(), try deadPort())
        let common = "bind 127.0.0.1\nsave \"\"\nappendonly no\nprotected-mode no"
        let open = try await PeerProcess.start("redis-server", config: "\(common)\nport \(openPort)", arguments: { [$0] }, ports: [openPort])
        defer { open.stop() }
        // Accepts connections, and answers PING with -NOAUTH: a connect alone would pass.
        let locked = try await PeerProcess.start(
            "redis-server",
            config: "\(common)\nport \(lockedPort)\nrequirepass secret",
            arguments: { [$0] },
            ports: [lockedPort]
        )
        defer { locked.stop() }
        let check = "    health_check: { interval: 100ms, timeout: 2s, rise: 1, fall: 2, send: \"PING\\r\\n\", receive: \"+PONG\" }"
        let yaml = TCPModeTests.config(servers: [openPort, lockedPort], backendExtra: check)
        try await withProxy(workers: [], yaml: { _ in yaml }) { harness in
            try await waitUntil(timeout: .seconds(15)) {
                try await harness.proxy.stats().first?.servers.map(\.state) == [.up, .down]
            }
            let cli = try #require(ExternalTool.find("redis-cli"))
            for _ in 0..<4 {
                let ping = try await cli.run(["-h", "127.0.0.1", "-p", "\(harness.port)", "ping"])
                #expect(ping.output.trimmingCharacters(in: .whitespacesAndNewlines) == "PONG", "\(ping.output)")
            }
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

    @Test(
        "TLS passthrough routed by SNI and ALPN: each name reaches the server whose certificate it is",
        .enabled(if: ExternalTool.find("openssl") != nil, "openssl is not installed")
    )
    func serverNameRouting() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let authority = try TestCertificateAuthority()
        let caFile = directory.appendingPathComponent("ca.pem").path
        try authority.certificate.serializeAsPEM().pemString.write(toFile: caFile, atomically: true, encoding: .utf8)
        // One openssl s_server per certificate: only the right one completes a verified
        // handshake for the name the client asks for.
        var servers: [(port: Int, process: PeerProcess)] = []
        defer { for server in servers { server.process.stop() } }
        for (file, names) in [("api", ["api.test"]), ("example", ["*.example.test"]), ("fallback", ["fallback.test"])] {
            let issued = try authority.issue(commonName: names[0], names: names)
            let certificate = directory.appendingPathComponent("\(file).crt").path
            let key = directory.appendingPathComponent("\(file).key").path
            try issued.certificate.serializeAsPEM().pemString.write(toFile: certificate, atomically: true, encoding: .utf8)
            try issued.key.pemRepresentation.write(toFile: key, atomically: true, encoding: .utf8)
            let port = try deadPort()
            let process = try await PeerProcess.start(
                "openssl",
                config: "",
                arguments: { _ in ["s_server", "-accept", "127.0.0.1:\(port)", "-cert", certificate, "-key", key, "-www", "-quiet"] },
                ports: [port]
            )
            servers.append((port, process))
        }
        let yaml = """
            global:
              workers: 1
              log: { level: warning, access: off }
            frontends:
              - name: tls
                mode: tcp
                listen: ["127.0.0.1:8080"]
                acls:
                  api: { sni: api.test }
                  example: { sni: "*.example.test" }
                  mqtt: { alpn: [mqtt, x-mqtt] }
                rules:
                  - { use_backend: example, if: mqtt }
                  - { use_backend: api, if: api }
                  - { use_backend: example, if: example }
                default_backend: fallback
            backends:
              - { name: api, mode: tcp, servers: [{ name: a, address: "127.0.0.1:\(servers[0].port)" }] }
              - { name: example, mode: tcp, servers: [{ name: e, address: "127.0.0.1:\(servers[1].port)" }] }
              - { name: fallback, mode: tcp, servers: [{ name: f, address: "127.0.0.1:\(servers[2].port)" }] }
            """
        try await withProxy(workers: [], yaml: { _ in yaml }) { harness in
            let openssl = try #require(ExternalTool.find("openssl"))
            // (The offered protocols come first: a client offering mqtt reaches the example
            // server whatever name it asks for.)
            for (requested, protocols, verified) in [
                ("api.test", nil, "api.test"), ("WWW.Example.Test", nil, "www.example.test"), ("other.test", nil, "fallback.test"),
                ("other.test", "h2,mqtt", "mqtt.example.test"), ("api.test", "x-mqtt", "mqtt.example.test"),
            ] {
                let alpn = protocols.map { ["-alpn", $0] } ?? []
                let run = try await openssl.run(
                    [
                        "s_client", "-connect", "127.0.0.1:\(harness.port)", "-servername", requested,
                        "-verify_hostname", verified, "-CAfile", caFile, "-verify_return_error", "-ign_eof", "-quiet",
                    ] + alpn,
                    input: "GET / HTTP/1.0\r\n\r\n"
                )
                #expect(
                    run.status == 0 && run.output.contains("HTTP/1.0 200 ok"),
                    "SNI \(requested), ALPN \(protocols ?? "none"): \(run.output)"
                )
            }
            // Not TLS at all: no server name, so the default backend (whose TLS server then
            // refuses the bytes).
            let plain = try await HeldConnection.open(port: harness.port)
            try await plain.send(raw: "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            try await waitUntil(timeout: .seconds(5)) { plain.closedByServer }
        }
    }
}
