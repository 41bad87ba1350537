/// One event loop's traffic counters, for the metrics endpoint: requests by frontend, backend,
/// server and status class, `mode: tcp` connections, bytes, a duration histogram, and open
/// client connections.
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
        /// `mode: tcp` connections that went to the server and ended.
        var tcpConnections = 0
        var bytesIn = 0
        var bytesOut = 0
        /// Per `TrafficSeries.durationBounds` bucket (not cumulative), plus one for +Inf.
        var durations = [Int](repeating: 0, count: TrafficSeries.durationBounds.count + 1)
        var durationNanoseconds: Int64 = 0
    }

    private var cells: [Key: Cell] = [:]
    private var connections: [String: Int] = [:]
    private var shield: [ShieldDecision: Int] = [:]
    private var store: [StoreCall: Int] = [:]

    func shieldDecision(_ key: ShieldDecision) {
        shield[key, default: 0] += 1
    }

    /// A shared limit's call to the store, and how it ended.
    func storeCall(_ call: StoreCall) {
        store[call, default: 0] += 1
    }

    /// The counters of one frontend, backend and server, created on first use.
    func cell(for key: Key) -> Cell {
        if let existing = cells[key] { return existing }
        let cell = Cell()
        cells[key] = cell
        return cell
    }

    /// Counts an exchange (its counters are looked up with `cell(for:)`, or
    /// `LoopBackend.trafficCell` for a server's).
    func record(into cell: Cell, status: UInt, bytesIn: Int, bytesOut: Int, nanoseconds: Int64) {
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

    /// Counts a `mode: tcp` connection that ended, with every byte each way.
    func recordTCPConnection(into cell: Cell, bytesIn: Int, bytesOut: Int) {
        cell.tcpConnections += 1
        cell.bytesIn += bytesIn
        cell.bytesOut += bytesOut
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
                    tcpConnections: cell.tcpConnections,
                    bytesIn: cell.bytesIn,
                    bytesOut: cell.bytesOut,
                    durationBuckets: cell.durations,
                    durationNanoseconds: cell.durationNanoseconds
                )
            },
            activeConnections: connections,
            shieldDecisions: shield,
            storeCalls: store
        )
    }
}

/// Traffic of one frontend, backend and server (summed over event loops).
package struct TrafficSeries: Sendable, Equatable {
    /// The duration histogram's bucket bounds in nanoseconds (Prometheus' default buckets,
    /// 5 ms … 10 s).
    package static let durationBounds: [Int64] = [
        5_000_000, 10_000_000, 25_000_000, 50_000_000, 100_000_000, 250_000_000,
        500_000_000, 1_000_000_000, 2_500_000_000, 5_000_000_000, 10_000_000_000,
    ]

    package var frontend: String
    package var backend: String
    package var server: String
    /// Index 1…5: 1xx…5xx; index 0: requests that ended without a response.
    package var responsesByClass: [Int]
    /// `mode: tcp` connections that went to the server and ended.
    package var tcpConnections = 0
    /// Body bytes received from clients and sent to them (in `mode: tcp`, every byte).
    package var bytesIn: Int
    package var bytesOut: Int
    /// Per bucket of `durationBounds` (not cumulative), the last one above the highest bound.
    package var durationBuckets: [Int]
    package var durationNanoseconds: Int64

    package var requests: Int { responsesByClass.reduce(0, +) }

    mutating func add(_ other: TrafficSeries) {
        for index in responsesByClass.indices { responsesByClass[index] += other.responsesByClass[index] }
        for index in durationBuckets.indices { durationBuckets[index] += other.durationBuckets[index] }
        tcpConnections += other.tcpConnections
        bytesIn += other.bytesIn
        bytesOut += other.bytesOut
        durationNanoseconds += other.durationNanoseconds
    }
}

/// Traffic counters summed over every event loop.
package struct TrafficSnapshot: Sendable, Equatable {
    package var series: [TrafficSeries]
    /// Client connections open now, per frontend (parked ones included).
    package var activeConnections: [String: Int]
    /// Of those, the idle ones parked outside their channel (`ParkingLot`), per frontend.
    package var parkedConnections: [String: Int] = [:]
    /// The shield's decisions by frontend, decision and reason.
    package var shieldDecisions: [ShieldDecision: Int]
    /// Accept errors and pauses at a connection cap, by frontend (the listeners', not a loop's).
    package var listenerEvents: [ListenerEvent: Int] = [:]
    /// Shared limits' calls to the store, by outcome.
    package var storeCalls: [StoreCall: Int]

    package init(
        series: [TrafficSeries] = [],
        activeConnections: [String: Int] = [:],
        shieldDecisions: [ShieldDecision: Int] = [:],
        storeCalls: [StoreCall: Int] = [:]
    ) {
        self.series = series
        self.activeConnections = activeConnections
        self.shieldDecisions = shieldDecisions
        self.storeCalls = storeCalls
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
        shieldDecisions.merge(other.shieldDecisions, uniquingKeysWith: +)
        storeCalls.merge(other.storeCalls, uniquingKeysWith: +)
    }
}

/// How a shared limit's call to the store ended (`TrafficSnapshot.storeCalls`).
package enum StoreCall: String, Hashable, Sendable, CaseIterable {
    /// Redis decided: the request passed, or was over the limit.
    case allowed, limited
    /// No reply within the store's timeout; the limit fell back to `on_error`.
    case timeout
    /// No connection (refused, closed, or resting after a failure); fell back.
    case unavailable
    /// Redis replied with an error, or something that was not the script's answer; fell back.
    case error

    /// Whether the limit fell back to `on_error`.
    package var isError: Bool { self != .allowed && self != .limited }
}

/// One kind of decision of a frontend's shield, counted in `TrafficSnapshot.shieldDecisions`.
package struct ShieldDecision: Hashable, Sendable {
    package let frontend: String
    /// `limited` (a rate limit), `challenged`, `blocked`, `flagged` (monitor mode), `passed`
    /// (a solved challenge), `refused` (a wrong or stale answer to one).
    package let decision: String
    /// The rate limit's name, or the heuristics' reasons joined with `+`.
    package let reason: String

    package init(frontend: String, decision: String, reason: String) {
        self.frontend = frontend
        self.decision = decision
        self.reason = reason
    }
}
