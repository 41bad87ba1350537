import Histogram

/// One run's course second by second: latency percentiles, each server's share, the switches.
///
/// A run's p99 says how bad the tail was, not when: an adaptive run that oscillates between
/// two algorithms and one that switched once and stayed can have the same p99. The timeline
/// keeps the when, for `LabTimelineChart`.
package struct LabTimeline: Sendable, Codable, Equatable {
    /// The requests that were due in one second of the run.
    package struct Second: Sendable, Codable, Equatable {
        /// 0-based, by when the request was due (not when it was answered: a request due in
        /// second 3 that took 2 s still shows in second 3, where the algorithm chose its server).
        package var second: Int
        package var requests: Int
        /// Responses that were not 2xx, and requests that got no response.
        package var errors: Int
        /// 0 when no request was due in this second.
        package var p50Milliseconds: Double
        package var p99Milliseconds: Double
        /// Requests answered by each server (`X-Worker`); every server of the run has a key.
        package var perServer: [String: Int]

        package init(second: Int, requests: Int, errors: Int, p50Milliseconds: Double, p99Milliseconds: Double, perServer: [String: Int]) {
            self.second = second
            self.requests = requests
            self.errors = errors
            self.p50Milliseconds = p50Milliseconds
            self.p99Milliseconds = p99Milliseconds
            self.perServer = perServer
        }
    }

    /// One switch the decision engine made. Decisions that kept the algorithm are not here.
    package struct Switch: Sendable, Codable, Equatable {
        /// Since the run's start (the same origin as `Sample.dueNanoseconds`).
        package var atSeconds: Double
        package var from: String
        package var to: String
        /// The engine's rule, e.g. "latency_spread", "uneven_load", "uniform".
        package var rule: String
        package var explanation: String

        package init(atSeconds: Double, from: String, to: String, rule: String, explanation: String) {
            self.atSeconds = atSeconds
            self.from = from
            self.to = to
            self.rule = rule
            self.explanation = explanation
        }
    }

    /// One request's outcome, with when it was due.
    package struct Sample: Sendable {
        /// Since the run's start.
        package var dueNanoseconds: Int64
        /// Measured from when the request was due (open loop), not from when it was sent.
        package var latencyNanoseconds: Int64
        package var ok: Bool
        /// The `X-Worker` header of the response; nil without a response.
        package var worker: String?

        package init(dueNanoseconds: Int64, latencyNanoseconds: Int64, ok: Bool, worker: String?) {
            self.dueNanoseconds = dueNanoseconds
            self.latencyNanoseconds = latencyNanoseconds
            self.ok = ok
            self.worker = worker
        }
    }

    package var seconds: [Second]
    package var switches: [Switch]

    package init(seconds: [Second], switches: [Switch]) {
        self.seconds = seconds
        self.switches = switches
    }

    /// Buckets samples by the second they were due in.
    ///
    /// There are `durationSeconds` seconds, more if a sample was due later (the last request
    /// of a run is due just before its end, but a run's start may be offset); a second without
    /// requests has zeros. Each second has a key for every name in `servers`, and for any other
    /// worker a sample names. Percentiles come from an HdrHistogram in microseconds, as the
    /// run's own (`AlgorithmLab.summarize`), so a second's p99 and the run's are comparable.
    package init(samples: [Sample], servers: [String], durationSeconds: Int, switches: [Switch]) {
        let nanosecondsPerSecond: Int64 = 1_000_000_000
        // A sample due before the start (clock skew between the load and its origin) counts
        // in second 0 rather than being lost.
        func secondOf(_ sample: Sample) -> Int { Int(max(sample.dueNanoseconds, 0) / nanosecondsPerSecond) }
        let count = max(durationSeconds, (samples.map(secondOf).max() ?? -1) + 1, 0)
        var buckets = [[Sample]](repeating: [], count: count)
        for sample in samples { buckets[secondOf(sample)].append(sample) }

        let emptyServers = Dictionary(servers.map { ($0, 0) }, uniquingKeysWith: { first, _ in first })
        // One histogram, reset per second: it holds ~30k counters, not worth allocating 20 times.
        var histogram = Histogram<UInt64>(highestTrackableValue: Self.highestTrackableMicroseconds, numberOfSignificantValueDigits: .three)
        self.seconds = buckets.enumerated().map { second, samples in
            var perServer = emptyServers
            var errors = 0
            histogram.reset()
            for sample in samples {
                // Clamped, since `record` drops a value beyond the highest trackable one.
                let microseconds = min(max(sample.latencyNanoseconds / 1000, 1), Int64(Self.highestTrackableMicroseconds))
                _ = histogram.record(UInt64(microseconds))
                if !sample.ok { errors += 1 }
                if let worker = sample.worker { perServer[worker, default: 0] += 1 }
            }
            func milliseconds(_ percentile: Double) -> Double {
                samples.isEmpty ? 0 : Double(histogram.valueAtPercentile(percentile)) / 1000
            }
            return Second(
                second: second,
                requests: samples.count,
                errors: errors,
                p50Milliseconds: milliseconds(50),
                p99Milliseconds: milliseconds(99),
                perServer: perServer
            )
        }
        self.switches = switches
    }

    /// 60 s in microseconds, as the run's histogram: well beyond the 10 s request timeout.
    static let highestTrackableMicroseconds: UInt64 = 60_000_000
}
