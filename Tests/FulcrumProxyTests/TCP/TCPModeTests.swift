import FulcrumProxy
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// `mode: tcp` through a real proxy: each connection is relayed as bytes to one server of the
/// backend, chosen by its algorithm, with the server speaking first, echoes, half-close both
/// ways, connect retries on other servers, and `src` rules.
@Suite("TCP mode")
struct TCPModeTests {
    static func config(servers: [Int], extra: String = "", backendExtra: String = "") -> String {
        let list = servers.enumerated().map { index, port in
            "      - { name: t\(index + 1), address: \"127.0.0.1:\(port)\" }"
        }.joined(separator: "\n")
        return """
            global:
              workers: 1
              log: { level: warning, access: off }
            frontends:
              - name: tcp
                mode: tcp
                listen: ["127.0.0.1:8080"]
            \(extra)
                default_backend: echo
            backends:
              - name: echo
                mode: tcp
                retries: 2
                timeouts: { connect: 1s }
            \(backendExtra)
                servers:
            \(list)
            """
    }

    /// Runs a proxy in front of `servers` (ports), with no HTTP workers.
    static func withTCPProxy(
        servers: [Int],
        extra: String = "",
        backendExtra: String = "",
        logs: LogCapture? = nil,
        _ body: (ProxyHarness) async throws -> Void
    ) async throws {
        try await withProxy(
            workers: [],
            logs: logs,
            yaml: { _ in config(servers: servers, extra: extra, backendExtra: backendExtra) },
            body
        )
    }

    /// Opens a connection through the proxy, sends `text`, half-closes, and returns all it got
    /// back once the server closed.
    static func exchange(port: Int, _ text: String, from source: String? = nil) async throws -> String {
        let connection = try await HeldConnection.open(port: port, from: source)
        try await connection.send(raw: text)
        try await waitUntil(timeout: .seconds(5)) { connection.text.contains(text) }
        try await connection.closeOutput()
        try await waitUntil(timeout: .seconds(5)) { connection.closedByServer }
        let received = connection.text
        await connection.close()
        return received
    }

    /// Four connections through the proxy on `port` all reach the `TCPTestServer` named `server`.
    static func expectEveryConnection(to server: String, port: Int) async throws {
        for index in 0..<4 {
            let received = try await exchange(port: port, "\(index)\n")
            #expect(received.hasPrefix("\(server)\n"), "connection \(index): \(received)")
        }
    }

    @Test("the server speaks first, bytes echo, and a half-close goes through both ways")
    func relay() async throws {
        let server = try await TCPTestServer.start(name: "t1")
        defer { Task { await server.stop() } }
        try await Self.withTCPProxy(servers: [server.port]) { harness in
            let payload = String(repeating: "0123456789abcdef", count: 8192)  // 128 KiB
            let received = try await Self.exchange(port: harness.port, payload)
            #expect(received == "t1\n" + payload + "bye from t1\n")
        }
    }

    @Test("connections are balanced over the servers by the backend's algorithm")
    func balancing() async throws {
        let first = try await TCPTestServer.start(name: "t1")
        let second = try await TCPTestServer.start(name: "t2")
        defer {
            Task {
                await first.stop()
                await second.stop()
            }
        }
        try await Self.withTCPProxy(servers: [first.port, second.port]) { harness in
            var greeted: [String] = []
            for index in 0..<4 {
                let received = try await Self.exchange(port: harness.port, "ping \(index)\n")
                greeted.append(String(received.prefix(2)))
            }
            #expect(greeted == ["t1", "t2", "t1", "t2"])
        }
    }

