import Foundation
import FulcrumWorker
import NIOCore
import NIOPosix
import Testing

/// PROXY protocol against the real programs on either side: HAProxy in front of Fulcrum
/// (`send-proxy`, `send-proxy-v2`), and nginx behind it (`listen … proxy_protocol`). The client
/// connects from 127.0.0.2, and the proxies from 127.0.0.1, so only a header carries
/// 127.0.0.2. `.ci/run` installs both programs; where one is missing, its test says so and
/// skips.
@Suite("PROXY protocol with HAProxy and nginx", .serialized)
struct ProxyProtocolPeerTests {
    @Test(
        "HAProxy in front (send-proxy in TCP mode, send-proxy-v2 in HTTP mode): Fulcrum sees the client",
        .enabled(if: ExternalTool.find("haproxy", alternatives: ["/usr/sbin/haproxy"]) != nil, "haproxy is not installed")
    )
    func haproxyInFront() async throws {
        let yaml = { (ports: [Int]) in
            """
            global:
              workers: 1
              log: { level: warning, access: off }
            frontends:
              - name: test
                listen: ["127.0.0.1:8080"]
                accept_proxy: { from: [127.0.0.1/32] }
                acls:
                  second_loopback: { src: 127.0.0.2 }
                rules:
                  - { if: second_loopback, use_backend: b }
                default_backend: a
            backends:
              - name: a
                servers: [{ name: w1, address: "127.0.0.1:\(ports[0])" }]
              - name: b
                servers: [{ name: w2, address: "127.0.0.1:\(ports[1])" }]
            """
        }
        try await withProxy(workers: [.init(), .init()], yaml: yaml) { harness in
            let (tcpPort, httpPort) = (try deadPort(), try deadPort())
            let haproxy = try await PeerProcess.start(
                "haproxy",
                config: """
                    global
                        nbthread 1
                    defaults
                        timeout connect 2s
                        timeout client 10s
                        timeout server 10s
                    frontend tcp_v1
                        mode tcp
                        bind 127.0.0.1:\(tcpPort)
                        default_backend fulcrum_v1
                    frontend http_v2
                        mode http
                        bind 127.0.0.1:\(httpPort)
                        default_backend fulcrum_v2
                    backend fulcrum_v1
                        mode tcp
                        server fulcrum 127.0.0.1:\(harness.port) send-proxy
                    backend fulcrum_v2
                        mode http
                        server fulcrum 127.0.0.1:\(harness.port) send-proxy-v2
                    """,
                arguments: { ["-db", "-f", $0] },
                ports: [tcpPort, httpPort]
            )
            defer { haproxy.stop() }
            for port in [tcpPort, httpPort] {
                let connection = try await HeldConnection.open(port: port, from: "127.0.0.2")
                try await connection.sendRequest("/echo", closing: true)
                try await waitUntil(timeout: .seconds(5)) { connection.closedByServer }
                #expect(connection.text.hasPrefix("HTTP/1.1 200"), "through port \(port)")
                // (HAProxy in HTTP mode writes header names in lower case.)
                #expect(connection.text.lowercased().contains("x-worker: w2"), "through port \(port)")
                #expect(connection.text.contains("\"x-forwarded-for\",\"127.0.0.2\""), "through port \(port)")
            }
        }
    }

    @Test(
        "nginx behind (proxy_protocol): v1 and v2 name the client; a client's connection is its own",
        .enabled(if: ExternalTool.find("nginx", alternatives: ["/usr/sbin/nginx"]) != nil, "nginx is not installed")
    )
    func nginxBehind() async throws {
        let (v1Port, v2Port) = (try deadPort(), try deadPort())
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let nginx = try await PeerProcess.startNginx(
            in: directory,
            http: """
                server {
                    listen 127.0.0.1:\(v1Port) proxy_protocol;
                    listen 127.0.0.1:\(v2Port) proxy_protocol;
                    location / { return 200 "$proxy_protocol_addr $proxy_protocol_port $connection\\n"; }
                }
                """,
            ports: [v1Port, v2Port]
        )
        defer { nginx.stop() }
        // Health checks pass through the same listeners: Fulcrum's probes begin with a LOCAL
        // (v2) or UNKNOWN (v1) header, which nginx takes; a server they failed would answer 503.
        let yaml = """
            global:
              workers: 1
              log: { level: warning, access: off }
            frontends:
              - name: test
                listen: ["127.0.0.1:8080"]
                acls:
                  v2: { path_prefix: /v2 }
                rules:
                  - { if: v2, use_backend: v2 }
                default_backend: v1
            backends:
              - name: v1
                health_check: { path: /health, interval: 200ms, rise: 1, fall: 1 }
                servers: [{ name: n1, address: "127.0.0.1:\(v1Port)", send_proxy: v1 }]
              - name: v2
                health_check: { path: /health, interval: 200ms, rise: 1, fall: 1 }
                servers: [{ name: n2, address: "127.0.0.1:\(v2Port)", send_proxy: v2 }]
            """
        try await withProxy(workers: [], yaml: { _ in yaml }) { harness in
            // Long enough for two probes each: a failing one would have marked its server down.
            try await Task.sleep(for: .milliseconds(700))
            for path in ["/v1", "/v2"] {
                let first = try await HeldConnection.open(port: harness.port, from: "127.0.0.2")
                try await first.sendRequest(path)
                try await waitUntil(timeout: .seconds(5)) { first.text.components(separatedBy: "HTTP/1.1 200").count == 2 }
                try await first.sendRequest(path, closing: true)
                try await waitUntil(timeout: .seconds(5)) { first.closedByServer }
                let second = try await HeldConnection.open(port: harness.port, from: "127.0.0.2")
                try await second.sendRequest(path, closing: true)
                try await waitUntil(timeout: .seconds(5)) { second.closedByServer }

                // Each answer: the address and port nginx read from the header, and nginx's
                // connection number.
                // (By scalars: "\r\n" is one Character, which "\n" does not split.)
                let answers = (first.text + second.text).unicodeScalars.split(separator: "\n")
                    .map { String(String.UnicodeScalarView($0)) }.filter { $0.hasPrefix("127.") }
                #expect(answers.count == 3, "\(path): \(first.text) \(second.text)")
                guard answers.count == 3 else { continue }
                let fields = answers.map { $0.split(separator: " ") }
                #expect(fields.allSatisfy { $0[0] == "127.0.0.2" }, "\(path): \(answers)")
                // One client connection's requests share a server connection, which names it;
                // another client's get their own.
                #expect(fields[0][1] == fields[1][1] && fields[0][2] == fields[1][2], "\(path): \(answers)")
                #expect(fields[2][1] != fields[0][1] && fields[2][2] != fields[0][2], "\(path): \(answers)")
            }
        }
    }
}
