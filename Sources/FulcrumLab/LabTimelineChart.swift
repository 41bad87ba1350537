import Foundation

/// One run's course as a standalone SVG (900×460, no external fonts or scripts): latency per
/// second on a log scale above, each server's share of the requests below, and every switch
/// the decision engine made as a vertical line across both, so that an algorithm flapping
/// back and forth shows at a glance, and what each switch did to the tail right after it.
package enum LabTimelineChart {
    /// `result.timeline` drawn against `reference`'s (the best fixed algorithm's) p99, when
    /// that has a timeline. Same input, same bytes: nothing here depends on dictionary order.
    package static func svg(scenario: LabScenario, result: LabResult, reference: LabResult?) -> String {
        let switchCount = result.timeline?.switches.count ?? result.switches.count
        let title =
            "\(scenario.name) — \(result.algorithm): p99 \(milliseconds(result.p99Milliseconds)), "
            + "\(switchCount) switch\(switchCount == 1 ? "" : "es")"
        var subtitle = scenario.summary
        if result.runs > 1, let run = result.timelineRun {
            subtitle += " · run \(run) of \(result.runs) (the median p99)"
        }
        let body: String
        if let timeline = result.timeline, !timeline.seconds.isEmpty {
            body = plot(timeline, algorithm: result.algorithm, reference: reference)
        } else {
            body = "<text x=\"\(left)\" y=\"\(latencyTop + 20)\" fill=\"#555\">No timeline recorded for this result.</text>\n"
        }
        return """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="\(Int(width))" height="\(Int(height))" fill="#ffffff"/>
            <text x="10" y="20" font-size="14">\(escape(title))</text>
            <text x="10" y="37" fill="#555">\(escape(subtitle))</text>
            \(body)</svg>

            """
    }

    // The layout, top to bottom: title, three rows of switch labels, the algorithm strip, the
    // latency panel, the share panel, the seconds axis. The legends go right of the panels.
    private static let width = 900.0, height = 460.0
    private static let left = 64.0, right = 730.0
    private static let labelRows = [58.0, 80.0, 102.0]
    private static let stripTop = 112.0, stripHeight = 12.0
    private static let latencyTop = 132.0, latencyBottom = 282.0
    private static let shareTop = 300.0, shareBottom = 410.0
    private static let axisBaseline = 426.0
    private static let legendX = 746.0

    private static let p50Colour = "#95a5a6"
    private static let referenceColour = "#2471a3"
    private static let serverColours = ["#3498db", "#27ae60", "#e67e22", "#8e44ad", "#16a085", "#f1c40f", "#7f8c8d", "#d35400"]
    private static let algorithmColours = ["#d5dbdb", "#aed6f1", "#f5b7b1", "#abebc6", "#f9e79f", "#d7bde2", "#fad7a0"]

    private static func plot(_ timeline: LabTimeline, algorithm: String, reference: LabResult?) -> String {
        let referenceTimeline = reference?.timeline
        // Both runs on one time axis; they lasted the same unless the lab's settings changed.
        let secondCount = max(timeline.seconds.count, referenceTimeline?.seconds.count ?? 0)
        func x(_ seconds: Double) -> Double { left + (right - left) * seconds / Double(secondCount) }
        let switches = timeline.switches.enumerated()
            .sorted { ($0.element.atSeconds, $0.offset) < ($1.element.atSeconds, $1.offset) }
            .map(\.element)

        var body = ""
        body += secondsAxis(secondCount: secondCount, x: x)
        body += latencyPanel(timeline, algorithm: algorithm, reference: reference, x: x)
        body += sharePanel(timeline, secondCount: secondCount, x: x)
        body += algorithmStrip(switches, secondCount: secondCount, x: x)
        body += switchLines(switches, x: x)
        return body
    }

    /// Vertical gridlines through both panels and their labels under the share panel, at
    /// most about ten of them whatever the run's length.
    private static func secondsAxis(secondCount: Int, x: (Double) -> Double) -> String {
        let step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600].first { secondCount / $0 <= 10 } ?? 3600
        var body = ""
        for second in stride(from: 0, through: secondCount, by: step) {
            let position = fixed(x(Double(second)))
            for (top, bottom) in [(latencyTop, latencyBottom), (shareTop, shareBottom)] {
                body += "<line x1=\"\(position)\" y1=\"\(fixed(top))\" x2=\"\(position)\" y2=\"\(fixed(bottom))\" stroke=\"#eeeeee\"/>\n"
            }
            body += "<text x=\"\(position)\" y=\"\(fixed(axisBaseline))\" text-anchor=\"middle\" font-size=\"10\" fill=\"#555\">\(second) s</text>\n"
        }
        body +=
            "<text x=\"\(fixed((left + right) / 2))\" y=\"\(fixed(axisBaseline + 18))\" text-anchor=\"middle\" font-size=\"10\" fill=\"#555\">seconds since the run's start (by when each request was due)</text>\n"
        return body
    }

    /// p50 and p99 per second on a log scale (a 50 ms p50 and a 500 ms tail both stay
    /// readable), and the reference's p99 dashed.
    private static func latencyPanel(_ timeline: LabTimeline, algorithm: String, reference: LabResult?, x: (Double) -> Double) -> String {
        let referenceSeconds = reference?.timeline?.seconds ?? []
        let values =
            (timeline.seconds.flatMap { [$0.p50Milliseconds, $0.p99Milliseconds] }
            + referenceSeconds.map(\.p99Milliseconds)).filter { $0 > 0 }
        // Whole decades around the data, at least one.
        var lowest = pow(10, floor(log10(values.min() ?? 1)))
        var highest = pow(10, ceil(log10(values.max() ?? 1000)))
        if highest <= lowest { highest = lowest * 10 }
        lowest = max(lowest, 0.001)
        func y(_ value: Double) -> Double {
            let fraction = (log10(max(value, lowest)) - log10(lowest)) / (log10(highest) - log10(lowest))
            return latencyBottom - (latencyBottom - latencyTop) * min(fraction, 1)
        }

        var body =
            "<rect x=\"\(fixed(left))\" y=\"\(fixed(latencyTop))\" width=\"\(fixed(right - left))\" height=\"\(fixed(latencyBottom - latencyTop))\" fill=\"none\" stroke=\"#cccccc\"/>\n"
        var decade = lowest
        while decade <= highest * 1.0001 {
            let position = fixed(y(decade))
            body += "<line x1=\"\(fixed(left))\" y1=\"\(position)\" x2=\"\(fixed(right))\" y2=\"\(position)\" stroke=\"#dddddd\"/>\n"
            body +=
                "<text x=\"\(fixed(left - 6))\" y=\"\(fixed(y(decade) + 4))\" text-anchor=\"end\" font-size=\"10\" fill=\"#555\">\(String(format: "%g", decade)) ms</text>\n"
            decade *= 10
        }

        let p99Colour = algorithm == "adaptive" ? "#c0392b" : "#2c3e50"
        body += line(timeline.seconds, \.p50Milliseconds, x: x, y: y, attributes: "class=\"p50\" stroke=\"\(p50Colour)\" stroke-width=\"1.2\"")
        if !referenceSeconds.isEmpty {
            body += line(
                referenceSeconds,
                \.p99Milliseconds,
                x: x,
                y: y,
                attributes: "class=\"reference\" stroke=\"\(referenceColour)\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\""
            )
        }
        body += line(timeline.seconds, \.p99Milliseconds, x: x, y: y, attributes: "class=\"p99\" stroke=\"\(p99Colour)\" stroke-width=\"2.5\"")

        // The legend, right of the panel.
        var legendY = latencyTop + 10
        body += "<text x=\"\(fixed(legendX))\" y=\"\(fixed(legendY))\" font-size=\"10\" fill=\"#555\">latency per second</text>\n"
        var entries = [(p50Colour, "1.2", "", "p50"), (p99Colour, "2.5", "", "p99 \(algorithm)")]
        if let reference, !referenceSeconds.isEmpty {
            entries.append((referenceColour, "1.5", " stroke-dasharray=\"6 4\"", "p99 \(reference.algorithm)"))
        }
        for (colour, strokeWidth, dash, label) in entries {
            legendY += 16
            body +=
                "<line x1=\"\(fixed(legendX))\" y1=\"\(fixed(legendY - 4))\" x2=\"\(fixed(legendX + 18))\" y2=\"\(fixed(legendY - 4))\" stroke=\"\(colour)\" stroke-width=\"\(strokeWidth)\"\(dash)/>\n"
            body += "<text x=\"\(fixed(legendX + 24))\" y=\"\(fixed(legendY))\" font-size=\"11\">\(escape(label))</text>\n"
        }
        if reference != nil, !referenceSeconds.isEmpty {
            body +=
                "<text x=\"\(fixed(legendX + 24))\" y=\"\(fixed(legendY + 12))\" font-size=\"9\" fill=\"#555\">(the best fixed algorithm)</text>\n"
        }
        return body
    }

    /// A polyline per stretch of seconds with requests: a second without any has no latency,
    /// and drawing it as 0 ms would look like a dip.
    private static func line(
        _ seconds: [LabTimeline.Second],
        _ value: KeyPath<LabTimeline.Second, Double>,
        x: (Double) -> Double,
        y: (Double) -> Double,
        attributes: String
    ) -> String {
        var stretches: [[String]] = [[]]
        for second in seconds {
            if second.requests == 0 {
                if !stretches[stretches.count - 1].isEmpty { stretches.append([]) }
                continue
            }
            stretches[stretches.count - 1].append("\(fixed(x(Double(second.second) + 0.5))),\(fixed(y(second[keyPath: value])))")
        }
        return stretches.filter { !$0.isEmpty }.map { points in
            // A lone second gets a zero-length second point, which round caps draw as a dot.
            let all = points.count == 1 ? points + points : points
            return
                "<polyline \(attributes) fill=\"none\" stroke-linejoin=\"round\" stroke-linecap=\"round\" points=\"\(all.joined(separator: " "))\"/>\n"
        }.joined()
    }

    /// Each server's share of the requests answered in each second, as stacked bars, in the
    /// legend's order from the bottom up. Failed requests without a response are in no share.
    private static func sharePanel(_ timeline: LabTimeline, secondCount: Int, x: (Double) -> Double) -> String {
        let servers = Set(timeline.seconds.flatMap(\.perServer.keys)).sorted { $0.compare($1, options: .numeric) == .orderedAscending }
        let panelHeight = shareBottom - shareTop
        var body =
            "<rect x=\"\(fixed(left))\" y=\"\(fixed(shareTop))\" width=\"\(fixed(right - left))\" height=\"\(fixed(panelHeight))\" fill=\"#f4f4f4\" stroke=\"#cccccc\"/>\n"
        body += "<g shape-rendering=\"crispEdges\">\n"
        let barWidth = fixed(x(1) - x(0))
        for second in timeline.seconds {
            let answered = second.perServer.values.reduce(0, +)
            guard answered > 0 else { continue }
            var bottom = shareBottom
            for (index, server) in servers.enumerated() {
                let count = second.perServer[server] ?? 0
                guard count > 0 else { continue }
                let height = panelHeight * Double(count) / Double(answered)
                body +=
                    "<rect x=\"\(fixed(x(Double(second.second))))\" y=\"\(fixed(bottom - height))\" width=\"\(barWidth)\" height=\"\(fixed(height))\" fill=\"\(serverColours[index % serverColours.count])\"/>\n"
                bottom -= height
            }
        }
        body += "</g>\n"
        for (fraction, label) in [(0.0, "0 %"), (0.5, "50 %"), (1.0, "100 %")] {
            let position = shareBottom - panelHeight * fraction
            body += "<text x=\"\(fixed(left - 6))\" y=\"\(fixed(position + 4))\" text-anchor=\"end\" font-size=\"10\" fill=\"#555\">\(label)</text>\n"
        }
        var legendY = shareTop + 10
        body += "<text x=\"\(fixed(legendX))\" y=\"\(fixed(legendY))\" font-size=\"10\" fill=\"#555\">share of the requests</text>\n"
        for (index, server) in servers.enumerated() {
            legendY += 15
            body +=
                "<rect x=\"\(fixed(legendX))\" y=\"\(fixed(legendY - 9))\" width=\"10\" height=\"10\" fill=\"\(serverColours[index % serverColours.count])\"/>\n"
            body += "<text x=\"\(fixed(legendX + 16))\" y=\"\(fixed(legendY))\" font-size=\"11\">\(escape(server))</text>\n"
        }
        return body
    }

    /// Which algorithm was in use when, as coloured stretches above the latency panel: with
    /// many switches the labels cannot all be placed, but the stretches still show the flapping.
    private static func algorithmStrip(_ switches: [LabTimeline.Switch], secondCount: Int, x: (Double) -> Double) -> String {
        guard let first = switches.first else { return "" }
        var stretches = [(algorithm: first.from, start: 0.0)]
        for change in switches { stretches.append((change.to, max(change.atSeconds, 0))) }
        var colours: [String: String] = [:]
        var body =
            "<text x=\"\(fixed(left - 6))\" y=\"\(fixed(stripTop + stripHeight - 2))\" text-anchor=\"end\" font-size=\"9\" fill=\"#555\">algorithm</text>\n"
        for (index, stretch) in stretches.enumerated() {
            if colours[stretch.algorithm] == nil {
                colours[stretch.algorithm] = algorithmColours[colours.count % algorithmColours.count]
            }
            let end = index + 1 < stretches.count ? stretches[index + 1].start : Double(secondCount)
            let from = min(x(stretch.start), right)
            let to = min(x(end), right)
            guard to > from else { continue }
            body +=
                "<rect x=\"\(fixed(from))\" y=\"\(fixed(stripTop))\" width=\"\(fixed(to - from))\" height=\"\(fixed(stripHeight))\" fill=\"\(colours[stretch.algorithm]!)\"><title>\(escape(stretch.algorithm))</title></rect>\n"
            // The name inside when it fits (9 px text: about 5 px a character).
            if to - from >= Double(stretch.algorithm.count) * 5 + 6 {
                body +=
                    "<text x=\"\(fixed(from + 3))\" y=\"\(fixed(stripTop + stripHeight - 3))\" font-size=\"9\">\(escape(stretch.algorithm))</text>\n"
            }
        }
        return body
    }

    /// A line per switch from its label down through both panels, each with its explanation
    /// as a tooltip. Labels go in the first of three rows where they do not overlap an earlier
    /// one; a switch too close to its neighbours for any row keeps its line and tooltip only.
    private static func switchLines(_ switches: [LabTimeline.Switch], x: (Double) -> Double) -> String {
        var rowEnds = [Double](repeating: -Double.infinity, count: labelRows.count)
        var labels = ""
        var lines = ""
        var unlabelled = 0
        for change in switches {
            let position = min(max(x(change.atSeconds), left), right)
            let heading = "→ \(change.to)"
            // Estimated widths: 10 px and 9 px sans-serif, with a margin.
            let labelWidth = max(Double(heading.count) * 6, Double(change.rule.count) * 5.4)
            // Right of the line, or left of it near the right edge.
            let anchorsAtEnd = position + 3 + labelWidth > legendX - 4
            let start = anchorsAtEnd ? position - 3 - labelWidth : position + 3
            var top = stripTop
            if let row = rowEnds.firstIndex(where: { $0 < start }) {
                rowEnds[row] = start + labelWidth + 4
                let baseline = labelRows[row]
                let textX = fixed(anchorsAtEnd ? position - 3 : position + 3)
                let anchor = anchorsAtEnd ? " text-anchor=\"end\"" : ""
                labels +=
                    "<text class=\"switch-label\" x=\"\(textX)\" y=\"\(fixed(baseline))\" font-size=\"10\"\(anchor)>\(escape(heading))"
                    + "<tspan x=\"\(textX)\" dy=\"10\" font-size=\"9\" fill=\"#666\">\(escape(change.rule))</tspan></text>\n"
                top = baseline - 10
            } else {
                unlabelled += 1
            }
            let tooltip = String(format: "%.1f s: ", change.atSeconds) + "\(change.from) → \(change.to) (\(change.rule)): \(change.explanation)"
            lines +=
                "<line class=\"switch\" x1=\"\(fixed(position))\" y1=\"\(fixed(top))\" x2=\"\(fixed(position))\" y2=\"\(fixed(shareBottom))\" stroke=\"#555\" stroke-opacity=\"0.7\"><title>\(escape(tooltip))</title></line>\n"
        }
        if unlabelled > 0 {
            labels +=
                "<text x=\"\(fixed(legendX))\" y=\"\(fixed(labelRows[0]))\" font-size=\"9\" fill=\"#666\">\(unlabelled) switch\(unlabelled == 1 ? "" : "es") too close to label:</text>\n"
            labels +=
                "<text x=\"\(fixed(legendX))\" y=\"\(fixed(labelRows[0] + 11))\" font-size=\"9\" fill=\"#666\">hover a line for its details</text>\n"
        }
        return lines + labels
    }

    /// Coordinates to a tenth of a pixel: enough for the eye, and the same bytes every time.
    private static func fixed(_ value: Double) -> String {
        String(format: "%.1f", value)
    }

    private static func milliseconds(_ value: Double) -> String {
        value >= 100 ? String(format: "%.0f ms", value) : String(format: "%.1f ms", value)
    }

    /// Text and attribute values: `&` first, so the others' entities are not escaped twice.
    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;")
            .replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }
}
