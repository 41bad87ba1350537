import Foundation
import Testing

@testable import FulcrumLab

#if canImport(FoundationXML)
import FoundationXML
#endif

/// The timeline of a run and its chart: pure, no workers or proxy.
@Suite("Lab timeline")
struct LabTimelineTests {
    private static let servers = ["w1", "w2", "w3"]

    private static func sample(at seconds: Double, milliseconds: Double = 50, ok: Bool = true, worker: String? = "w1") -> LabTimeline.Sample {
        LabTimeline.Sample(
            dueNanoseconds: Int64(seconds * 1e9),
            latencyNanoseconds: Int64(milliseconds * 1e6),
            ok: ok,
            worker: worker
        )
    }

    private static func result(
        algorithm: String = "adaptive",
        p99: Double,
        timeline: LabTimeline? = nil
    ) -> LabResult {
        var result = LabResult(
            scenario: "becomes-slow",
            algorithm: algorithm,
            requests: 100,
            errors: 0,
            p50Milliseconds: 50,
            p95Milliseconds: p99 - 1,
            p99Milliseconds: p99,
            perServer: ["w1": 40, "w2": 40, "w3": 20],
            switches: []
        )
        result.timeline = timeline
        return result
    }

    /// Four seconds: alike servers, then w3 slow from second 2 and steered around after a switch.
    private static func timeline(p99: Double = 500, switches: [LabTimeline.Switch] = Self.switches) -> LabTimeline {
        LabTimeline(
            seconds: (0..<4).map { second in
                LabTimeline.Second(
                    second: second,
                    requests: 100,
                    errors: second == 2 ? 1 : 0,
                    p50Milliseconds: 50,
                    p99Milliseconds: second == 2 ? p99 : 55,
                    perServer: second < 2 ? ["w1": 34, "w2": 33, "w3": 33] : ["w1": 48, "w2": 47, "w3": 5]
                )
            },
            switches: switches
        )
    }

    private static let switches = [
        LabTimeline.Switch(
            atSeconds: 2.1,
            from: "round_robin",
            to: "least_connections",
            rule: "uneven_load",
            explanation: "lab round_robin → least_connections: w3 holds 9"
        ),
        LabTimeline.Switch(
            atSeconds: 2.7,
            from: "least_connections",
            to: "peak_ewma",
            rule: "latency_spread",
            explanation: "lab least_connections → peak_ewma: p95 spread 9× (w3 <500 ms> & w1 52 ms) ≥ 3×"
        ),
    ]

    // MARK: - Bucketing

    @Test("requests land in the second they were due in, with each server's count and the errors")
    func bucketsBySecondDue() {
        let samples = [
            Self.sample(at: 0.2, worker: "w1"),
            // Due in second 1, answered in second 3: it counts where it was due.
            Self.sample(at: 1.7, milliseconds: 1500, worker: "w2"),
            Self.sample(at: 1.9, ok: false, worker: "w3"),
            Self.sample(at: 1.95, milliseconds: 10_000, ok: false, worker: nil),
        ]
        let timeline = LabTimeline(samples: samples, servers: Self.servers, durationSeconds: 3, switches: [])
        #expect(timeline.seconds.map(\.second) == [0, 1, 2])
        #expect(timeline.seconds.map(\.requests) == [1, 3, 0])
        #expect(timeline.seconds.map(\.errors) == [0, 2, 0])
        #expect(timeline.seconds[0].perServer == ["w1": 1, "w2": 0, "w3": 0])
        #expect(timeline.seconds[1].perServer == ["w1": 0, "w2": 1, "w3": 1])
        // HdrHistogram with 3 significant digits: within 0.1 %.
        #expect(abs(timeline.seconds[0].p50Milliseconds - 50) <= 0.05)
        #expect(abs(timeline.seconds[1].p99Milliseconds - 10_000) <= 10)
    }

    @Test("a second's p50 and p99 of a known set of latencies")
    func percentilesOfAKnownSet() {
        // 1, 2, … 100 ms, all due in second 0, shuffled deterministically.
        let samples = (1...100).map { (($0 * 37) % 100) + 1 }.map { Self.sample(at: 0.5, milliseconds: Double($0)) }
        let timeline = LabTimeline(samples: samples, servers: Self.servers, durationSeconds: 1, switches: [])
        #expect(timeline.seconds.count == 1)
        #expect(timeline.seconds[0].requests == 100)
        #expect(abs(timeline.seconds[0].p50Milliseconds - 50) <= 0.05, "\(timeline.seconds[0].p50Milliseconds)")
        #expect(abs(timeline.seconds[0].p99Milliseconds - 99) <= 0.1, "\(timeline.seconds[0].p99Milliseconds)")
    }

