/// One event loop's traffic counters, for the metrics endpoint: requests by frontend, backend,
/// server and status class, bytes, a duration histogram, and open client connections.
///
/// Plain integers touched only on their loop: the hot path takes no lock and does no atomic
/// operation to count. A scrape collects every loop's `snapshot()` (one task per loop) and
/// sums them. Series are keyed by name, so they carry over reloads and stay monotonic.
final class TrafficCounters {
    struct Key: Hashable {
        let frontend: String
        /// Empty for requests answered by Fulcrum itself (no route, denied, redirected).
        let backend: String
        let server: String
    }

    final class Cell {
        /// By status class: index 1…5 for 1xx…5xx, 0 for anything else (no response sent).
        var responses = [Int](repeating: 0, count: 6)
        var bytesIn = 0
        var bytesOut = 0
        /// Per `TrafficSeries.durationBounds` bucket (not cumulative), plus one for +Inf.
        var durations = [Int](repeating: 0, count: TrafficSeries.durationBounds.count + 1)
        var durationNanoseconds: Int64 = 0
    }

    private var cells: [Key: Cell] = [:]
    private var connections: [String: Int] = [:]

    func record(_ key: Key, status: UInt, bytesIn: Int, bytesOut: Int, nanoseconds: Int64) {
        let cell: Cell
        if let existing = cells[key] {
            cell = existing
        } else {
            cell = Cell()
            cells[key] = cell
        }
        let statusClass = Int(status / 100)
        cell.responses[(1...5).contains(statusClass) ? statusClass : 0] += 1
        cell.bytesIn += bytesIn
        cell.bytesOut += bytesOut
        var bucket = 0
        while bucket < TrafficSeries.durationBounds.count, nanoseconds > TrafficSeries.durationBounds[bucket] {
            bucket += 1
        }
        cell.durations[bucket] += 1
        cell.durationNanoseconds += nanoseconds
    }

    func connectionOpened(frontend: String) {
        connections[frontend, default: 0] += 1
    }

    func connectionClosed(frontend: String) {
        connections[frontend, default: 0] -= 1
    }

    func snapshot() -> TrafficSnapshot {
        TrafficSnapshot(
            series: cells.map { key, cell in
                TrafficSeries(
                    frontend: key.frontend,
                    backend: key.backend,
                    server: key.server,
                    responsesByClass: cell.responses,
                    bytesIn: cell.bytesIn,
                    bytesOut: cell.bytesOut,
                    durationBuckets: cell.durations,
                    durationNanoseconds: cell.durationNanoseconds
                )
            },
            activeConnections: connections
        )
    }
}

/// Traffic of one frontend, backend and server (summed over event loops).
public struct TrafficSeries: Sendable, Equatable {
    /// The duration histogram's bucket bounds in nanoseconds (Prometheus' default buckets,
    /// 5 ms … 10 s).
    public static let durationBounds: [Int64] = [
        5_000_000, 10_000_000, 25_000_000, 50_000_000, 100_000_000, 250_000_000,
        500_000_000, 1_000_000_000, 2_500_000_000, 5_000_000_000, 10_000_000_000,
    ]

    public var frontend: String
    public var backend: String
    public var server: String
    /// Index 1…5: 1xx…5xx; index 0: requests that ended without a response.
    public var responsesByClass: [Int]
    /// Body bytes received from clients and sent to them.
    public var bytesIn: Int
    public var bytesOut: Int
    /// Per bucket of `durationBounds` (not cumulative), the last one above the highest bound.
    public var durationBuckets: [Int]
    public var durationNanoseconds: Int64

    public var requests: Int { responsesByClass.reduce(0, +) }

    mutating func add(_ other: TrafficSeries) {
        for index in responsesByClass.indices { responsesByClass[index] += other.responsesByClass[index] }
        for index in durationBuckets.indices { durationBuckets[index] += other.durationBuckets[index] }
        bytesIn += other.bytesIn
        bytesOut += other.bytesOut
        durationNanoseconds += other.durationNanoseconds
    }
}

/// Traffic counters summed over every event loop.
public struct TrafficSnapshot: Sendable, Equatable {
    public var series: [TrafficSeries]
    /// Client connections open now, per frontend.
    public var activeConnections: [String: Int]

    public init(series: [TrafficSeries] = [], activeConnections: [String: Int] = [:]) {
        self.series = series
        self.activeConnections = activeConnections
    }

    mutating func add(_ other: TrafficSnapshot) {
        for series in other.series {
            if let index = self.series.firstIndex(where: {
                $0.frontend == series.frontend && $0.backend == series.backend && $0.server == series.server
            }) {
                self.series[index].add(series)
            } else {
                self.series.append(series)
            }
        }
        activeConnections.merge(other.activeConnections, uniquingKeysWith: +)
    }
}
