#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// A server's response time as a time-decayed moving average, the measure the latency-aware
/// algorithms balance by.
///
/// Samples are weighted by how recent they are, not by how many came: after a pause of
/// `decay` the old average counts for 1/e. Reading decays it too (towards zero), so a
/// server that was slow and then got no traffic is tried again after a while instead of being
/// avoided for ever — as Finagle's and Linkerd's peak EWMA do.
///
/// With `followsPeaks`, a sample above the average replaces it at once (peak EWMA): one slow
/// response is enough to steer traffic away, while recovery is gradual.
struct ResponseTimeAverage {
    /// Nanoseconds; 0 until the first sample.
    private(set) var value: Double = 0
    private var lastUpdate: UInt64 = 0

    var hasSamples: Bool { lastUpdate != 0 }

    mutating func add(_ sample: Double, at now: UInt64, decay: Double, followsPeaks: Bool) {
        guard hasSamples else {
            value = sample
            lastUpdate = max(now, 1)
            return
        }
        if followsPeaks, sample > value {
            value = sample
        } else {
            let weight = Self.weight(elapsed: now, since: lastUpdate, decay: decay)
            value = value * weight + sample * (1 - weight)
        }
        lastUpdate = max(now, lastUpdate)
    }

    /// The average as of `now`, decayed towards zero for the time without samples.
    func current(at now: UInt64, decay: Double) -> Double {
        value * Self.weight(elapsed: now, since: lastUpdate, decay: decay)
    }

    private static func weight(elapsed now: UInt64, since last: UInt64, decay: Double) -> Double {
        guard now > last else { return 1 }
        return exp(-Double(now - last) / decay)
    }
}
