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

    @Option(help: "Scenario names, comma-separated, or all.")
    var scenario = "all"

    @Flag(help: "Run at the production settings in real time (evaluate every 5s, switch at most every 60s), 180s per run.")
    var realtime = false

    @Option(help: "How long each algorithm runs per scenario, e.g. 20s (default 20s, or 180s with --realtime).")
    var duration: String?

    @Flag(
        inversion: .prefixedNo,
        help:
            "Run a scenario's algorithms at the same time, each in its own process with its own workers, proxy and client (the same machine conditions for all)."
    )
    var parallel = true

    @Option(help: "Requests per second.")
    var rate = 200

    @Option(
        name: .customLong("protocol"),
        help: "How the proxy reaches the servers: http1, h2c (HTTP/2 by prior knowledge) or tcp (mode: tcp, a connection per request)."
    )
    var upstream = "http1"

    @Option(help: "Comma-separated algorithms to run (default: all).")
    var algorithms: String?

    @Option(help: "Runs per scenario and algorithm, interleaved; the table shows the median percentiles.")
    var `repeat` = 1

    @Option(help: "Also write results.json, runs.json, summary.md, chart.svg and the timelines into this directory.")
    var out: String?

    @Option(help: "Run nothing: write --out's reports from the output directories of earlier runs (comma-separated), merged.")
    var reportFrom: String?

    /// One run of one scenario and algorithm, its result written as JSON to this file: how
    /// `--parallel` runs each algorithm in a process of its own.
    @Option(help: .hidden)
    var runOne: String?

    func validate() throws {
        if scenario != "all", let unknown = scenario.split(separator: ",").first(where: { name in !LabScenario.all.contains { $0.name == name } }) {
            throw ValidationError("unknown scenario \"\(unknown)\"; use all or some of \(LabScenario.all.map(\.name).joined(separator: ", "))")
        }
        if let duration, parseDuration(duration) == nil { throw ValidationError("\"\(duration)\" is not a duration (e.g. 20s)") }
        guard (1...5000).contains(rate) else { throw ValidationError("--rate must be between 1 and 5000") }
        guard (1...20).contains(`repeat`) else { throw ValidationError("--repeat must be between 1 and 20") }
        _ = try selectedUpstream()
        _ = try selectedAlgorithms()
    }

    private func selectedUpstream() throws -> AlgorithmLab.Upstream {
        guard let upstream = AlgorithmLab.Upstream(rawValue: upstream) else {
            let valid = AlgorithmLab.Upstream.allCases.map(\.rawValue).joined(separator: ", ")
            throw ValidationError("unknown protocol \"\(self.upstream)\"; use one of \(valid)")
        }
        return upstream
    }

    /// The algorithms asked for (by default, all that the protocol supports but `hash`).
    private func selectedAlgorithms() throws -> [AlgorithmName] {
        let upstream = try selectedUpstream()
        // `hash` places requests by key for affinity; the lab's one client is one key (its
        // address), so it runs only when named.
        guard let algorithms else { return AlgorithmName.allCases.filter { upstream.supports($0) && $0 != .hash } }
        return try algorithms.split(separator: ",").map { name in
            guard let algorithm = AlgorithmName(rawValue: String(name)) else {
                throw ValidationError("unknown algorithm \"\(name)\"")
            }
            guard upstream.supports(algorithm) else {
                throw ValidationError("\(name) needs response times, which --protocol tcp does not have")
            }
            return algorithm
        }
    }

    func run() async throws {
        if let reportFrom {
            guard let out else { throw ValidationError("--report-from needs --out") }
            try merge(directories: reportFrom.split(separator: ",").map { URL(fileURLWithPath: String($0)) }, into: URL(fileURLWithPath: out))
            return
        }
        let names = Set(scenario.split(separator: ",").map(String.init))
        let scenarios = scenario == "all" ? LabScenario.all : LabScenario.all.filter { names.contains($0.name) }
        let mode: AlgorithmLab.Mode = realtime ? .realtime : .compressed
        let length = duration.flatMap(parseDuration) ?? (realtime ? LabScenario.realtimeDuration : .seconds(20))
        let load = AlgorithmLab.Load(rate: rate, duration: length, mode: mode, upstream: try selectedUpstream())
        let algorithms = try selectedAlgorithms()
        if let runOne, let scenario = scenarios.first, let algorithm = algorithms.first {
            let result = try await AlgorithmLab.run(scenario: scenario, algorithm: algorithm, load: load)
            try LabReport.json([result]).write(to: URL(fileURLWithPath: runOne))
            return
        }
        let runs = `repeat` == 1 ? "" : ", \(`repeat`) interleaved runs each (median percentiles)"
        print(
            "Fulcrum algorithm lab (\(mode.rawValue), servers over \(load.upstream.rawValue)): \(rate) req/s for \(length) per algorithm\(runs), open loop"
                + "\(parallel ? ", algorithms side by side" : "")"
                + (algorithms.contains(.adaptive) ? "; adaptive evaluates with \(mode.settingsDescription)" : "") + "\n"
        )
        var all: [LabResult] = []
        var raw: [LabResult] = []
        for scenario in scenarios {
            // Round after round through every algorithm, so a slow spell of the machine does
            // not fall on one algorithm's runs only; side by side, they share every spell.
            var runsByAlgorithm = Array(repeating: [LabResult](), count: algorithms.count)
            for _ in 0..<`repeat` {
                let round = try await runRound(scenario: scenario, algorithms: algorithms, load: load)
                for (index, result) in round.enumerated() { runsByAlgorithm[index].append(result) }
            }
            raw += runsByAlgorithm.flatMap { runs in
                runs.map { run in
                    var run = run
                    if run.algorithm != AlgorithmName.adaptive.rawValue { run.timeline = nil }
                    return run
                }
            }
            let results = runsByAlgorithm.map(LabResult.combining)
            all += results
            print(LabReport.table(for: scenario, results: results))
            if let verdict = LabReport.verdict(for: scenario, results: results) { print("  → \(verdict)") }
            print("")
            fflush(nil)  // a scenario takes minutes: show it when it ends, also into a file
        }
        if let out {
            try write(results: all, raw: raw, scenarios: scenarios, to: URL(fileURLWithPath: out))
        }
    }

    /// One run of every algorithm: side by side (`--parallel`) or one after another.
    private func runRound(scenario: LabScenario, algorithms: [AlgorithmName], load: AlgorithmLab.Load) async throws -> [LabResult] {
        guard parallel else {
            var results: [LabResult] = []
            for algorithm in algorithms { results.append(try await AlgorithmLab.run(scenario: scenario, algorithm: algorithm, load: load)) }
            return results
        }
        // A process per algorithm: in one process the runs share Swift's cooperative threads,
        // and rotation's runaway queue on a small server (thousands of requests timing out)
        // starved the other runs' clients until every algorithm looked slow.
        return try await withThrowingTaskGroup(of: (Int, LabResult).self) { group in
            for (index, algorithm) in algorithms.enumerated() {
                group.addTask { (index, try await Self.runInOwnProcess(scenario: scenario, algorithm: algorithm, load: load)) }
            }
            var results = [LabResult?](repeating: nil, count: algorithms.count)
            for try await (index, result) in group { results[index] = result }
            return results.map { $0! }
        }
    }

    /// Runs `fulcrum lab --run-one FILE` for one scenario and algorithm, and reads its result.
    private static func runInOwnProcess(scenario: LabScenario, algorithm: AlgorithmName, load: AlgorithmLab.Load) async throws -> LabResult {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-lab-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: output) }
        let milliseconds = load.duration.components.seconds * 1000 + load.duration.components.attoseconds / 1_000_000_000_000_000
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        process.arguments =
            [
                "lab", "--scenario", scenario.name, "--algorithms", algorithm.rawValue, "--rate", "\(load.rate)",
                "--duration", "\(milliseconds)ms", "--protocol", load.upstream.rawValue, "--run-one", output.path,
            ] + (load.mode == .realtime ? ["--realtime"] : [])
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch { continuation.resume(throwing: error) }
        }
        guard status == 0, let result = try JSONDecoder().decode([LabResult].self, from: Data(contentsOf: output)).first else {
            throw ValidationError("the \(algorithm.rawValue) run of \(scenario.name) failed (exit status \(status))")
        }
        return result
    }

    /// Writes the reports of several earlier runs' outputs as one (scenarios in the lab's order).
    private func merge(directories: [URL], into out: URL) throws {
        let decoder = JSONDecoder()
        var results: [LabResult] = []
        var raw: [LabResult] = []
        for directory in directories {
            results += try decoder.decode([LabResult].self, from: Data(contentsOf: directory.appendingPathComponent("results.json")))
            raw += try decoder.decode([LabResult].self, from: Data(contentsOf: directory.appendingPathComponent("runs.json")))
        }
        let scenarios = LabScenario.all.filter { scenario in results.contains { $0.scenario == scenario.name } }
        for scenario in scenarios {
            let rows = results.filter { $0.scenario == scenario.name }
            print(LabReport.table(for: scenario, results: rows))
            if let verdict = LabReport.verdict(for: scenario, results: rows) { print("  → \(verdict)") }
            print("")
        }
        try write(results: results, raw: raw, scenarios: scenarios, to: out)
    }

    /// results.json (medians), runs.json (every run; timelines of adaptive's), summary.md,
    /// chart.svg, and a timeline chart per scenario (adaptive's median run, against the best
    /// fixed algorithm's).
    private func write(results: [LabResult], raw: [LabResult], scenarios: [LabScenario], to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // Timelines only where a chart draws them (adaptive's, and the best fixed algorithm's
        // p99 beside it): eighty of them make a real-time results.json of megabytes.
        let charted = Set(
            scenarios.flatMap { scenario -> [String] in
                let rows = results.filter { $0.scenario == scenario.name }
                let best = rows.filter { $0.algorithm != AlgorithmName.adaptive.rawValue }.min { $0.p99Milliseconds < $1.p99Milliseconds }
                return ["\(scenario.name)/\(AlgorithmName.adaptive.rawValue)"] + (best.map { ["\(scenario.name)/\($0.algorithm)"] } ?? [])
            }
        )
        let kept = results.map { result in
            var result = result
            if !charted.contains("\(result.scenario)/\(result.algorithm)") { result.timeline = nil }
            return result
        }
        try LabReport.json(kept).write(to: directory.appendingPathComponent("results.json"))
        try LabReport.json(raw).write(to: directory.appendingPathComponent("runs.json"))
        try LabReport.summary(scenarios: scenarios, results: results).write(
            to: directory.appendingPathComponent("summary.md"),
            atomically: true,
            encoding: .utf8
        )
        try LabReport.svg(scenarios: scenarios, results: results).write(
            to: directory.appendingPathComponent("chart.svg"),
            atomically: true,
            encoding: .utf8
        )
        for scenario in scenarios {
            let rows = results.filter { $0.scenario == scenario.name }
            guard let adaptive = rows.first(where: { $0.algorithm == AlgorithmName.adaptive.rawValue }) else { continue }
            let best = rows.filter { $0.algorithm != AlgorithmName.adaptive.rawValue }.min { $0.p99Milliseconds < $1.p99Milliseconds }
            try LabTimelineChart.svg(scenario: scenario, result: adaptive, reference: best).write(
                to: directory.appendingPathComponent(LabReport.timelineFileName(scenario: scenario.name)),
                atomically: true,
                encoding: .utf8
            )
        }
        print("Wrote results.json, runs.json, summary.md, chart.svg and the timelines to \(directory.path)")
    }
}
