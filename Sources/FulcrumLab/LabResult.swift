/// What one algorithm achieved in one scenario.
package struct LabResult: Sendable, Codable {
    package var scenario: String
    package var algorithm: String
    package var requests: Int
    /// Responses that were not 2xx, and requests that got no response.
    package var errors: Int
    package var p50Milliseconds: Double
    package var p95Milliseconds: Double
    package var p99Milliseconds: Double
    /// Requests answered by each server (`X-Worker`), in server order.
    package var perServer: [String: Int]
    /// For `adaptive`: the algorithm switches the engine made, with their explanations.
    package var switches: [String]
    /// How many runs this result summarises (`--repeat`): counts are their sums, the
    /// percentiles the medians of the runs' percentiles.
    package var runs = 1
    /// One run's course second by second; nil in results from before timelines were kept.
    /// Of several runs, the median run's by p99 (`timelineRun`), so the chart shows a typical
    /// run rather than the best or the worst.
    package var timeline: LabTimeline?
    /// Which run (1-based) `timeline` is of; nil without a timeline.
    package var timelineRun: Int?
    /// Each run's p99, in run order, so results.json records the spread behind the median.
    package var p99ByRun: [Double] = []

    package var errorRate: Double { requests == 0 ? 0 : Double(errors) / Double(requests) }

    /// One result for several runs of the same scenario and algorithm: sums of the counts,
    /// medians of the percentiles (a single noisy run moves a median least), the switches of
    /// every run, each run's p99, and the timeline of the median run by p99.
    package static func combining(_ runs: [LabResult]) -> LabResult {
        precondition(!runs.isEmpty)
        guard runs.count > 1 else {
            var single = runs[0]
            if single.p99ByRun.isEmpty { single.p99ByRun = [single.p99Milliseconds] }
            if single.timeline != nil, single.timelineRun == nil { single.timelineRun = 1 }
            return single
        }
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
        combined.p99ByRun = runs.map(\.p99Milliseconds)
        let middle = medianRun(byP99: runs)
        if let timeline = runs[middle].timeline {
            combined.timeline = timeline
            combined.timelineRun = middle + 1
        }
        return combined
    }

    /// The index of the run whose p99 is the median: of an even number, of the two middle
    /// runs the earlier one (with 2 runs, the first), so the choice leans neither way.
    static func medianRun(byP99 runs: [LabResult]) -> Int {
        // Ties by index, so the choice does not depend on the sort's stability.
        let order = runs.indices.sorted { (runs[$0].p99Milliseconds, $0) < (runs[$1].p99Milliseconds, $1) }
        let middle = order.count / 2
        return order.count % 2 == 1 ? order[middle] : min(order[middle - 1], order[middle])
    }
}

extension LabResult {
    /// Decodes results.json of any age: `runs`, `timeline`, `timelineRun` and `p99ByRun` came
    /// later and take their defaults when missing. (In an extension, so the memberwise
    /// initializer stays.)
    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            scenario: try container.decode(String.self, forKey: .scenario),
            algorithm: try container.decode(String.self, forKey: .algorithm),
            requests: try container.decode(Int.self, forKey: .requests),
            errors: try container.decode(Int.self, forKey: .errors),
            p50Milliseconds: try container.decode(Double.self, forKey: .p50Milliseconds),
            p95Milliseconds: try container.decode(Double.self, forKey: .p95Milliseconds),
            p99Milliseconds: try container.decode(Double.self, forKey: .p99Milliseconds),
            perServer: try container.decode([String: Int].self, forKey: .perServer),
            switches: try container.decode([String].self, forKey: .switches)
        )
        runs = try container.decodeIfPresent(Int.self, forKey: .runs) ?? 1
        timeline = try container.decodeIfPresent(LabTimeline.self, forKey: .timeline)
        timelineRun = try container.decodeIfPresent(Int.self, forKey: .timelineRun)
        p99ByRun = try container.decodeIfPresent([Double].self, forKey: .p99ByRun) ?? []
    }
}
