import FulcrumConfig
import Testing

@testable import FulcrumLab

/// The lab, scaled down to seconds: real workers, a real proxy, the open-loop load.
@Suite("Algorithm lab", .serialized)
struct AlgorithmLabTests {
    private static let load = AlgorithmLab.Load(rate: 100, duration: .seconds(1))

    @Test("a run sends every request at the fixed rate and counts what each server answered")
    func runCountsEverything() async throws {
        let scenario = try #require(LabScenario.all.first { $0.name == "homogeneous" })
        let result = try await AlgorithmLab.run(scenario: scenario, algorithm: .roundRobin, load: Self.load)
        #expect(result.requests == 100)
        #expect(result.errors == 0)
        #expect(result.perServer.values.reduce(0, +) == 100)
        // Round robin over three alike servers: 34/33/33.
        #expect(result.perServer.values.allSatisfy { (33...34).contains($0) }, "\(result.perServer)")
        // 50 ms ± 5 ms of work; the p50 cannot be below it.
        #expect(result.p50Milliseconds >= 45)
        #expect(result.p99Milliseconds >= result.p50Milliseconds)
    }

    @Test("over h2c and over TCP (a connection per request), runs reach every server as over HTTP/1.1", arguments: [AlgorithmLab.Upstream.h2c, .tcp])
    func otherProtocols(_ upstream: AlgorithmLab.Upstream) async throws {
        let scenario = try #require(LabScenario.all.first { $0.name == "homogeneous" })
        var load = Self.load
        load.upstream = upstream
        let result = try await AlgorithmLab.run(scenario: scenario, algorithm: .roundRobin, load: load)
        #expect(result.requests == 100)
        #expect(result.errors == 0)
        #expect(result.perServer.values.allSatisfy { (33...34).contains($0) }, "\(result.perServer)")
        #expect(result.p50Milliseconds >= 45)
    }

    @Test("the configuration a run uses, per protocol; TCP takes only algorithms that need no response")
    func protocolConfigurations() throws {
        let scenario = try #require(LabScenario.all.first { $0.name == "homogeneous" })
        for upstream in AlgorithmLab.Upstream.allCases {
            for algorithm in AlgorithmName.allCases where upstream.supports(algorithm) {
                let yaml = AlgorithmLab.configuration(scenario: scenario, algorithm: algorithm, ports: [9001, 9002, 9003], upstream: upstream)
                let config = try ConfigLoader.load(yaml: yaml)
                #expect(config.backends[0].mode == (upstream == .tcp ? .tcp : .http))
                #expect(config.backends[0].servers.allSatisfy { $0.upstreamProtocol == (upstream == .h2c ? .h2c : .http1) })
            }
        }
        #expect(AlgorithmName.allCases.filter { AlgorithmLab.Upstream.tcp.supports($0) }.count == 6)
        #expect(!AlgorithmLab.Upstream.tcp.supports(.adaptive))
    }

    /// (Latency comparisons are the full lab's job: the suites run in parallel on two cores, and
    /// a one-second run's times move with whatever runs beside it; where requests go does not.)
    @Test("with one slow server, peak_ewma sends it a small fraction of round robin's share")
    func slowServerScenario() async throws {
        let scenario = try #require(LabScenario.all.first { $0.name == "slow" })
        let roundRobin = try await AlgorithmLab.run(scenario: scenario, algorithm: .roundRobin, load: Self.load)
        let peakEWMA = try await AlgorithmLab.run(scenario: scenario, algorithm: .peakEWMA, load: Self.load)
        #expect(roundRobin.p99Milliseconds >= 495)
        #expect(roundRobin.perServer["w3", default: 0] >= 33)
        // At most half of round robin's third (in a quiet run, about 5 of 100).
        #expect(peakEWMA.perServer["w3", default: 0] <= roundRobin.perServer["w3", default: 0] / 2, "\(peakEWMA.perServer)")
    }

    @Test("a flaky server's 500s are counted as errors")
    func flakyScenarioCountsErrors() async throws {
        let scenario = try #require(LabScenario.all.first { $0.name == "flaky" })
        let result = try await AlgorithmLab.run(scenario: scenario, algorithm: .roundRobin, load: Self.load)
        // w3 answers a third of the requests and fails 20 % of them: about 7 of 100.
        #expect((1...20).contains(result.errors), "\(result.errors) errors")
    }

    @Test("the report: a table row per algorithm, the verdict, JSON and an SVG chart")
    func report() throws {
        let scenario = try #require(LabScenario.all.first { $0.name == "slow" })
        let results = [
            LabResult(
                scenario: "slow",
                algorithm: "round_robin",
                requests: 100,
                errors: 0,
                p50Milliseconds: 11,
                p95Milliseconds: 101,
                p99Milliseconds: 103,
                perServer: ["w1": 34, "w2": 33, "w3": 33],
                switches: []
            ),
            LabResult(
                scenario: "slow",
                algorithm: "peak_ewma",
                requests: 100,
                errors: 0,
                p50Milliseconds: 11,
                p95Milliseconds: 13,
                p99Milliseconds: 14,
                perServer: ["w1": 50, "w2": 49, "w3": 1],
                switches: []
            ),
            LabResult(
                scenario: "slow",
                algorithm: "adaptive",
                requests: 100,
                errors: 1,
                p50Milliseconds: 11,
                p95Milliseconds: 13,
                p99Milliseconds: 15,
                perServer: ["w1": 50, "w2": 48, "w3": 2],
                switches: ["lab round_robin → peak_ewma: p95 spread 9× (w3 104 ms vs w1 12 ms) ≥ 3×"]
            ),
        ]
        let table = LabReport.table(for: scenario, results: results)
        #expect(table.contains("round_robin              11.0 ms    101 ms    103 ms    0.0 %   w1 34 · w2 33 · w3 33"), "\(table)")
        #expect(table.contains("adaptive: lab round_robin → peak_ewma"))
        #expect(
            LabReport.verdict(for: scenario, results: results)
                == "adaptive p99 1.07× the best fixed (peak_ewma) — within 15 %; 6.9× better than round_robin"
        )
        let json = String(decoding: try LabReport.json(results), as: UTF8.self)
        #expect(json.contains("\"p99Milliseconds\" : 103"))
        let svg = LabReport.svg(scenarios: [scenario], results: results)
        #expect(svg.hasPrefix("<svg"))
        #expect(svg.components(separatedBy: "<rect").count - 1 == 6)
    }

    @Test("several runs combine into sums of counts and medians of percentiles")
    func combiningRuns() {
        func run(_ p99: Double, errors: Int, switches: [String] = []) -> LabResult {
            LabResult(
                scenario: "slow",
                algorithm: "adaptive",
                requests: 100,
                errors: errors,
                p50Milliseconds: p99 / 2,
                p95Milliseconds: p99 - 1,
                p99Milliseconds: p99,
                perServer: ["w1": 60, "w2": 40],
                switches: switches
            )
        }
        let combined = LabResult.combining([run(30, errors: 1), run(12, errors: 0, switches: ["a → b"]), run(14, errors: 2)])
        #expect(combined.runs == 3 && combined.requests == 300 && combined.errors == 3)
        #expect(combined.p99Milliseconds == 14 && combined.p50Milliseconds == 7 && combined.p95Milliseconds == 13)
        #expect(combined.perServer == ["w1": 180, "w2": 120])
        #expect(combined.switches == ["run 2: a → b"])
        #expect(LabResult.combining([run(10, errors: 0), run(20, errors: 0)]).p99Milliseconds == 15)
    }
}
