import AsyncHTTPClient
import FulcrumWorker
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// Graceful shutdown: stop accepting, let requests in flight finish, within the grace period.
@Suite("Shutdown", .serialized)
struct ShutdownTests {
    @Test("shutdown lets a request in flight finish, refuses new connections, and returns")
    func drainsInFlightRequests() async throws {
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: { simpleConfig($0) }) { harness in
            // Long enough for the shutdown to reach the connection before the response does,
            // even when the machine is busy with other tests.
            async let slow = RawClient.exchange(
                port: harness.port,
                chunks: ["GET /work?delay_ms=3000 HTTP/1.1\r\nHost: a\r\n\r\n"],
                timeout: .seconds(8)
            )
            // Until the request has reached the worker (a fixed pause is not enough when the
            // machine is busy with the other suites).
            try await Self.waitForRequestInFlight(harness)
            let clock = ContinuousClock()
            let start = clock.now
            async let drained: Void = harness.proxy.shutdown(gracePeriod: .seconds(10))
            // The listener closes first: new connections are refused.
            var refused = false
            for _ in 0..<100 where !refused {
                refused = !(await Self.canConnect(port: harness.port))
                if !refused { try await Task.sleep(for: .milliseconds(10)) }
            }
            #expect(refused)
            let (raw, closed) = try await slow
            #expect(raw.hasPrefix("HTTP/1.1 200"))
            #expect(raw.lowercased().contains("connection: close"), "\(raw)")
            #expect(closed)
            await drained
            // When the request is done, not at the grace period's end (with room for a busy
            // machine).
            #expect(clock.now - start < .seconds(8))
        }
    }

    private static func waitForRequestInFlight(_ harness: ProxyHarness) async throws {
        try await waitUntil(timeout: .seconds(15)) {
            try await harness.proxy.requestsInFlight().values.flatMap(\.values).reduce(0, +) == 1
        }
    }

    /// Whether a TCP connection to `port` can be opened (it is closed again at once).
    private static func canConnect(port: Int) async -> Bool {
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port)
                .get()
            try? await channel.close()
            return true
        } catch {
            return false
        }
    }

    @Test("shutdown gives up waiting after the grace period")
    func gracePeriodBounds() async throws {
        try await withProxy(
            workers: [WorkerBehaviour(delayMilliseconds: 0)],
            yaml: {
                simpleConfig($0, backendTimeouts: "{ connect: 1s, response: 30s }")
            }
        ) { harness in
            async let slow = RawClient.exchange(
                port: harness.port,
                chunks: ["GET /work?delay_ms=5000 HTTP/1.1\r\nHost: a\r\n\r\n"],
                timeout: .seconds(1)
            )
            try await Self.waitForRequestInFlight(harness)
            let clock = ContinuousClock()
            let start = clock.now
            await harness.proxy.shutdown(gracePeriod: .milliseconds(500))
            let waited = clock.now - start
            // Far short of the request's 5 s (the rest is closing up, slow on a busy machine).
            #expect(waited >= .milliseconds(450) && waited < .seconds(4), "\(waited)")
            _ = try await slow
        }
    }

    @Test("a request whose head is arriving when the shutdown begins is answered, then the connection closes")
    func answersAHeadInProgress() async throws {
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: { simpleConfig($0) }) { harness in
            let connection = try await HeldConnection.open(port: harness.port)
            try await connection.send(raw: "GET /work HTTP/1.1\r\nHo")
            // For the proxy to read the first bytes (it has no sign to wait for): before them,
            // the connection is idle, and a shutdown closes it at once.
            try await Task.sleep(for: .seconds(1))
            let clock = ContinuousClock()
            let start = clock.now
            async let drained: Void = harness.proxy.shutdown(gracePeriod: .seconds(10))
            try await Task.sleep(for: .milliseconds(200))
            #expect(!connection.closedByServer)
            try await connection.send(raw: "st: a\r\n\r\n")
            try await waitUntil(timeout: .seconds(5)) { connection.closedByServer }
            #expect(connection.text.hasPrefix("HTTP/1.1 200"), "\(connection.text)")
            #expect(connection.text.lowercased().contains("connection: close"))
            await drained
            #expect(clock.now - start < .seconds(5))
        }
    }
}
