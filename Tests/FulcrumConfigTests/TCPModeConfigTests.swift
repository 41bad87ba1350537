import FulcrumConfig
import Testing

/// `mode: tcp` on frontends and backends: what it loads as, and what a TCP frontend or
/// backend cannot have, reported where it is written.
@Suite("TCP mode settings")
struct TCPModeConfigTests {
    static func yaml(frontend: String = "", backend: String = "", backendMode: String = "tcp", server: String = "") -> String {
        """
        frontends:
          - name: cache
            mode: tcp
            listen: 127.0.0.1:6380
            default_backend: redis
        \(frontend)
        backends:
          - name: redis
            mode: \(backendMode)
            servers:
              - { name: r1, address: "127.0.0.1:6379"\(server) }
        \(backend)
        """
    }

    @Test("a TCP health check sends and expects bytes; escapes in double quotes are the bytes")
    func healthCheckPayload() throws {
        let config = try ConfigLoader.load(yaml: Self.yaml(backend: #"    health_check: { send: "PING\r\n", receive: "+PONG" }"#))
        #expect(config.backends[0].healthCheck?.send == "PING\r\n")
        #expect(config.backends[0].healthCheck?.receive == "+PONG")
        // As the admin API and `fulcrum check --print` render it, and back.
        let rendered = ConfigRenderer.yaml(config)
        #expect(try ConfigLoader.load(yaml: rendered) == config, "\(rendered)")
    }

    @Test("frontends and backends are HTTP unless they say tcp")
    func loads() throws {
        let config = try ConfigLoader.load(yaml: Self.yaml())
        #expect(config.frontends[0].mode == .tcp)
        #expect(config.backends[0].mode == .tcp)
        let http = try ConfigLoader.load(
            yaml: """
                frontends: [{ name: web, listen: 127.0.0.1:8080, default_backend: app }]
                backends: [{ name: app, servers: [{ name: a1, address: "127.0.0.1:9001" }] }]
                """
        )
        #expect(http.frontends[0].mode == .http)
        #expect(http.backends[0].mode == .http)
    }

    @Test(
        "what a TCP frontend or backend cannot have is reported where it is written",
        arguments: [
            (
                yaml(backendMode: "http"),
                #"frontends[0].default_backend (line 5): backend "redis" is mode: http; a mode: tcp frontend routes only to mode: tcp backends"#
            ),
            (
                yaml(frontend: "    h2c: true"),
                "frontends[0].h2c (line 6): applies only to mode: http (a mode: tcp frontend reads no request)"
            ),
            (
                yaml(frontend: "    limits: { max_body_size: 1MB }"),
                "frontends[0].limits (line 6): applies only to mode: http (a mode: tcp frontend reads no request)"
            ),
            (
                yaml(frontend: "    acls: { api: { path_prefix: /api } }\n    rules: [{ use_backend: redis, if: api }]"),
                "frontends[0].acls.api (line 6): a mode: tcp frontend's ACLs can only test src, sni and alpn (it reads no request)"
            ),
            (
                yaml(frontend: "    acls: { office: { src: 10.0.0.0/8 } }\n    rules: [{ deny: 403, unless: office }]"),
                "frontends[0].rules[0] (line 7): a mode: tcp frontend's rules can only use_backend (it reads no request to answer)"
            ),
            (
                yaml(backend: "    algorithm: peak_ewma"),
                "backends[0].algorithm (line 12): peak_ewma needs response times, which mode: tcp does not have; expected one of: round_robin, weighted_round_robin, least_connections, random, power_of_two, hash"
            ),
            (
                yaml(backend: "    health_check: { path: /health }"),
                "backends[0].health_check.path (line 12): applies only to mode: http (in mode: tcp a health check connects, and may send and receive bytes)"
            ),
            (
                yaml(backend: "    health_check: { send: \"\" }"),
                "backends[0].health_check.send (line 12): must not be empty"
            ),
            (
                yaml(backend: "    health_check: { receive: \(String(repeating: "x", count: 4097)) }"),
                "backends[0].health_check.receive (line 12): is 4097 bytes; at most 4096 are allowed"
            ),
            (
                yaml(backend: "    health_check: { send: PING }", backendMode: "http").replacingOccurrences(
                    of: "mode: tcp\n    listen",
                    with: "listen"
                ),
                "backends[0].health_check.send (line 11): applies only to mode: tcp (an HTTP health check sends a GET for path)"
            ),
            (
                yaml(server: ", tls: {}"),
                "backends[0].servers[0].tls (line 11): TLS to servers is for mode: http (in mode: tcp, TLS passes through)"
            ),
        ]
    )
    func errors(yaml: String, expected: String) {
        #expect(loadErrors(yaml) == [expected])
    }

    @Test("sni ACLs are for TCP frontends, which then read the ClientHello")
    func serverNameACLs() throws {
        let tcp = try ConfigLoader.load(
            yaml: Self.yaml(
                frontend: "    acls: { db: { sni: [DB.example.com, \"*.db.example.com\"] } }\n    rules: [{ use_backend: redis, if: db }]"
            )
        )
        #expect(tcp.frontends[0].acls[0].criteria == [.serverName(["db.example.com", "*.db.example.com"])])
        #expect(tcp.frontends[0].routesByClientHello)
        #expect(!(try ConfigLoader.load(yaml: Self.yaml())).frontends[0].routesByClientHello)
        let http = """
            frontends:
              - name: web
                listen: 127.0.0.1:8080
                acls: { db: { sni: db.example.com } }
                rules: [{ use_backend: app, if: db }]
            backends: [{ name: app, servers: [{ name: a1, address: "127.0.0.1:9001" }] }]
            """
        #expect(
            loadErrors(http) == [
                "frontends[0].acls.db.sni (line 4): applies only to mode: tcp (a frontend that terminates TLS picks its certificate by SNI itself; route on host)"
            ]
        )
    }

    @Test("alpn ACLs are for TCP frontends too; names are kept as written, at most 255 bytes")
    func applicationProtocolACLs() throws {
        let tcp = try ConfigLoader.load(
            yaml: Self.yaml(frontend: "    acls: { mqtt: { alpn: [mqtt, X-Custom] } }\n    rules: [{ use_backend: redis, if: mqtt }]")
        )
        #expect(tcp.frontends[0].acls[0].criteria == [.applicationProtocol(["mqtt", "X-Custom"])])
        #expect(tcp.frontends[0].routesByClientHello)
        let long = String(repeating: "p", count: 256)
        #expect(
            loadErrors(Self.yaml(frontend: "    acls: { odd: { alpn: \(long) } }\n    rules: [{ use_backend: redis, if: odd }]")) == [
                "frontends[0].acls.odd.alpn (line 6): \"\(long)\" is longer than an ALPN protocol name can be (255 bytes)"
            ]
        )
        let http = """
            frontends:
              - name: web
                listen: 127.0.0.1:8080
                acls: { h2: { alpn: h2 } }
                rules: [{ use_backend: app, if: h2 }]
            backends: [{ name: app, servers: [{ name: a1, address: "127.0.0.1:9001" }] }]
            """
        #expect(
            loadErrors(http) == [
                "frontends[0].acls.h2.alpn (line 4): applies only to mode: tcp (a frontend that terminates TLS negotiates ALPN itself)"
            ]
        )
    }

    @Test("an HTTP frontend cannot route to a TCP backend")
    func httpFrontendToTCPBackend() {
        let yaml = """
            frontends: [{ name: web, listen: 127.0.0.1:8080, default_backend: redis }]
            backends: [{ name: redis, mode: tcp, servers: [{ name: r1, address: "127.0.0.1:6379" }] }]
            """
        #expect(
            loadErrors(yaml) == [
                #"frontends[0].default_backend (line 1): backend "redis" is mode: tcp; a mode: http frontend routes only to mode: http backends"#
            ]
        )
    }
}
