import Foundation
import FulcrumConfig
import FulcrumWorker
import NIOCore
import NIOHTTP1
import Testing

/// `PUT /api/backends/{b}/algorithm` on backends that are not adaptive: the algorithm a
/// backend picks with is runtime state, like a drained server.
@Suite("A runtime algorithm for every backend", .serialized)
struct RuntimeAlgorithmTests {
    /// Two workers weighted 3:1: round robin ignores weights (4 and 4 of 8 requests),
    /// weighted round robin follows them (6 and 2).
    static func weighted(_ ports: [Int]) -> String {
        simpleConfig(Array(ports.prefix(2)), algorithm: "round_robin", weights: [3, 1])
    }

    static func shares(_ harness: ProxyHarness) async throws -> [String: Int] {
        try await harness.workersServing(requests: 8).reduce(into: [:]) { $0[$1, default: 0] += 1 }
    }

    @Test("a round_robin backend switches to weighted_round_robin and back (DELETE); the API and /metrics show it")
    func switchAndReset() async throws {
        try await withAdminAPI(yaml: Self.weighted) { harness, admin in
            #expect(try await Self.shares(harness) == ["w1": 4, "w2": 4])
            let switched = try await admin.call(.PUT, "/api/backends/app/algorithm", body: #"{"algorithm": "weighted_round_robin"}"#)
            #expect(switched.status == .ok)
            #expect(switched.json?["algorithm"] as? String == "round_robin")
            #expect(switched.json?["activeAlgorithm"] as? String == "weighted_round_robin")
            #expect(switched.json?["pinned"] as? Bool == true)
            #expect(try await Self.shares(harness) == ["w1": 6, "w2": 2])
            let metrics = String(buffer: try await admin.call(.GET, "/metrics").body)
            #expect(metrics.contains(#"fulcrum_backend_algorithm{backend="app",algorithm="weighted_round_robin",configured="round_robin"} 1"#))
            #expect(!metrics.contains(#"fulcrum_backend_algorithm{backend="app",algorithm="round_robin""#))

            let reset = try await admin.call(.DELETE, "/api/backends/app/algorithm")
            #expect(reset.status == .ok)
            #expect(reset.json?["activeAlgorithm"] as? String == "round_robin")
            #expect(reset.json?["pinned"] as? Bool == false)
            #expect(try await Self.shares(harness) == ["w1": 4, "w2": 4])
            // `{"pin": false}` does the same, as for an adaptive backend.
            _ = try await admin.call(.PUT, "/api/backends/app/algorithm", body: #"{"algorithm": "least_connections"}"#)
            let unpinned = try await admin.call(.PUT, "/api/backends/app/algorithm", body: #"{"pin": false}"#)
            #expect(unpinned.json?["activeAlgorithm"] as? String == "round_robin")
        }
    }

    @Test("switching under load drops and stalls no request in flight")
    func switchUnderLoad() async throws {
        try await withAdminAPI(yaml: Self.weighted) { harness, admin in
            let clock = ContinuousClock()
            let start = clock.now
            let statuses = try await withThrowingTaskGroup(of: UInt.self) { group in
                for _ in 0..<40 {
                    group.addTask { try await harness.send("/work?delay_ms=200").status.code }
                }
                for algorithm in ["least_connections", "random", "power_of_two", "peak_ewma", "weighted_round_robin"] {
                    let answer = try await admin.call(.PUT, "/api/backends/app/algorithm", body: #"{"algorithm": "\#(algorithm)"}"#)
                    #expect(answer.status == .ok)
                }
                return try await group.reduce(into: [UInt]()) { $0.append($1) }
            }
            #expect(statuses.count == 40 && statuses.allSatisfy { $0 == 200 }, "\(statuses)")
            // Eight client connections, 200 ms each: five rounds, and room for a busy machine.
            #expect(clock.now - start < .seconds(5), "took \(clock.now - start)")
        }
    }

    @Test("a reload keeps the choice; a new algorithm in the file ends it")
    func reloads() async throws {
        try await withAdminAPI(yaml: Self.weighted) { harness, admin in
            _ = try await admin.call(.PUT, "/api/backends/app/algorithm", body: #"{"algorithm": "weighted_round_robin"}"#)
            var config = harness.proxy.config
            config.backends[0].retries = 1
            try await harness.proxy.reload(to: config)
            #expect(try await admin.call(.GET, "/api/backends/app").json?["activeAlgorithm"] as? String == "weighted_round_robin")
            #expect(try await Self.shares(harness) == ["w1": 6, "w2": 2])

            config.backends[0].algorithm = .leastConnections
            try await harness.proxy.reload(to: config)
            let after = try await admin.call(.GET, "/api/backends/app")
            #expect(after.json?["activeAlgorithm"] as? String == "least_connections")
            #expect(after.json?["pinned"] as? Bool == false)
        }
    }

    @Test("?persist=true saves it to the file with config_writeback (and it is then the configured one); without, 409")
    func persist() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-algorithm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("fulcrum.yaml").path
        try await withAdminAPI(configFile: file, writeback: true, yaml: Self.weighted) { harness, admin in
            let saved = try await admin.call(.PUT, "/api/backends/app/algorithm?persist=true", body: #"{"algorithm": "weighted_round_robin"}"#)
            #expect(saved.status == .ok)
            #expect(saved.json?["algorithm"] as? String == "weighted_round_robin")
            #expect(saved.json?["pinned"] as? Bool == false)
            #expect(try ConfigLoader.load(contentsOfFile: file).backends[0].algorithm == .weightedRoundRobin)
            #expect(try await Self.shares(harness) == ["w1": 6, "w2": 2])
            let badFlag = try await admin.call(.PUT, "/api/backends/app/algorithm?persist=yes", body: #"{"algorithm": "random"}"#)
            #expect(badFlag.status == .badRequest)
            // Going back has nothing to save: persist changes nothing (schemathesis found the 422
            // this once was).
            _ = try await admin.call(.PUT, "/api/backends/app/algorithm", body: #"{"algorithm": "random"}"#)
            let back = try await admin.call(.PUT, "/api/backends/app/algorithm?persist=true", body: #"{"pin": false}"#)
            #expect(back.status == .ok)
            #expect(back.json?["activeAlgorithm"] as? String == "weighted_round_robin")
        }
        try await withAdminAPI(yaml: Self.weighted) { _, admin in
            let refused = try await admin.call(.PUT, "/api/backends/app/algorithm?persist=true", body: #"{"algorithm": "random"}"#)
            #expect(refused.status == .conflict)
            #expect(refused.json?["field"] as? String == "persist")
            #expect(try await admin.call(.GET, "/api/backends/app").json?["activeAlgorithm"] as? String == "round_robin")
        }
    }

    @Test("what cannot be chosen at run time: adaptive (422), and on a TCP backend an algorithm that needs response times (422)")
    func refusals() async throws {
        let tcpPort = try deadPort()
        let yaml: ([Int]) -> String = { ports in
            httpAndTCPConfig(appServers: [#"{ name: w1, address: "127.0.0.1:\#(ports[0])" }"#], tcpPort: tcpPort, rawPort: ports[1])
        }
        try await withAdminAPI(yaml: yaml) { _, admin in
            let latency = try await admin.call(.PUT, "/api/backends/raw/algorithm", body: #"{"algorithm": "peak_ewma"}"#)
            #expect(latency.status == .unprocessableEntity)
            #expect((latency.json?["detail"] as? String)?.contains("response times") == true)
            let connections = try await admin.call(.PUT, "/api/backends/raw/algorithm", body: #"{"algorithm": "least_connections"}"#)
            #expect(connections.json?["activeAlgorithm"] as? String == "least_connections")
            let missing = try await admin.call(.DELETE, "/api/backends/nope/algorithm")
            #expect(missing.status == .notFound)
        }
        try await withAdminAPI(yaml: Self.weighted) { _, admin in
            let adaptive = try await admin.call(.PUT, "/api/backends/app/algorithm", body: #"{"algorithm": "adaptive"}"#)
            #expect(adaptive.status == .unprocessableEntity)
            #expect(adaptive.json?["field"] as? String == "algorithm")
        }
    }
}
