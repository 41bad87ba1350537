import Foundation
import FulcrumAdmin
import FulcrumConfig
import FulcrumProxy
import FulcrumWorker
import NIOCore
import NIOHTTP1
import Testing

/// `GET /metrics` on the admin listener: Prometheus text that parses, with counts that match
/// the requests sent through a real proxy.
@Suite("Prometheus metrics", .serialized)
struct MetricsTests {
    /// One sample line: `name{labels} value`.
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    /// Parses the text exposition format (0.0.4): every line is a comment (`# HELP`, `# TYPE`)
    /// or a sample; anything else fails the test.
    static func parse(_ text: String) -> [Sample] {
        var samples: [Sample] = []
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") { continue }
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                Issue.record("not a sample line: \(line)")
                continue
            }
            let series = line[..<space]
            var name = String(series)
            var labels: [String: String] = [:]
            if let open = series.firstIndex(of: "{"), series.hasSuffix("}") {
                name = String(series[..<open])
                let body = series[series.index(after: open)..<series.index(before: series.endIndex)]
                // Values in this test have no escaped quotes or commas.
                for pair in body.split(separator: ",") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2, parts[1].hasPrefix("\""), parts[1].hasSuffix("\"") else {
                        Issue.record("bad label in: \(line)")
                        continue
                    }
                    labels[String(parts[0])] = String(parts[1].dropFirst().dropLast())
                }
            }
            #expect(name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }, "\(line)")
            samples.append(Sample(name: name, labels: labels, value: value))
        }
        return samples
    }

    @Test("requests, durations, bytes, connections, server gauges, health checks, switches and reloads")
    func counts() async throws {
        let yaml = { (ports: [Int]) in
            simpleConfig(Array(ports.prefix(2)), algorithm: "adaptive")
                + "\n    health_check: { path: /health, interval: 100ms, timeout: 500ms }"
        }
        try await withAdminAPI(yaml: yaml) { harness, admin in
            for _ in 0..<10 { #expect(try await harness.send("/work").status == .ok) }
            for _ in 0..<3 { _ = try await harness.send("/missing") }  // the worker's 404
            _ = try await harness.send(.POST, "/echo", body: .bytes(ByteBuffer(string: String(repeating: "x", count: 1000))))
            #expect(harness.proxy.selectAlgorithm(.leastConnections, forBackend: "app", pin: false))
            try await Task.sleep(for: .milliseconds(350))  // a few health checks

            let response = try await admin.call(.GET, "/metrics", token: nil)
            #expect(response.status == .ok)
            #expect(response.headers["content-type"].first?.hasPrefix("text/plain; version=0.0.4") == true)
            let samples = Self.parse(String(buffer: response.body))
            func sum(_ name: String, _ match: [String: String] = [:]) -> Double {
                samples.filter { sample in
                    sample.name == name && match.allSatisfy { sample.labels[$0.key] == $0.value }
                }.reduce(0) { $0 + $1.value }
            }
            let app = ["frontend": "test", "backend": "app"]
            #expect(sum("fulcrum_requests_total", app.merging(["code": "2xx"]) { $1 }) == 11)
            #expect(sum("fulcrum_requests_total", app.merging(["code": "4xx"]) { $1 }) == 3)
            #expect(sum("fulcrum_requests_total", ["server": "w1"]) + sum("fulcrum_requests_total", ["server": "w2"]) == 14)
            #expect(sum("fulcrum_request_duration_seconds_count", app) == 14)
            #expect(sum("fulcrum_request_duration_seconds_bucket", app.merging(["le": "+Inf"]) { $1 }) == 14)
            #expect(sum("fulcrum_request_duration_seconds_sum", app) > 0)
            #expect(sum("fulcrum_received_bytes_total", app) == 1000)
            #expect(sum("fulcrum_sent_bytes_total", app) >= 1000)
            #expect(sum("fulcrum_active_connections", ["frontend": "test"]) >= 1)
            #expect(sum("fulcrum_server_up", ["backend": "app"]) == 2)
            #expect(sum("fulcrum_server_in_flight", ["backend": "app"]) == 0)
            #expect(sum("fulcrum_server_effective_weight", ["backend": "app"]) == 2)
            #expect(sum("fulcrum_health_check_total", ["backend": "app", "result": "pass"]) >= 2)
            #expect(sum("fulcrum_health_check_total", ["result": "fail"]) == 0)
            #expect(sum("fulcrum_algorithm_switches_total", ["backend": "app", "from": "peak_ewma", "to": "least_connections"]) == 1)

            // Counters only grow, and follow later traffic; a reload is counted by result.
            for _ in 0..<5 { _ = try await harness.send("/work") }
            let config = try await admin.call(.GET, "/api/config", token: nil)
            #expect(try await admin.call(.PUT, "/api/config", body: String(buffer: config.body)).status == .ok)
            #expect(try await admin.call(.PUT, "/api/config", body: "not: [valid").status == .unprocessableEntity)
            let later = Self.parse(String(buffer: try await admin.call(.GET, "/metrics", token: nil).body))
            let requests = later.filter { $0.name == "fulcrum_requests_total" && $0.labels["code"] == "2xx" }.reduce(0) { $0 + $1.value }
            #expect(requests == 16)
            #expect(later.first { $0.name == "fulcrum_config_reloads_total" && $0.labels["result"] == "success" }?.value == 1)
            #expect(later.first { $0.name == "fulcrum_config_reloads_total" && $0.labels["result"] == "failure" }?.value == 1)
        }
    }

    @Test("two frontends sharing a backend's servers are counted apart")
    func countsPerFrontendAndServer() async throws {
        // Each server's counters are cached for the frontend that used it last: requests in
        // pairs, round robin over two servers, make both frontends use both servers in turn.
        let secondPort = try deadPort()
        try await withProxy(
            workers: [WorkerBehaviour(delayMilliseconds: 0), WorkerBehaviour(delayMilliseconds: 0)],
            yaml: { ports in
                """
                global:
                  workers: 1
                  log: { level: warning, access: off }
                frontends:
                  - { name: first, listen: ["127.0.0.1:8080"], default_backend: app }
                  - { name: second, listen: ["127.0.0.1:\(secondPort)"], default_backend: app }
                backends:
                  - name: app
                    algorithm: round_robin
                    servers:
                      - { name: w1, address: "127.0.0.1:\(ports[0])" }
                      - { name: w2, address: "127.0.0.1:\(ports[1])" }
                """
            }
        ) { harness in
            for index in 0..<12 {
                let port = index / 2 % 2 == 0 ? harness.port : secondPort
                let response = try await harness.client.send(.GET, url: "http://127.0.0.1:\(port)/work")
                #expect(response.status == .ok)
            }
            let series = try await harness.proxy.traffic().series
            for frontend in ["first", "second"] {
                for server in ["w1", "w2"] {
                    let counted = series.first { $0.frontend == frontend && $0.backend == "app" && $0.server == server }
                    #expect(counted?.requests == 3, "\(frontend) → \(server)")
                }
            }
        }
    }
}
