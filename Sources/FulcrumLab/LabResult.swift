/// What one algorithm achieved in one scenario.
public struct LabResult: Sendable, Codable {
    public var scenario: String
    public var algorithm: String
    public var requests: Int
    /// Responses that were not 2xx, and requests that got no response.
    public var errors: Int
    public var p50Milliseconds: Double
    public var p95Milliseconds: Double
    public var p99Milliseconds: Double
    /// Requests answered by each server (`X-Worker`), in server order.
    public var perServer: [String: Int]
    /// For `adaptive`: the algorithm switches the engine made, with their explanations.
    public var switches: [String]
    /// How many runs this result summarises (`--repeat`): counts are their sums, the
    /// percentiles the medians of the runs' percentiles.
    public var runs = 1

    public var errorRate: Double { requests == 0 ? 0 : Double(errors) / Double(requests) }

    /// One result for several runs of the same scenario and algorithm: sums of the counts,
    /// medians of the percentiles (a single noisy run moves a median least), the switches of
    /// every run.
    public static func combining(_ runs: [LabResult]) -> LabResult {
        precondition(!runs.isEmpty)
        guard runs.count > 1 else { return runs[0] }
        func median(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            let middle = sorted.count / 2
            return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        }
        var perServer: [String: Int] = [:]
        for run in runs {
            for (server, count) in run.perServer { perServer[server, default: 0] += count }
        }
        var combined = LabResult(
            scenario: runs[0].scenario,
            algorithm: runs[0].algorithm,
            requests: runs.reduce(0) { $0 + $1.requests },
            errors: runs.reduce(0) { $0 + $1.errors },
            p50Milliseconds: median(runs.map(\.p50Milliseconds)),
            p95Milliseconds: median(runs.map(\.p95Milliseconds)),
            p99Milliseconds: median(runs.map(\.p99Milliseconds)),
            perServer: perServer,
            switches: runs.enumerated().flatMap { index, run in run.switches.map { "run \(index + 1): \($0)" } }
        )
        combined.runs = runs.count
        return combined
    }
}