    @Test("seconds without requests are zeros with every server's key; late samples extend the timeline")
    func emptySecondsAreZeroed() {
        let switches = [LabTimeline.Switch(atSeconds: 1.5, from: "round_robin", to: "peak_ewma", rule: "latency_spread", explanation: "x")]
        let timeline = LabTimeline(
            samples: [Self.sample(at: 1.0), Self.sample(at: -0.01)],
            servers: Self.servers,
            durationSeconds: 4,
            switches: switches
        )
        #expect(timeline.switches == switches)
        #expect(timeline.seconds.map(\.requests) == [1, 1, 0, 0])
        for second in timeline.seconds[2...] {
            #expect(
                second
                    == LabTimeline.Second(
                        second: second.second,
                        requests: 0,
                        errors: 0,
                        p50Milliseconds: 0,
                        p99Milliseconds: 0,
                        perServer: ["w1": 0, "w2": 0, "w3": 0]
                    )
            )
        }
        let late = LabTimeline(samples: [Self.sample(at: 5.2)], servers: Self.servers, durationSeconds: 4, switches: [])
        #expect(late.seconds.count == 6)
        #expect(late.seconds[5].requests == 1)
        #expect(LabTimeline(samples: [], servers: [], durationSeconds: 0, switches: []).seconds.isEmpty)
    }

    // MARK: - Results

    @Test("combining keeps the median run's timeline by p99, says which, and records every run's p99")
    func combiningKeepsTheMedianRunsTimeline() {
        let runs = [30.0, 12, 14].map { Self.result(p99: $0, timeline: Self.timeline(p99: $0)) }
        let combined = LabResult.combining(runs)
        #expect(combined.p99ByRun == [30, 12, 14])
        #expect(combined.timelineRun == 3)
        #expect(combined.timeline == Self.timeline(p99: 14))

        // Two runs: the first, whichever p99 is lower.
        let two = LabResult.combining([30.0, 12].map { Self.result(p99: $0, timeline: Self.timeline(p99: $0)) })
        #expect(two.timelineRun == 1 && two.timeline == Self.timeline(p99: 30))
        #expect(two.p99ByRun == [30, 12])
        // Four runs: of the two middle ones (30 in run 3, 20 in run 4), the earlier.
        let four = LabResult.combining([40.0, 10, 30, 20].map { Self.result(p99: $0, timeline: Self.timeline(p99: $0)) })
        #expect(four.timelineRun == 3 && four.timeline == Self.timeline(p99: 30))

        let single = LabResult.combining([Self.result(p99: 20, timeline: Self.timeline())])
        #expect(single.p99ByRun == [20] && single.timelineRun == 1 && single.timeline == Self.timeline())
        let withoutTimelines = LabResult.combining([Self.result(p99: 20), Self.result(p99: 30)])
        #expect(withoutTimelines.timeline == nil && withoutTimelines.timelineRun == nil)
        #expect(withoutTimelines.p99ByRun == [20, 30])
    }

    @Test("results with a timeline survive a JSON round trip")
    func jsonRoundTrip() throws {
        var result = LabResult.combining([30.0, 12, 14].map { Self.result(p99: $0, timeline: Self.timeline(p99: $0)) })
        result.switches = ["run 3: lab round_robin → peak_ewma"]
        let decoded = try JSONDecoder().decode([LabResult].self, from: try LabReport.json([result]))
        #expect(decoded.count == 1)
        #expect(decoded[0].timeline == result.timeline)
        #expect(decoded[0].timelineRun == 3 && decoded[0].p99ByRun == [30, 12, 14] && decoded[0].runs == 3)
        #expect(decoded[0].switches == result.switches && decoded[0].perServer == result.perServer)
        #expect(try LabReport.json(decoded) == LabReport.json([result]))
    }

    @Test("results.json from before timelines decodes, with the new fields at their defaults")
    func oldJSONDecodes() throws {
        let old = """
            [{"algorithm": "peak_ewma", "errors": 0, "p50Milliseconds": 51, "p95Milliseconds": 60, "p99Milliseconds": 70,
              "perServer": {"w1": 50, "w2": 49, "w3": 1}, "requests": 100, "scenario": "slow", "switches": []}]
            """
        let decoded = try JSONDecoder().decode([LabResult].self, from: Data(old.utf8))
        #expect(decoded.count == 1)
        #expect(decoded[0].p99Milliseconds == 70 && decoded[0].perServer["w3"] == 1)
        #expect(decoded[0].runs == 1 && decoded[0].timeline == nil && decoded[0].timelineRun == nil && decoded[0].p99ByRun == [])
        // And one that has `runs` but nothing newer.
        let withRuns = old.replacingOccurrences(of: "\"errors\": 0", with: "\"errors\": 0, \"runs\": 3")
        #expect(try JSONDecoder().decode([LabResult].self, from: Data(withRuns.utf8))[0].runs == 3)
    }

    // MARK: - Chart

    private static let scenario = LabScenario.all.first { $0.name == "becomes-slow" }!

    @Test("the chart: a title, a line per switch with its rule, the reference when given, escaped text")
    func chart() throws {
        let adaptive = Self.result(p99: 120, timeline: Self.timeline())
        let reference = Self.result(algorithm: "peak_ewma", p99: 100, timeline: Self.timeline(p99: 90, switches: []))
        let svg = LabTimelineChart.svg(scenario: Self.scenario, result: adaptive, reference: reference)
        #expect(svg.hasPrefix("<svg"))
        #expect(svg.contains("becomes-slow — adaptive: p99 120 ms, 2 switches"))
        #expect(svg.contains(Self.scenario.summary))
        #expect(occurrences(of: "<line class=\"switch\"", in: svg) == 2)
        #expect(svg.contains(">latency_spread</tspan>") && svg.contains(">uneven_load</tspan>"))
        #expect(svg.contains("→ peak_ewma") && svg.contains("→ least_connections"))
        #expect(occurrences(of: "class=\"reference\"", in: svg) == 1)
        #expect(svg.contains("p99 peak_ewma"))
        // A bar per server per second (w3 has a share in every second), in the share panel.
        #expect(svg.contains(">w1</text>") && svg.contains(">w3</text>"))
        // The explanation's `<500 ms> & w1` is escaped, never raw.
        #expect(svg.contains("(w3 &lt;500 ms&gt; &amp; w1 52 ms)"))
        #expect(!svg.contains("<500"))
        try expectWellFormed(svg)
        // Deterministic.
        #expect(LabTimelineChart.svg(scenario: Self.scenario, result: adaptive, reference: reference) == svg)

        let alone = LabTimelineChart.svg(scenario: Self.scenario, result: adaptive, reference: nil)
        #expect(!alone.contains("class=\"reference\"") && !alone.contains("p99 peak_ewma"))
        try expectWellFormed(alone)
        // A reference without a timeline (an old results.json) draws no line either.
        let old = LabTimelineChart.svg(scenario: Self.scenario, result: adaptive, reference: Self.result(algorithm: "peak_ewma", p99: 100))
        #expect(!old.contains("class=\"reference\""))
    }

    @Test("close switches keep a line each; labels that cannot be placed are counted, not overlapped")
    func denseSwitches() throws {
        // Flapping every 50 ms: far more switches than the label rows hold.
        let flapping = (0..<40).map { (index: Int) -> LabTimeline.Switch in
            let pair = index.isMultiple(of: 2) ? ("round_robin", "peak_ewma") : ("peak_ewma", "round_robin")
            let at = 1 + Double(index) / 20
            return LabTimeline.Switch(atSeconds: at, from: pair.0, to: pair.1, rule: "latency_spread", explanation: "flap \(index)")
        }
        let svg = LabTimelineChart.svg(
            scenario: Self.scenario,
            result: Self.result(p99: 120, timeline: Self.timeline(switches: flapping)),
            reference: nil
        )
        #expect(occurrences(of: "<line class=\"switch\"", in: svg) == 40)
        let labelled = occurrences(of: "class=\"switch-label\"", in: svg)
        #expect(labelled >= 3 && labelled < 40)
        #expect(svg.contains("\(40 - labelled) switches too close to label"))
        try expectWellFormed(svg)
    }

    @Test("a result without a timeline still gives a valid chart")
    func chartWithoutTimeline() throws {
        let svg = LabTimelineChart.svg(scenario: Self.scenario, result: Self.result(algorithm: "round_robin", p99: 510), reference: nil)
        #expect(svg.contains("No timeline recorded"))
        #expect(svg.contains("becomes-slow — round_robin: p99 510 ms, 0 switches"))
        try expectWellFormed(svg)
    }

    @Test("the timeline chart's file name")
    func timelineFileName() {
        #expect(LabReport.timelineFileName(scenario: "becomes-slow") == "timeline-becomes-slow.svg")
    }

    private func occurrences(of needle: String, in text: String) -> Int {
        text.components(separatedBy: needle).count - 1
    }

    private func expectWellFormed(_ svg: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #if canImport(FoundationXML) || os(macOS)
        let document = try XMLDocument(xmlString: svg, options: [])
        #expect(document.rootElement()?.name == "svg", sourceLocation: sourceLocation)
        #else
        // Without an XML parser: every opening tag has its closing one.
        for tag in ["svg", "text", "tspan", "line", "g", "title", "rect", "polyline"] {
            let opened = occurrences(of: "<\(tag) ", in: svg) + occurrences(of: "<\(tag)>", in: svg)
            let closed = occurrences(of: "</\(tag)>", in: svg)
            let selfClosed = svg.components(separatedBy: "<\(tag) ").dropFirst().filter { $0.prefix { $0 != ">" }.hasSuffix("/") }.count
            #expect(opened == closed + selfClosed, "<\(tag)>", sourceLocation: sourceLocation)
        }
        #endif
    }
}
