import CoreMetrics
import Foundation
import FulcrumProxy
import NIOConcurrencyHelpers
import Prometheus

/// `GET /metrics`: Prometheus text exposition, through swift-prometheus.
///
/// Control-plane events (health checks, algorithm switches) are counted as they happen with
/// swift-metrics counters over `factory`. The data plane counts per event loop without locks
/// (`ProxyControl.traffic()`); a scrape sums the loops and brings the registry's counters up
/// to those totals (each counter is incremented by what it is behind, so it stays a counter),
/// sets the gauges from the live state, and appends the request-duration histogram, whose
/// buckets are summed from the loops' (swift-prometheus histograms take one observation at
/// a time, under a lock — not something to do per request).
package final class MetricsExporter: Sendable {
    package let registry = PrometheusCollectorRegistry()
    private let published = NIOLockedValueBox(Published())

    private struct Published {
        /// What each data-plane counter was brought up to, by series.
        var counters: [String: Int] = [:]
        /// Gauges set by the last scrape (a server that left has its gauges removed).
        var gauges: [String: Prometheus.Gauge] = [:]
    }

    package init() {}

    /// A swift-metrics factory over `registry`.
    package var factory: any MetricsFactory { PrometheusMetricsFactory(registry: registry) }

    /// The exposition text for a scrape now.
    package func scrape(proxy: any ProxyControl, reloads: ConfigReloader.Counts) async throws -> String {
        let traffic = try await proxy.traffic()
        let backends = try await proxy.stats()
        published.withLockedValue { published in
            func count(_ name: String, _ help: String, _ labels: [(String, String)], to total: Int) {
                let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
                let behind = total - published.counters[key, default: 0]
                guard behind > 0 || published.counters[key] == nil else { return }
                registry.makeCounter(descriptor: Self.descriptor(name, help), labels: labels).increment(by: Int64(max(behind, 0)))
                published.counters[key] = total
            }
            var gauges: [String: Prometheus.Gauge] = [:]
            func gauge(_ name: String, _ help: String, _ labels: [(String, String)], _ value: Double) {
                let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
                let gauge = published.gauges[key] ?? registry.makeGauge(descriptor: Self.descriptor(name, help), labels: labels)
                gauge.set(value)
                gauges[key] = gauge
            }

            for series in traffic.series {
                let labels = [("frontend", series.frontend), ("backend", series.backend), ("server", series.server)]
                for (index, requests) in series.responsesByClass.enumerated() where requests > 0 {
                    count(
                        "fulcrum_requests_total",
                        "Requests answered, by frontend, backend, server and status class (code=\"none\": no response was sent).",
                        labels + [("code", index == 0 ? "none" : "\(index)xx")],
                        to: requests
                    )
                }
                if series.tcpConnections > 0 {
                    count(
                        "fulcrum_tcp_connections_total",
                        "mode: tcp client connections that reached a server and ended, by frontend, backend and server.",
                        labels,
                        to: series.tcpConnections
                    )
                }
                count(
                    "fulcrum_received_bytes_total",
                    "Request body bytes received from clients (in mode: tcp, every byte).",
                    labels,
                    to: series.bytesIn
                )
                count(
                    "fulcrum_sent_bytes_total",
                    "Response body bytes sent to clients (in mode: tcp, every byte).",
                    labels,
                    to: series.bytesOut
                )
            }
            for (decision, total) in traffic.shieldDecisions {
                count(
                    "fulcrum_shield_decisions_total",
                    "Decisions of the rate limits and the anti-bot shield, by frontend, decision and reason.",
                    [("frontend", decision.frontend), ("decision", decision.decision), ("reason", decision.reason)],
                    to: total
                )
            }
            for (call, total) in traffic.storeCalls {
                if call.isError {
                    count(
                        "fulcrum_store_errors_total",
                        "Shared rate limits' calls to the store that got no decision (timeout, unavailable, error) and fell back to on_error.",
                        [("reason", call.rawValue)],
                        to: total
                    )
                } else {
                    count(
                        "fulcrum_store_decisions_total",
                        "Shared rate limits' decisions made by the store, by result (allowed, limited).",
                        [("result", call.rawValue)],
                        to: total
                    )
                }
            }
            for (event, total) in traffic.listenerEvents {
                switch event.kind {
                case .acceptError:
                    count(
                        "fulcrum_accept_errors_total",
                        "Failed accept calls on a frontend's listeners, by errno (EMFILE, ENFILE: out of descriptors).",
                        [("frontend", event.frontend), ("reason", event.reason)],
                        to: total
                    )
                case .limitReached:
                    count(
                        "fulcrum_connection_limit_reached_total",
                        "Times a frontend's listener stopped accepting because a max_connections cap was full, by cap (global or frontend).",
                        [("frontend", event.frontend), ("limit", event.reason)],
                        to: total
                    )
                }
            }
            for (result, total) in [("success", reloads.succeeded), ("failure", reloads.failed)] {
                count("fulcrum_config_reloads_total", "Configuration reloads, by result.", [("result", result)], to: total)
            }
            for (frontend, connections) in traffic.activeConnections {
                gauge("fulcrum_active_connections", "Client connections open now.", [("frontend", frontend)], Double(connections))
            }
            for (frontend, connections) in traffic.parkedConnections {
                gauge(
                    "fulcrum_parked_connections",
                    "Idle client connections parked outside their channel (included in fulcrum_active_connections).",
                    [("frontend", frontend)],
                    Double(connections)
                )
            }
            for backend in backends {
                gauge(
                    "fulcrum_backend_algorithm",
                    "1 for the algorithm the backend picks with now: as configured, the adaptive engine's choice, or an operator's.",
                    [("backend", backend.name), ("algorithm", backend.algorithm), ("configured", backend.configuredAlgorithm)],
                    1
                )
                if let queue = backend.queue {
                    let labels = [("backend", backend.name)]
                    gauge(
                        "fulcrum_backend_queue_length",
                        "Requests waiting in the backend's queue for a server below its limit.",
                        labels,
                        Double(queue.length)
                    )
                    count(
                        "fulcrum_backend_queue_served_total",
                        "Requests that waited in the queue and then went to a server.",
                        labels,
                        to: queue.served
                    )
                    count("fulcrum_backend_queue_timeouts_total", "Requests that waited the queue's timeout and got 503.", labels, to: queue.timedOut)
                    count(
                        "fulcrum_backend_queue_rejected_total",
                        "Requests that found the queue full and got 503 at once.",
                        labels,
                        to: queue.rejected
                    )
                    count(
                        "fulcrum_backend_queue_wait_milliseconds_total",
                        "Time the requests served from the queue waited, in all (divide by served for the mean).",
                        labels,
                        to: Int(queue.waitedNanoseconds / 1_000_000)
                    )
                }
                for server in backend.servers {
                    let labels = [("backend", backend.name), ("server", server.name)]
                    gauge(
                        "fulcrum_server_up",
                        "1 when the server is in rotation, 0 when down, ejected, draining or in maintenance.",
                        labels,
                        server.state == .up ? 1 : 0
                    )
                    gauge("fulcrum_server_in_flight", "Requests the server is handling now.", labels, Double(server.inFlight))
                    gauge("fulcrum_server_weight", "The server's configured weight.", labels, Double(server.weight))
                    gauge(
                        "fulcrum_server_effective_weight",
                        "The weight the server is balanced by: its weight, less while a slow start ramps it up.",
                        labels,
                        Double(server.weight) * Double(server.rampPercent ?? 100) / 100
                    )
                }
            }
            for (key, gauge) in published.gauges where gauges[key] == nil {
                registry.unregisterGauge(gauge)
            }
            published.gauges = gauges
        }
        var text = registry.emitToString()
        text += Self.durationHistogram(traffic.series)
        return text
    }

    private static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        // The whole name is `metricName`: the descriptor joins non-empty parts with "_".
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// `fulcrum_request_duration_seconds`, rendered from the summed per-loop buckets.
    static func durationHistogram(_ series: [TrafficSeries]) -> String {
        let name = "fulcrum_request_duration_seconds"
        var text = "# HELP \(name) Time from a request's head to the end of its response.\n# TYPE \(name) histogram\n"
        // (A `mode: tcp` series has connections, not requests: it has no durations.)
        let requestSeries = series.filter { $0.requests > 0 }
        for series in requestSeries.sorted(by: { ($0.frontend, $0.backend, $0.server) < ($1.frontend, $1.backend, $1.server) }) {
            let labels = "frontend=\"\(escape(series.frontend))\",backend=\"\(escape(series.backend))\",server=\"\(escape(series.server))\""
            var cumulative = 0
            for (index, bound) in TrafficSeries.durationBounds.enumerated() {
                cumulative += series.durationBuckets[index]
                text += "\(name)_bucket{\(labels),le=\"\(Double(bound) / 1e9)\"} \(cumulative)\n"
            }
            cumulative += series.durationBuckets[TrafficSeries.durationBounds.count]
            text += "\(name)_bucket{\(labels),le=\"+Inf\"} \(cumulative)\n"
            text += "\(name)_sum{\(labels)} \(Double(series.durationNanoseconds) / 1e9)\n"
            text += "\(name)_count{\(labels)} \(cumulative)\n"
        }
        return text
    }

    /// A label value as the text format wants it (RFC: backslash, quote and newline escaped).
    private static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
