import FulcrumBalancing
import FulcrumConfig
import FulcrumWorker
import Testing

/// `slow_start` through a real proxy to real workers: a server back from maintenance, or
/// added by a reload, takes a small share at first and its whole share once ramped.
@Suite("Slow start through the proxy", .serialized)
struct SlowStartEndToEndTests {
    static func rampPercents(_ harness: ProxyHarness) async throws -> [String: Int] {
        let stats = try await harness.proxy.stats()
        return Dictionary(uniqueKeysWithValues: stats[0].servers.compactMap { server in server.rampPercent.map { (server.name, $0) } })
    }

    @Test("back from maintenance: a few of its turns while it ramps, all of them once the ramp ends; the admin API shows it")
    func backFromMaintenance() async throws {
        let workers = Array(repeating: WorkerBehaviour(delayMilliseconds: 0), count: 3)
        let yaml: ([Int]) -> String = { ports in
            simpleConfig(ports).replacingOccurrences(of: "algorithm: round_robin\n", with: "algorithm: round_robin\n    slow_start: 20s\n")
        }
        try await withProxy(workers: workers, yaml: yaml) { harness in
            // At start, no server is cold.
            #expect(try await Self.rampPercents(harness).isEmpty)
            #expect(harness.proxy.setServerState(.maintenance, backend: "app", server: "w3"))
            #expect(harness.proxy.setServerState(.ready, backend: "app", server: "w3"))
            let ramp = try await Self.rampPercents(harness)
            #expect(ramp["w3"].map { $0 < 30 } == true, "\(ramp)")

            let early = try await harness.workersServing(requests: 45)
            let earlyShare = early.filter { $0 == "w3" }.count
            #expect(earlyShare <= 6, "\(early)")  // a third would be 15

            // A slow start of 1 s from now on: the ramp, 1 s old or more, is over.
            var config = harness.proxy.config
            config.backends[0].slowStart = .seconds(1)
            try await harness.proxy.reload(to: config)
            try await waitUntil(timeout: .seconds(10)) { try await Self.rampPercents(harness).isEmpty }
            let later = try await harness.workersServing(requests: 30)
            #expect(later.filter { $0 == "w3" }.count == 10, "\(later)")
        }
    }

    @Test("a server a reload adds ramps; the servers it keeps do not, and a reload keeps a ramp under way")
    func addedByReload() async throws {
        let workers = Array(repeating: WorkerBehaviour(delayMilliseconds: 0), count: 3)
        let yaml: ([Int]) -> String = { ports in
            simpleConfig(Array(ports.prefix(2)), algorithm: "least_connections")
                .replacingOccurrences(of: "algorithm: least_connections\n", with: "algorithm: least_connections\n    slow_start: 30s\n")
        }
        try await withProxy(workers: workers, yaml: yaml) { harness in
            var config = harness.proxy.config
            config.backends[0].servers.append(
                ServerConfig(name: "w3", address: ServerAddress(host: "127.0.0.1", port: harness.workers[2].port))
            )
            try await harness.proxy.reload(to: config)
            #expect(try await Self.rampPercents(harness).keys.sorted() == ["w3"])
            config.backends[0].retries = 1
            try await harness.proxy.reload(to: config)
            #expect(try await Self.rampPercents(harness).keys.sorted() == ["w3"])
            // Without slow start any more, the ramp ends.
            config.backends[0].slowStart = nil
            try await harness.proxy.reload(to: config)
            #expect(try await Self.rampPercents(harness).isEmpty)
        }
    }
}
