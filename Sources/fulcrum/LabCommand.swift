import ArgumentParser
import Foundation
import FulcrumConfig
import FulcrumLab

/// `fulcrum lab`: every algorithm under slow, flaky and changing servers, measured.
struct LabCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab",
        abstract: "Measure every balancing algorithm under slow, flaky and changing servers.",
        discussion: """
            For each scenario and each algorithm (adaptive included), starts fresh in-process \
            workers in the scenario's condition and a Fulcrum in front of them, drives an \
            open-loop load (requests start at a fixed rate; latency counts from when each was \
            due), and prints p50/p95/p99 latency, the error rate and the requests each server \
            answered. Scenarios: \(LabScenario.all.map(\.name).joined(separator: ", ")).
            """
    )

    @Option(help: "A scenario name, or all.")
    var scenario = "all"

    @Option(help: "How long each algorithm runs per scenario, e.g. 20s.")
    var duration = "20s"

    @Option(help: "Requests per second.")
    var rate = 200

    @Option(help: "Comma-separated algorithms to run (default: all).")
    var algorithms: String?

    @Option(help: "Runs per scenario and algorithm, interleaved; the table shows the median percentiles.")
    var `repeat` = 1

    @Option(help: "Also write results.json and chart.svg into this directory.")
    var out: String?

    func validate() throws {
        guard scenario == "all" || LabScenario.all.contains(where: { $0.name == scenario }) else {
            throw ValidationError("unknown scenario \"\(scenario)\"; use all or one of \(LabScenario.all.map(\.name).joined(separator: ", "))")
        }
        guard parseDuration(duration) != nil else { throw ValidationError("\"\(duration)\" is not a duration (e.g. 20s)") }
        guard (1...5000).contains(rate) else { throw ValidationError("--rate must be between 1 and 5000") }
        guard (1...20).contains(`repeat`) else { throw ValidationError("--repeat must be between 1 and 20") }
        _ = try selectedAlgorithms()
    }

    private func selectedAlgorithms() throws -> [AlgorithmName] {
        guard let algorithms else { return AlgorithmName.allCases }
        return try algorithms.split(separator: ",").map { name in
            guard let algorithm = AlgorithmName(rawValue: String(name)) else {
                throw ValidationError("unknown algorithm \"\(name)\"")
            }
            return algorithm
        }
    }

    func run() async throws {
        let scenarios = scenario == "all" ? LabScenario.all : LabScenario.all.filter { $0.name == scenario }
        let load = AlgorithmLab.Load(rate: rate, duration: parseDuration(duration)!)
        let algorithms = try selectedAlgorithms()
        let runs = `repeat` == 1 ? "" : ", \(`repeat`) interleaved runs each (median percentiles)"
        print("Fulcrum algorithm lab: \(rate) req/s for \(duration) per algorithm\(runs), open loop; adaptive evaluates with \(AlgorithmLab.adaptiveSettings)\n")
        var all: [LabResult] = []
        for scenario in scenarios {
            // Round after round through every algorithm, so a slow spell of the machine does
            // not fall on one algorithm's runs only.
            var runsByAlgorithm = Array(repeating: [LabResult](), count: algorithms.count)
            for _ in 0..<`repeat` {
                for (index, algorithm) in algorithms.enumerated() {
                    runsByAlgorithm[index].append(try await AlgorithmLab.run(scenario: scenario, algorithm: algorithm, load: load))
                }
            }
            let results = runsByAlgorithm.map(LabResult.combining)
            all += results
            print(LabReport.table(for: scenario, results: results))
            if let verdict = LabReport.verdict(for: scenario, results: results) { print("  → \(verdict)") }
            print("")
        }
        if let out {
            let directory = URL(fileURLWithPath: out)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try LabReport.json(all).write(to: directory.appendingPathComponent("results.json"))
            try LabReport.svg(scenarios: scenarios, results: all).write(
                to: directory.appendingPathComponent("chart.svg"), atomically: true, encoding: .utf8
            )
            print("Wrote \(directory.appendingPathComponent("results.json").path) and \(directory.appendingPathComponent("chart.svg").path)")
        }
    }
}
