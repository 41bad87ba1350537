import FulcrumConfig
import FulcrumProxy
import Testing

/// `max_connections`, globally and per frontend: above a cap, connections wait in the kernel's
/// backlog unanswered, and are served as soon as a connection closes or a reload raises the cap.
@Suite("Connection caps")
struct ConnectionCapTests {
    @Test("a frontend's cap holds new connections in the backlog until one closes")
    func frontendCap() async throws {
        try await withProxy(workers: [.init()], proxyThreads: 2, yaml: { simpleConfig($0, frontendExtra: "    max_connections: 2") }) { harness in
            let held = try await Self.served(2, port: harness.port)
            let waiting = try await HeldConnection.open(port: harness.port)
            try await waiting.sendRequest()
            #expect(try await !waiting.waitForResponse(timeout: .milliseconds(700)), "served above the cap: \(waiting.text)")

            await held[0].close()
            #expect(try await waiting.waitForResponse(timeout: .seconds(5)))
            let events = try await harness.proxy.traffic().listenerEvents
            #expect(events[ListenerEvent(frontend: "test", kind: .limitReached, reason: "frontend"), default: 0] >= 1)
            for connection in held + [waiting] { await connection.close() }
        }
    }

    @Test("the global cap covers every frontend")
    func globalCap() async throws {
        let otherPort = try deadPort()
        let yaml = { (ports: [Int]) in
            simpleConfig(ports)
                .replacingOccurrences(of: "  workers: 1", with: "  workers: 1\n  max_connections: 2")
                .replacingOccurrences(
                    of: "    default_backend: app",
                    with: "    default_backend: app\n  - name: other\n    listen: [\"127.0.0.1:\(otherPort)\"]\n    default_backend: app"
                )
        }
        try await withProxy(workers: [.init()], yaml: yaml) { harness in
            let onTest = try await Self.served(1, port: harness.port)
            let onOther = try await Self.served(1, port: otherPort)
            let waiting = try await HeldConnection.open(port: harness.port)
            try await waiting.sendRequest()
            #expect(try await !waiting.waitForResponse(timeout: .milliseconds(700)), "served above the cap: \(waiting.text)")

            // Room made on the other frontend is room for this one.
            await onOther[0].close()
            #expect(try await waiting.waitForResponse(timeout: .seconds(5)))
            let events = try await harness.proxy.traffic().listenerEvents
            #expect(events[ListenerEvent(frontend: "test", kind: .limitReached, reason: "global"), default: 0] >= 1)
            for connection in onTest + [waiting] { await connection.close() }
        }
    }

    @Test("a reload that raises the cap lets the waiting connections in")
    func reloadRaisesCap() async throws {
        try await withProxy(workers: [.init()], yaml: { simpleConfig($0, frontendExtra: "    max_connections: 1") }) { harness in
            let held = try await Self.served(1, port: harness.port)
            let waiting = try await HeldConnection.open(port: harness.port)
            try await waiting.sendRequest()
            #expect(try await !waiting.waitForResponse(timeout: .milliseconds(500)))

            var config = harness.proxy.config
            config.frontends[0].maxConnections = 2
            try await harness.proxy.reload(to: config)
            #expect(try await waiting.waitForResponse(timeout: .seconds(5)))
            for connection in held + [waiting] { await connection.close() }
        }
    }

    /// Opens `count` connections and has each answered once; they stay open (keep-alive).
    private static func served(_ count: Int, port: Int) async throws -> [HeldConnection] {
        var connections: [HeldConnection] = []
        for _ in 0..<count {
            let connection = try await HeldConnection.open(port: port)
            try await connection.sendRequest()
            #expect(try await connection.waitForResponse(timeout: .seconds(5)), "a connection under the cap was not served")
            connections.append(connection)
        }
        return connections
    }
}