    @Test("a server that refuses is skipped for another while retries last; with none left, the client is closed")
    func connectRetries() async throws {
        let live = try await TCPTestServer.start(name: "live")
        defer { Task { await live.stop() } }
        // Round robin offers the dead server first every other time: each of those is retried.
        try await Self.withTCPProxy(servers: [try refusingPort(), live.port]) { harness in
            for index in 0..<3 {
                let received = try await Self.exchange(port: harness.port, "ping \(index)\n")
                #expect(received.hasPrefix("live\n"), "connection \(index): \(received)")
            }
        }

        let noneLogs = LogCapture()
        try await Self.withTCPProxy(servers: [try refusingPort(), try refusingPort()], logs: noneLogs) { harness in
            let connection = try await HeldConnection.open(port: harness.port)
            try await waitUntil(timeout: .seconds(5)) { connection.closedByServer }
            #expect(connection.text.isEmpty)
        }
        #expect(noneLogs.messages.contains { $0.contains("closed a TCP connection: no server of backend echo") })
    }

    @Test("a stopped server leaves rotation by its health check, a TCP connect")
    func healthCheck() async throws {
        let first = try await TCPTestServer.start(name: "t1")
        let second = try await TCPTestServer.start(name: "t2")
        defer { Task { await first.stop() } }
        // No retries: only the health check can keep connections off the stopped server.
        let check = "    health_check: { interval: 100ms, timeout: 300ms, rise: 1, fall: 2 }"
        let yaml = Self.config(servers: [first.port, second.port], backendExtra: check)
            .replacingOccurrences(of: "retries: 2", with: "retries: 0")
        try await withProxy(workers: [], yaml: { _ in yaml }) { harness in
            // Both pass their first probes: both take connections.
            try await Task.sleep(for: .milliseconds(400))
            var greeted = Set<String>()
            for index in 0..<4 {
                greeted.insert(String(try await Self.exchange(port: harness.port, "\(index)\n").prefix(2)))
            }
            #expect(greeted == ["t1", "t2"])
            await second.stop()
            try await Task.sleep(for: .milliseconds(600))
            try await Self.expectEveryConnection(to: "t1", port: harness.port)
        }
    }

    @Test("rules choose the backend by the client's address")
    func sourceRules() async throws {
        let general = try await TCPTestServer.start(name: "general")
        let office = try await TCPTestServer.start(name: "office")
        defer {
            Task {
                await general.stop()
                await office.stop()
            }
        }
        let rules = """
                acls:
                  office: { src: 127.0.0.2 }
                rules:
                  - { use_backend: office, if: office }
            """
        let officeBackend = """
              - name: office
                mode: tcp
                servers: [{ name: o1, address: "127.0.0.1:\(office.port)" }]
            """
        let yaml = Self.config(servers: [general.port], extra: rules) + "\n" + officeBackend
        try await withProxy(workers: [], yaml: { _ in yaml }) { harness in
            let fromFirstLoopback = try await Self.exchange(port: harness.port, "a\n")
            let fromSecondLoopback = try await Self.exchange(port: harness.port, "b\n", from: "127.0.0.2")
            #expect(fromFirstLoopback.hasPrefix("general\n"))
            #expect(fromSecondLoopback.hasPrefix("office\n"))
        }
    }

    @Test("with sni rules, a client that sends no ClientHello within header_read is closed")
    func clientHelloTimeout() async throws {
        let server = try await TCPTestServer.start(name: "t1")
        defer { Task { await server.stop() } }
        let logs = LogCapture()
        let rules = """
                timeouts: { header_read: 1s }
                acls:
                  db: { sni: db.test }
                rules:
                  - { use_backend: echo, if: db }
            """
        try await Self.withTCPProxy(servers: [server.port], extra: rules, logs: logs) { harness in
            let started = ContinuousClock.now
            let connection = try await HeldConnection.open(port: harness.port)
            try await waitUntil(timeout: .seconds(8)) { connection.closedByServer }
            #expect(ContinuousClock.now - started < .seconds(8))
            // Nothing reached the server: not even its greeting came back.
            #expect(connection.text.isEmpty)
        }
        #expect(logs.messages.contains { $0.contains("no TLS ClientHello within") })
    }

