import FulcrumBalancing
import FulcrumWorker
import NIOCore
import Testing

/// Passive outlier ejection, operator states (drain, maintenance), the retry budget and the
/// live per-server metrics, against real workers.
@Suite("Fault tolerance", .serialized)
struct FaultToleranceTests {
    private static let healthy = WorkerBehaviour(delayMilliseconds: 0)
    private static let failing = WorkerBehaviour(delayMilliseconds: 0, errorRate: 1)

    private static func config(_ ports: [Int], backend: String, retries: Int = 0) -> String {
        simpleConfig(ports, retries: retries).replacingOccurrences(of: "    retries:", with: "\(backend)\n    retries:")
    }

    private static func state(_ harness: ProxyHarness, _ server: String) async throws -> ServerState? {
        try await harness.proxy.stats().first?.servers.first { $0.name == server }?.state
    }

    @Test("a server failing live requests is ejected, returns when its ejection is over, and is ejected again if still failing")
    func passiveEjection() async throws {
        // An ejection of 2 s: six requests on a machine busy with every other suite may take
        // more than 1 s, and the test must see w2 out.
        let outlier = "    outlier: { consecutive_failures: 3, base_ejection: 2s, max_ejection: 10s }"
        try await withProxy(workers: [Self.healthy, Self.failing], yaml: { Self.config($0, backend: outlier) }) { harness in
            // Round robin alternates: w2's third 500 (the sixth request) ejects it.
            var statuses: [UInt] = []
            for _ in 0..<6 { statuses.append(try await harness.send("/work").status.code) }
            #expect(statuses == [200, 500, 200, 500, 200, 500])
            #expect(try await Self.state(harness, "w2") == .ejected)
            // While it is out, every request goes to w1.
            // (A request sent as the ejection ends may reach w2: only one answered while it is
            // still out afterwards would be wrong.)
            var whileEjected = 0
            while try await Self.state(harness, "w2") == .ejected {
                if try await harness.send("/work").worker != "w1" {
                    #expect(try await Self.state(harness, "w2") != .ejected, "w2 answered while ejected")
                }
                whileEjected += 1
            }
            #expect(whileEjected > 0)

            // Back after 2 s; still failing, so out again after (at most) three more failures.
            #expect(try await Self.state(harness, "w2") == .up)
            // The second ejection begins during the last request sent, so that request's start is
            // a lower bound for it: measuring from when the test saw it ejected would let a busy
            // machine's delay in noticing shorten the 4 s.
            let clock = ContinuousClock()
            var failures = 0
            var lastSent = clock.now
            // Until it is seen out. (A `where` clause here only skipped the requests while w2
            // was out: on a slow machine the loop outlived the ejection, and sent on.)
            for _ in 0..<12 {
                if try await Self.state(harness, "w2") == .ejected { break }
                lastSent = clock.now
                if try await harness.send("/work").status == .internalServerError { failures += 1 }
            }
            #expect(try await Self.state(harness, "w2") == .ejected)
            #expect((1...3).contains(failures), "\(failures) failures before the second ejection")

            // Healthy again: returns after the second ejection (4 s, twice the first) and serves.
            harness.workers[1].update(Self.healthy)
            try await waitUntil(timeout: .seconds(15)) { try await Self.state(harness, "w2") == .up }
            #expect(clock.now - lastSent >= .milliseconds(3900))
            #expect(Set(try await harness.workersServing(requests: 6)) == ["w1", "w2"])
        }
    }

    @Test("with health checks, an ejected server returns on a passing check once its ejection is over")
    func ejectionEndsOnAPassingCheck() async throws {
        // /work fails but /health passes: only passive detection takes w2 out. An ejection of
        // 2 s: with 200 ms, a loaded machine saw w2 back before the test looked (a CI run).
        let settings = """
                health_check: { path: /health, interval: 100ms, timeout: 300ms, rise: 1, fall: 2 }
                outlier: { consecutive_failures: 2, base_ejection: 2s }
            """
        try await withProxy(workers: [Self.healthy, Self.failing], yaml: { Self.config($0, backend: settings) }) { harness in
            _ = try await harness.workersServing(requests: 4)
            #expect(try await Self.state(harness, "w2") == .ejected)
            harness.workers[1].update(Self.healthy)
            try await waitUntil(timeout: .seconds(15)) { try await Self.state(harness, "w2") == .up }
            #expect(Set(try await harness.workersServing(requests: 6)) == ["w1", "w2"])
        }
    }

    @Test("the last server in rotation is never ejected, however it fails")
    func panicThreshold() async throws {
        let outlier = "    outlier: { consecutive_failures: 2, max_ejected_percent: 100 }"
        try await withProxy(workers: [Self.failing, Self.failing], yaml: { Self.config($0, backend: outlier) }) { harness in
            var statuses: [UInt] = []
            for _ in 0..<20 { statuses.append(try await harness.send("/work").status.code) }
            // The servers' own 500s reach the client; the proxy never runs out of servers (503).
            #expect(statuses.allSatisfy { $0 == 500 })
            let states = try await harness.proxy.stats()[0].servers.map(\.state)
            #expect(states.filter { $0 == .ejected }.count == 1)
            #expect(states.filter { $0 == .up }.count == 1)
        }
    }

