import Histogram

/// What one event loop saw of one server during an evaluation window of the adaptive mode:
/// plain counters and a latency histogram, owned by the loop (no locks), merged across
/// loops when the window closes.
package struct ServerWindowCounts: Sendable {
    package private(set) var requests = 0
    package private(set) var failures = 0
    /// Rotation picks the adaptive mode's guard passed over (the server cost too much).
    package internal(set) var guarded = 0
    /// Requests in flight at the server, summed at each response (for their mean).
    private var inFlightSum = 0
    /// Response times in microseconds, 1 µs … 1 h at two significant digits (≈ 1 % error).
    private var latencies = Histogram<UInt32>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .two)

    package init() {}

    mutating func record(responseNanoseconds: Int64, failed: Bool, inFlight: Int) {
        requests += 1
        if failed { failures += 1 }
        inFlightSum += inFlight
        _ = latencies.record(UInt64(max(responseNanoseconds / 1000, 1)))
    }

    /// Adds another loop's counts for the same server and window.
    package mutating func merge(_ other: ServerWindowCounts) {
        requests += other.requests
        failures += other.failures
        guarded += other.guarded
        inFlightSum += other.inFlightSum
        latencies.add(other.latencies)
    }

    /// The engine's view of these counts. `inFlightNow` stands in for the mean in flight when
    /// the server answered nothing in the window: a server that holds requests and answers
    /// none (it just turned slow) must not look idle.
    package func window(name: String, weight: Int, inFlightNow: Int = 0, inRotation: Bool = true) -> ServerWindow {
        var window = ServerWindow(
            name: name,
            weight: weight,
            requests: requests,
            failures: failures,
            p95Milliseconds: requests == 0 ? nil : Double(latencies.valueAtPercentile(95)) / 1000,
            meanInFlight: requests == 0 ? Double(inFlightNow) : Double(inFlightSum) / Double(requests)
        )
        window.inRotation = inRotation
        window.guarded = guarded
        return window
    }
}
