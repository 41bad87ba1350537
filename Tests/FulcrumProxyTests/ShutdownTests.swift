import AsyncHTTPClient
import FulcrumWorker
import NIOCore
import NIOHTTP1
import Testing

/// Graceful shutdown: stop accepting, let requests in flight finish, within the grace period.
@Suite("Shutdown", .serialized)
struct ShutdownTests {
    @Test("shutdown lets a request in flight finish, refuses new connections, and returns")
    func drainsInFlightRequests() async throws {
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: { simpleConfig($0) }) { harness in
            async let slow = RawClient.exchange(
                port: harness.port,
                chunks: ["GET /work?delay_ms=800 HTTP/1.1\r\nHost: a\r\n\r\n"],
                timeout: .seconds(5)
            )
            try await Task.sleep(for: .milliseconds(200))
            let clock = ContinuousClock()
            let start = clock.now
            async let drained: Void = harness.proxy.shutdown(gracePeriod: .seconds(5))
            try await Task.sleep(for: .milliseconds(100))
            // The listener is closed: a new connection is refused.
            await #expect(throws: (any Error).self) {
                _ = try await RawClient.exchange(port: harness.port, chunks: ["GET /health HTTP/1.1\r\nHost: a\r\n\r\n"])
            }
            let (raw, closed) = try await slow
            #expect(raw.hasPrefix("HTTP/1.1 200"))
            #expect(raw.lowercased().contains("connection: close"))
            #expect(closed)
            await drained
            #expect(clock.now - start < .seconds(3))
        }
    }

    @Test("shutdown gives up waiting after the grace period")
    func gracePeriodBounds() async throws {
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: {
            simpleConfig($0, backendTimeouts: "{ connect: 1s, response: 30s }")
        }) { harness in
            async let slow = RawClient.exchange(
                port: harness.port,
                chunks: ["GET /work?delay_ms=5000 HTTP/1.1\r\nHost: a\r\n\r\n"],
                timeout: .seconds(1)
            )
            try await Task.sleep(for: .milliseconds(200))
            let clock = ContinuousClock()
            let start = clock.now
            await harness.proxy.shutdown(gracePeriod: .milliseconds(500))
            let waited = clock.now - start
            #expect(waited >= .milliseconds(450) && waited < .seconds(2), "\(waited)")
            _ = try await slow
        }
    }
}