    @Test("a draining server finishes its requests in flight and gets no new ones; ready brings it back")
    func drain() async throws {
        try await withProxy(workers: [Self.healthy, Self.healthy], yaml: { simpleConfig($0) }) { harness in
            #expect(Set(try await harness.workersServing(requests: 4)) == ["w1", "w2"])
            // Round robin's next pick is w1: a slow request to it is in flight while it drains.
            async let slow = harness.send("/work?delay_ms=400")
            try await waitUntil(timeout: .seconds(15)) { try await harness.proxy.stats()[0].servers[0].inFlight == 1 }
            #expect(harness.proxy.setServerState(.drain, backend: "app", server: "w1"))
            #expect(try await Self.state(harness, "w1") == .draining)
            #expect(Set(try await harness.workersServing(requests: 6)) == ["w2"])
            let finished = try await slow
            #expect(finished.status == .ok && finished.worker == "w1")

            #expect(harness.proxy.setServerState(.maintenance, backend: "app", server: "w1"))
            #expect(try await Self.state(harness, "w1") == .maintenance)
            #expect(Set(try await harness.workersServing(requests: 6)) == ["w2"])
            #expect(harness.proxy.setServerState(.ready, backend: "app", server: "w1"))
            #expect(Set(try await harness.workersServing(requests: 6)) == ["w1", "w2"])

            #expect(!harness.proxy.setServerState(.drain, backend: "app", server: "nope"))
            #expect(!harness.proxy.setServerState(.drain, backend: "nope", server: "w1"))
        }
    }

    @Test("retries of requests a server received stay within the retry budget")
    func retryBudget() async throws {
        // A server that reads each request and closes without answering: every request it
        // gets is retried on the worker if the budget allows, else answered 502.
        let closing = try await ScriptedServer(response: "", closeAfterResponse: true)
        defer { Task { try? await closing.close() } }
        for ratio in [0.2, 1.0] {
            let budget = "    retry_budget: { ratio: \(ratio), min_per_second: 0 }"
            let before = closing.requests.count
            let outcome = try await withProxy(
                workers: [Self.healthy],
                yaml: { ports in
                    Self.config([closing.port] + ports, backend: budget, retries: 1)
                }
            ) { harness in
                var statuses: [UInt] = []
                for _ in 0..<100 { statuses.append(try await harness.send("/work").status.code) }
                return statuses
            }
            let sentToClosing = closing.requests.count - before
            let badGateways = outcome.filter { $0 == 502 }.count
            let retried = sentToClosing - badGateways
            #expect(outcome.filter { $0 == 200 }.count + badGateways == 100)
            if ratio == 1.0 {
                #expect(badGateways == 0)
            } else {
                // At most 20 % of 100 requests, and the budget is used, not just refused.
                #expect((15...20).contains(retried), "retried \(retried) of \(sentToClosing)")
                #expect(badGateways >= 20)
            }
        }
    }

    @Test("live metrics per server: requests, errors, response-time percentiles and EWMA, connections")
    func liveMetrics() async throws {
        let fast = WorkerBehaviour(delayMilliseconds: 2)
        let slowAndFlaky = WorkerBehaviour(delayMilliseconds: 60, errorRate: 0.5)
        try await withProxy(workers: [fast, slowAndFlaky], proxyThreads: 2, yaml: { simpleConfig($0) }) { harness in
            for _ in 0..<40 { _ = try await harness.send("/work") }
            let backend = try await harness.proxy.stats()[0]
            #expect(backend.name == "app" && backend.algorithm == "round_robin")
            let (w1, w2) = (backend.servers[0], backend.servers[1])
            #expect(w1.metrics.totals.requests == 20 && w2.metrics.totals.requests == 20)
            #expect(w1.metrics.totals.errors == 0 && w1.metrics.errorRate == 0)
            #expect(w2.metrics.totals.responses5xx == w2.metrics.windowErrors)
            #expect((3...17).contains(w2.metrics.totals.responses5xx))
            #expect(w1.metrics.percentileMilliseconds(95)! < 50)
            #expect(w2.metrics.percentileMilliseconds(50)! >= 59)
            #expect(w2.metrics.ewmaMilliseconds! > w1.metrics.ewmaMilliseconds! + 40)
            #expect(w1.metrics.requestRate > 0)
            #expect(w1.connectionsOpen >= 1 && w1.inFlight == 0)
            #expect(w1.state == .up && w1.weight == 1 && w1.address.hasPrefix("127.0.0.1:"))
        }
    }
}
