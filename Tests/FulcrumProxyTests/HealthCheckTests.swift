import FulcrumWorker
import NIOCore
import Testing

/// Active health checks against real workers whose health is switched at run time.
@Suite("Health checks", .serialized)
struct HealthCheckTests {
    private static let healthy = WorkerBehaviour(delayMilliseconds: 0)
    private static let unhealthy = WorkerBehaviour(delayMilliseconds: 0, healthy: false)
    private static let check = "    health_check: { path: /health, interval: 100ms, timeout: 300ms, rise: 2, fall: 2 }"

    private static func config(_ ports: [Int], retries: Int = 2) -> String {
        simpleConfig(ports, retries: retries).replacingOccurrences(of: "    retries:", with: "\(check)\n    retries:")
    }

    @Test("a worker made unhealthy with POST /control leaves rotation within interval × fall, and returns")
    func unhealthyServerLeavesAndReturns() async throws {
        try await withProxy(workers: [Self.healthy, Self.healthy], yaml: { Self.config($0) }) { harness in
            #expect(Set(try await harness.workersServing(requests: 10)) == ["w1", "w2"])

            try await harness.control(worker: 1, #"{"delay_ms": 0, "healthy": false}"#)
            let clock = ContinuousClock()
            let start = clock.now
            try await waitUntil(timeout: .seconds(15)) {
                Set(try await harness.workersServing(requests: 6)) == ["w1"]
            }
            // Nominally within 3 intervals (the probe under way, then 2 failures ≈ 330 ms). The
            // bound leaves room for a CI machine busy with the other suites (1.56 s was seen),
            // and still fails if `interval` were ignored: the default 2 s × fall 2 is ≥ 4 s.
            #expect(clock.now - start < .seconds(3))
            // And it stays out.
            #expect(Set(try await harness.workersServing(requests: 20)) == ["w1"])

            try await harness.control(worker: 1, #"{"delay_ms": 0, "healthy": true}"#)
            try await waitUntil(timeout: .seconds(15)) {
                Set(try await harness.workersServing(requests: 6)) == ["w1", "w2"]
            }
        }
    }

    @Test("a server that refuses connections is taken out; with every server down the client gets 503")
    func refusedAndAllDown() async throws {
        // No retries: until the check takes w2 out, its turns are 503s.
        try await withProxy(workers: [Self.healthy, Self.healthy], yaml: { Self.config($0, retries: 0) }) { harness in
            try await harness.workers[1].shutdown()
            // Kept refusing: another test's server could otherwise take the port and answer.
            holdRefusing(harness.workers[1].port)
            try await waitUntil(timeout: .seconds(15)) {
                Set(try await harness.workersServing(requests: 6)) == ["w1"]
            }
            harness.workers[0].update(Self.unhealthy)
            try await waitUntil(timeout: .seconds(15)) {
                try await harness.send("/work").status == .serviceUnavailable
            }
            let response = try await harness.send("/work", headers: [("Accept", "application/json")])
            #expect(response.status == .serviceUnavailable)
            #expect(try response.json["detail"] as? String == "No server is available to handle this request.")
        }
    }
}
