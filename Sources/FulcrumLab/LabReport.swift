import Foundation

/// The lab's output: a table per scenario for the terminal, JSON, and an SVG chart.
package enum LabReport {
    /// A fixed-width table of one scenario's results, with adaptive's switches under it.
    package static func table(for scenario: LabScenario, results: [LabResult]) -> String {
        var lines = ["\(scenario.name): \(scenario.summary)"]
        lines.append(
            pad("algorithm", 22) + pad("p50", 10, right: true) + pad("p95", 10, right: true)
                + pad("p99", 10, right: true) + pad("errors", 9, right: true) + "   requests per server"
        )
        for result in results {
            let servers = result.perServer.keys.sorted().map { "\($0) \(result.perServer[$0]!)" }.joined(separator: " · ")
            lines.append(
                pad(result.algorithm, 22)
                    + pad(milliseconds(result.p50Milliseconds), 10, right: true)
                    + pad(milliseconds(result.p95Milliseconds), 10, right: true)
                    + pad(milliseconds(result.p99Milliseconds), 10, right: true)
                    + pad(String(format: "%.1f %%", result.errorRate * 100), 9, right: true)
                    + "   " + servers
            )
        }
        for result in results where !result.switches.isEmpty {
            for line in result.switches { lines.append("  \(result.algorithm): \(line)") }
        }
        return lines.joined(separator: "\n")
    }

    /// How adaptive did against the bar: p99 within 15 % of the best fixed algorithm's, and
    /// at least 2× better than round robin's where a server is or turns slow.
    package static func verdict(for scenario: LabScenario, results: [LabResult]) -> String? {
        guard let adaptive = results.first(where: { $0.algorithm == "adaptive" }) else { return nil }
        let fixed = results.filter { $0.algorithm != "adaptive" }
        guard let best = fixed.min(by: { $0.p99Milliseconds < $1.p99Milliseconds }) else { return nil }
        let ratio = adaptive.p99Milliseconds / max(best.p99Milliseconds, 0.001)
        var verdict =
            String(format: "adaptive p99 %.2f× the best fixed (%@)", ratio, best.algorithm)
            + (ratio <= 1.15 ? " — within 15 %" : " — NOT within 15 %")
        if let timeline = adaptive.timeline {
            let trips = roundTrips(in: timeline)
            verdict +=
                "; \(timeline.switches.count) switch\(timeline.switches.count == 1 ? "" : "es"), "
                + "\(trips) return\(trips == 1 ? "" : "s") to an algorithm just left"
        }
        if ["slow", "becomes-slow"].contains(scenario.name),
            let roundRobin = results.first(where: { $0.algorithm == "round_robin" })
        {
            let gain = roundRobin.p99Milliseconds / max(adaptive.p99Milliseconds, 0.001)
            verdict += String(format: "; %.1f× better than round_robin", gain) + (gain >= 2 ? "" : " (target 2×)")
        }
        return verdict
    }

    /// How often a switch went back to the algorithm the switch before it had left, within
    /// `window` of that switch (A → B, then B → A): an engine that undoes its own decisions.
    package static func roundTrips(in timeline: LabTimeline, within window: Double = 600) -> Int {
        zip(timeline.switches, timeline.switches.dropFirst()).filter { earlier, later in
            later.to == earlier.from && later.atSeconds - earlier.atSeconds <= window
        }.count
    }

    /// A Markdown table of adaptive against the best fixed algorithm, a row per scenario.
    package static func summary(scenarios: [LabScenario], results: [LabResult]) -> String {
        var lines = [
            "| scenario | best fixed | its p99 | adaptive p99 | ratio | adaptive's switches (median run) | returns |",
            "|---|---|---:|---:|---:|---|---:|",
        ]
        for scenario in scenarios {
            let rows = results.filter { $0.scenario == scenario.name }
            guard let adaptive = rows.first(where: { $0.algorithm == "adaptive" }),
                let best = rows.filter({ $0.algorithm != "adaptive" }).min(by: { $0.p99Milliseconds < $1.p99Milliseconds })
            else { continue }
            let path =
                adaptive.timeline.map { timeline in
                    timeline.switches.isEmpty
                        ? "none" : timeline.switches.map { "\(Int($0.atSeconds.rounded())) s → \($0.to) (\($0.rule))" }.joined(separator: ", ")
                } ?? "—"
            let trips = adaptive.timeline.map { "\(roundTrips(in: $0))" } ?? "—"
            lines.append(
                "| \(scenario.name) | \(best.algorithm) | \(milliseconds(best.p99Milliseconds)) | \(milliseconds(adaptive.p99Milliseconds)) | "
                    + String(format: "%.2f×", adaptive.p99Milliseconds / max(best.p99Milliseconds, 0.001)) + " | \(path) | \(trips) |"
            )
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The file `--out DIR` writes a scenario's timeline chart to (`LabTimelineChart.svg`).
    package static func timelineFileName(scenario: String) -> String {
        "timeline-\(scenario).svg"
    }

    package static func json(_ results: [LabResult]) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(results)
    }

    /// One panel per scenario: a bar per algorithm for p99 (dark) over p50 (light), in
    /// milliseconds, each panel on its own scale.
    package static func svg(scenarios: [LabScenario], results: [LabResult]) -> String {
        let panelWidth = 560.0
        let barHeight = 18.0
        let labelWidth = 150.0
        var y = 40.0
        var body = ""
        for scenario in scenarios {
            let rows = results.filter { $0.scenario == scenario.name }
            guard !rows.isEmpty else { continue }
            let maximum = max(rows.map(\.p99Milliseconds).max() ?? 1, 0.001)
            let scale = (panelWidth - labelWidth - 80) / maximum
            body += "<text x=\"10\" y=\"\(y)\" font-weight=\"bold\">\(escape(scenario.name)): \(escape(scenario.summary))</text>\n"
            y += 10
            for row in rows {
                y += barHeight + 4
                let p99 = row.p99Milliseconds * scale
                let p50 = row.p50Milliseconds * scale
                let colour = row.algorithm == "adaptive" ? "#c0392b" : "#2c3e50"
                body += "<text x=\"10\" y=\"\(y - 5)\">\(escape(row.algorithm))</text>\n"
                body += "<rect x=\"\(labelWidth)\" y=\"\(y - barHeight)\" width=\"\(max(p99, 1))\" height=\"\(barHeight - 2)\" fill=\"\(colour)\"/>\n"
                body += "<rect x=\"\(labelWidth)\" y=\"\(y - barHeight)\" width=\"\(max(p50, 1))\" height=\"\(barHeight - 2)\" fill=\"#95a5a6\"/>\n"
                body += "<text x=\"\(labelWidth + max(p99, 1) + 6)\" y=\"\(y - 5)\">\(milliseconds(row.p99Milliseconds)) p99</text>\n"
            }
            y += 36
        }
        return """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(panelWidth))" height="\(Int(y))" font-family="sans-serif" font-size="12">
            <text x="10" y="20" font-size="14">Fulcrum algorithm lab — latency per algorithm (bar: p99; grey: p50; red: adaptive)</text>
            \(body)</svg>

            """
    }

    private static func milliseconds(_ value: Double) -> String {
        value >= 100 ? String(format: "%.0f ms", value) : String(format: "%.1f ms", value)
    }

    private static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let padding = String(repeating: " ", count: max(0, width - text.count))
        return right ? padding + text : text + padding
    }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
    }
}
