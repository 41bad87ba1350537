import Histogram

/// One event loop's live numbers for one server: totals since start, and a sliding window of
/// response times and outcomes for rates and percentiles.
///
/// Recorded on the owning loop only (no locks, no atomics); readers ask each loop for a
/// `snapshot(now:)` and `merge` them (`ServerMetricsSnapshot`). The window is a ring of
/// `slotCount` slots of `slotNanoseconds` each; a slot is cleared when time comes round to
/// it again, so a snapshot covers the current slot plus the previous `slotCount - 1` ones.
///
/// Not thread-safe: one instance per server and event loop.
package final class ServerMetrics {
    /// How an exchange with the server ended.
    package enum Outcome: Sendable, Equatable {
        /// A response head arrived with this status.
        case response(status: UInt)
        /// A `mode: tcp` connection was made: a request that succeeded, whose response time
        /// is the connect's.
        case connected
        /// No connection could be made.
        case connectFailure
        /// The server did not answer within the response timeout.
        case timeout
        /// The connection closed before a response head.
        case noResponse
    }

    package static let slotNanoseconds: UInt64 = 5_000_000_000
    package static let slotCount = 4
    /// Weight of the newest response time in `ewma`.
    package static let ewmaAlpha = 0.1

    private var slots: [Slot]
    private var totals = ServerMetricsSnapshot.Totals()
    private var ewmaMicroseconds: Double?

    struct Slot {
        /// `now / slotNanoseconds` of the period this slot holds; slots of other periods are stale.
        var period: UInt64 = .max
        var requests = 0
        var errors = 0
        /// Created with the slot's first use: a server that gets no traffic costs no histograms.
        var latencies: Histogram<UInt32>?

        mutating func reset(period: UInt64) {
            self.period = period
            requests = 0
            errors = 0
            if latencies == nil {
                latencies = ServerMetricsSnapshot.makeHistogram()
            } else {
                latencies!.reset()
            }
        }
    }

    package init() {
        slots = Array(repeating: Slot(), count: Self.slotCount)
    }

    /// Records one exchange at `now` (monotonic nanoseconds); `responseNanoseconds` is the
    /// time from choosing the server to the response head (ignored for outcomes without one).
    package func record(_ outcome: Outcome, responseNanoseconds: Int64, now: UInt64) {
        let period = now / Self.slotNanoseconds
        let index = Int(period % UInt64(Self.slotCount))
        if slots[index].period != period { slots[index].reset(period: period) }
        slots[index].requests += 1
        totals.requests += 1
        let isError: Bool
        switch outcome {
        case .response, .connected:
            let status = if case .response(let status) = outcome { status } else { UInt(0) }
            isError = status >= 500
            if isError { totals.responses5xx += 1 }
            let microseconds = UInt64(max(responseNanoseconds / 1000, 1))
            _ = slots[index].latencies!.record(min(microseconds, ServerMetricsSnapshot.highestMicroseconds))
            let sample = Double(microseconds)
            ewmaMicroseconds = ewmaMicroseconds.map { $0 + Self.ewmaAlpha * (sample - $0) } ?? sample
        case .connectFailure:
            isError = true
            totals.connectFailures += 1
        case .timeout:
            isError = true
            totals.timeouts += 1
        case .noResponse:
            isError = true
            totals.noResponses += 1
        }
        if isError { slots[index].errors += 1 }
    }

    /// What this loop saw: totals, and the slots still inside the window at `now`.
    package func snapshot(now: UInt64) -> ServerMetricsSnapshot {
        let current = now / Self.slotNanoseconds
        var snapshot = ServerMetricsSnapshot()
        snapshot.totals = totals
        for slot in slots where slot.period <= current && current - slot.period < UInt64(Self.slotCount) {
            snapshot.windowRequests += slot.requests
            snapshot.windowErrors += slot.errors
            if let latencies = slot.latencies { snapshot.latencies.add(latencies) }
        }
        // The window runs from the start of its oldest slot to now.
        let windowStart = (current + 1 - UInt64(Self.slotCount)) * Self.slotNanoseconds
        snapshot.windowNanoseconds = now - min(windowStart, now)
        if let ewma = ewmaMicroseconds {
            snapshot.ewmaSum = ewma * Double(max(snapshot.windowRequests, 1))
            snapshot.ewmaWeight = Double(max(snapshot.windowRequests, 1))
        }
        return snapshot
    }
}

/// Live numbers for one server, merged from every event loop's `ServerMetrics`.
package struct ServerMetricsSnapshot: Sendable {
    /// Counts since the server was configured.
    package struct Totals: Sendable, Equatable {
        package var requests = 0
        package var responses5xx = 0
        package var connectFailures = 0
        package var timeouts = 0
        /// Connections that closed before a response head.
        package var noResponses = 0

        /// 5xx responses, connect failures, timeouts and missing responses.
        package var errors: Int { responses5xx + connectFailures + timeouts + noResponses }
    }

    static let highestMicroseconds: UInt64 = 3_600_000_000

    static func makeHistogram() -> Histogram<UInt32> {
        // 1 µs … 1 h at two significant digits (≈ 1 % error), 13 KB.
        Histogram<UInt32>(highestTrackableValue: highestMicroseconds, numberOfSignificantValueDigits: .two)
    }

    package var totals = Totals()
    /// Exchanges and failed exchanges in the window.
    package var windowRequests = 0
    package var windowErrors = 0
    /// The window's length (the same on every loop: they share the clock).
    package var windowNanoseconds: UInt64 = 0
    /// Response times in the window, in microseconds.
    package var latencies = makeHistogram()
    /// Each loop's EWMA weighted by its share of the window's requests.
    var ewmaSum = 0.0
    var ewmaWeight = 0.0

    package init() {}

    /// Adds another loop's numbers for the same server.
    package mutating func merge(_ other: ServerMetricsSnapshot) {
        totals.requests += other.totals.requests
        totals.responses5xx += other.totals.responses5xx
        totals.connectFailures += other.totals.connectFailures
        totals.timeouts += other.totals.timeouts
        totals.noResponses += other.totals.noResponses
        windowRequests += other.windowRequests
        windowErrors += other.windowErrors
        windowNanoseconds = max(windowNanoseconds, other.windowNanoseconds)
        latencies.add(other.latencies)
        ewmaSum += other.ewmaSum
        ewmaWeight += other.ewmaWeight
    }

    /// Exchanges per second over the window.
    package var requestRate: Double {
        windowNanoseconds == 0 ? 0 : Double(windowRequests) / (Double(windowNanoseconds) / 1e9)
    }

    /// Failed exchanges ÷ exchanges over the window (0 without traffic).
    package var errorRate: Double {
        windowRequests == 0 ? 0 : Double(windowErrors) / Double(windowRequests)
    }

    /// The response-time EWMA in milliseconds; nil before the first response.
    package var ewmaMilliseconds: Double? {
        ewmaWeight == 0 ? nil : ewmaSum / ewmaWeight / 1000
    }

    /// A response-time percentile over the window in milliseconds; nil without responses.
    package func percentileMilliseconds(_ percentile: Double) -> Double? {
        latencies.totalCount == 0 ? nil : Double(latencies.valueAtPercentile(percentile)) / 1000
    }
}
