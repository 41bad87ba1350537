import FulcrumConfig
import FulcrumProxy
import FulcrumWorker
import Testing

/// Parking (`park_after`): an idle HTTP/1.1 connection leaves its channel for the parking lot,
/// and comes back when its client sends again. It stays open for the client, counts against
/// `max_connections`, and keeps its `client_idle` deadline.
@Suite("Parking idle connections")
struct ParkingTests {
    private static func config(_ ports: [Int], timeouts: String, extra: String = "") -> String {
        simpleConfig(ports, frontendExtra: "    timeouts: { \(timeouts) }\(extra)")
    }

    @Test("an idle connection is parked, and its next requests are served on the same connection")
    func parkedConnectionServesAgain() async throws {
        try await withProxy(workers: [.init()], yaml: { Self.config($0, timeouts: "client_idle: 30s, park_after: 150ms") }) { harness in
            let connection = try await HeldConnection.open(port: harness.port)
            for round in 1...3 {
                try await connection.sendRequest()
                try await waitUntil(timeout: .seconds(15)) { connection.text.components(separatedBy: "HTTP/1.1 200").count - 1 == round }
                // Parked once idle for park_after: still open, counted, not a channel.
                try await waitUntil(timeout: .seconds(15)) { try await harness.proxy.traffic().parkedConnections["test"] == 1 }
                let traffic = try await harness.proxy.traffic()
                #expect(traffic.activeConnections["test"] == 1)
                #expect(!connection.closedByServer)
            }
            await connection.close()
            // The lot sees the client leave and closes its end.
            try await waitUntil(timeout: .seconds(15)) { try await harness.proxy.traffic().activeConnections["test", default: 0] == 0 }
        }
    }

    @Test("a parked connection is still closed at client_idle")
    func parkedConnectionExpires() async throws {
        // client_idle is long enough that a loaded machine (CI runs every suite at once) still
        // sends the request, and sees the connection parked, well before it expires.
        try await withProxy(workers: [.init()], yaml: { Self.config($0, timeouts: "client_idle: 4s, park_after: 100ms") }) { harness in
            let connection = try await HeldConnection.open(port: harness.port)
            let start = ContinuousClock.now
            try await connection.sendRequest()
            try await waitUntil(timeout: .seconds(10)) { try await harness.proxy.traffic().parkedConnections["test"] == 1 }
            try await waitUntil(timeout: .seconds(10)) { connection.closedByServer }
            let elapsed = ContinuousClock.now - start
            #expect(elapsed >= .milliseconds(3_900), "closed after \(elapsed)")
            #expect(connection.text.hasPrefix("HTTP/1.1 200"))
            #expect(try await harness.proxy.traffic().parkedConnections["test", default: 0] == 0)
        }
    }

    @Test("a parked connection counts against max_connections until its client leaves")
    func parkedConnectionHoldsItsSlot() async throws {
        let yaml = { (ports: [Int]) in Self.config(ports, timeouts: "client_idle: 30s, park_after: 100ms", extra: "\n    max_connections: 1") }
        try await withProxy(workers: [.init()], yaml: yaml) { harness in
            let parked = try await HeldConnection.open(port: harness.port)
            try await parked.sendRequest()
            try await waitUntil(timeout: .seconds(15)) { try await harness.proxy.traffic().parkedConnections["test"] == 1 }

            let waiting = try await HeldConnection.open(port: harness.port)
            try await waiting.sendRequest()
            #expect(try await !waiting.waitForResponse(timeout: .milliseconds(500)), "served above the cap: \(waiting.text)")
            await parked.close()
            #expect(try await waiting.waitForResponse(timeout: .seconds(5)))
            await waiting.close()
        }
    }

    @Test("park_after: 0s never parks")
    func parkingOff() async throws {
        try await withProxy(workers: [.init()], yaml: { Self.config($0, timeouts: "client_idle: 30s, park_after: 0s") }) { harness in
            let connection = try await HeldConnection.open(port: harness.port)
            try await connection.sendRequest()
            #expect(try await connection.waitForResponse(timeout: .seconds(5)))
            try await Task.sleep(for: .milliseconds(1_300))
            let traffic = try await harness.proxy.traffic()
            #expect(traffic.parkedConnections["test", default: 0] == 0)
            #expect(traffic.activeConnections["test"] == 1)
            await connection.close()
        }
    }

    @Test("a reload that removes the listener closes its parked connections")
    func retiredListenerClosesParked() async throws {
        try await withProxy(workers: [.init()], yaml: { Self.config($0, timeouts: "client_idle: 30s, park_after: 100ms") }) { harness in
            let connection = try await HeldConnection.open(port: harness.port)
            try await connection.sendRequest()
            try await waitUntil(timeout: .seconds(15)) { try await harness.proxy.traffic().parkedConnections["test"] == 1 }

            var config = harness.proxy.config
            config.frontends[0].listen = [ListenAddress(host: "127.0.0.1", port: try deadPort())]
            try await harness.proxy.reload(to: config)
            try await waitUntil(timeout: .seconds(15)) { connection.closedByServer }
            #expect(try await harness.proxy.traffic().parkedConnections["test", default: 0] == 0)
        }
    }

    @Test("a shutdown closes parked connections at once, and waits for one that came back with a request")
    func shutdownClosesParked() async throws {
        // `/work` takes 2 s: the window in which the resumed connection is out of the lot,
        // which the test must see even on a loaded machine. `/health` answers at once.
        let slow = WorkerBehaviour(delayMilliseconds: 2000)
        try await withProxy(workers: [slow], yaml: { Self.config($0, timeouts: "client_idle: 30s, park_after: 100ms") }) { harness in
            let parked = try await HeldConnection.open(port: harness.port)
            let resumed = try await HeldConnection.open(port: harness.port)
            for connection in [parked, resumed] { try await connection.sendRequest("/health") }
            try await waitUntil(timeout: .seconds(15)) { try await harness.proxy.traffic().parkedConnections["test"] == 2 }
            // Back from the lot, with a request in flight when the shutdown begins.
            try await resumed.sendRequest()
            try await waitUntil(timeout: .seconds(15)) { try await harness.proxy.traffic().parkedConnections["test"] == 1 }

            let start = ContinuousClock.now
            await harness.proxy.shutdown(gracePeriod: .seconds(10))
            let elapsed = ContinuousClock.now - start
            #expect(elapsed < .seconds(5), "the drain waited \(elapsed)")
            try await waitUntil(timeout: .seconds(2)) { parked.closedByServer && resumed.closedByServer }
            // The request in flight was answered before its connection closed.
            #expect(resumed.text.components(separatedBy: "HTTP/1.1 200").count - 1 == 2, "\(resumed.text)")
        }
    }
}