    @Test("with alpn rules, a client that ends its output in the middle of its ClientHello is closed at once")
    func clientHelloCutShort() async throws {
        let server = try await TCPTestServer.start(name: "t1")
        defer { Task { await server.stop() } }
        let logs = LogCapture()
        let rules = """
                timeouts: { header_read: 10s }
                acls:
                  mqtt: { alpn: mqtt }
                rules:
                  - { use_backend: echo, if: mqtt }
            """
        try await Self.withTCPProxy(servers: [server.port], extra: rules, logs: logs) { harness in
            let started = ContinuousClock.now
            let connection = try await HeldConnection.open(port: harness.port)
            // A handshake record's header, and no more.
            try await connection.send(bytes: ByteBuffer(bytes: [0x16, 0x03, 0x01, 0x02, 0x00]))
            try await connection.closeOutput()
            try await waitUntil(timeout: .seconds(8)) { connection.closedByServer }
            #expect(ContinuousClock.now - started < .seconds(8))
            #expect(connection.text.isEmpty)
        }
        #expect(logs.messages.contains { $0.contains("before its TLS ClientHello was complete") })
    }

    @Test("a health check's receive names the reply a server must give: one that greets otherwise is taken out")
    func healthCheckReply() async throws {
        let expected = try await TCPTestServer.start(name: "ready")
        let other = try await TCPTestServer.start(name: "starting")
        defer {
            Task {
                await expected.stop()
                await other.stop()
            }
        }
        // A probe of the other server fails only at its timeout; generous timeouts, and two
        // failures to go down, keep a loaded machine from taking the right one out too.
        let check = "    health_check: { interval: 100ms, timeout: 1s, rise: 1, fall: 2, receive: \"ready\" }"
        let yaml = Self.config(servers: [expected.port, other.port], backendExtra: check)
        try await withProxy(workers: [], yaml: { _ in yaml }) { harness in
            try await waitUntil(timeout: .seconds(15)) {
                try await harness.proxy.stats().first?.servers.map(\.state) == [.up, .down]
            }
            try await Self.expectEveryConnection(to: "ready", port: harness.port)
        }
    }

    @Test("a connection is a request of its server; its bytes each way reach the metrics and the access log")
    func trafficIsCounted() async throws {
        let server = try await TCPTestServer.start(name: "t1")
        defer { Task { await server.stop() } }
        let lines = NIOLockedValueBox("")
        let accessLog = AccessLogWriter { batch in lines.withLockedValue { $0 += String(buffer: batch) } }
        let yaml = Self.config(servers: [server.port]).replacingOccurrences(of: "access: off", with: "access: json")
        try await withProxy(workers: [], accessLog: accessLog, yaml: { _ in yaml }) { harness in
            for index in 0..<3 {
                _ = try await Self.exchange(port: harness.port, "hello \(index)\n")
            }
            // Each connection: "hello N\n" (8 bytes) in; "t1\n", the echo and "bye from t1\n" out.
            try await waitUntil(timeout: .seconds(5)) {
                try await harness.proxy.traffic().series.first { $0.backend == "echo" }?.tcpConnections == 3
            }
            let series = try #require(try await harness.proxy.traffic().series.first { $0.backend == "echo" })
            #expect(series.server == "t1" && series.frontend == "tcp")
            #expect(series.bytesIn == 3 * 8)
            #expect(series.bytesOut == 3 * (3 + 8 + 12))
            #expect(series.requests == 0)
            let backend = try #require(try await harness.proxy.stats().first)
            #expect(backend.mode == "tcp")
            #expect(backend.servers.first?.metrics.totals.requests == 3)
            #expect(backend.servers.first?.metrics.totals.errors == 0)
            try await waitUntil(timeout: .seconds(5)) { lines.withLockedValue { $0.components(separatedBy: "\n").count > 3 } }
            let first = try #require(lines.withLockedValue { $0 }.split(separator: "\n").first)
            #expect(first.contains("\"protocol\":\"tcp\""), "\(first)")
            #expect(first.contains("\"backend\":\"echo\",\"server\":\"t1\""), "\(first)")
            #expect(first.contains("\"bytes_in\":8,\"bytes_out\":23"), "\(first)")
        }
    }
}
