import FulcrumConfig

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Balancing by measured response time: each pick goes to the eligible server with the lowest
/// expected cost, `response time × (requests in flight + 1) / weight`.
///
/// Two algorithms share this type and differ only in how the response time is averaged:
///
/// - `least_response_time`: a time-decayed moving average of response times.
/// - `peak_ewma`: the same average, but a sample above it replaces it at once (Finagle's and
///   Linkerd's "peak EWMA"), so a server that turns slow loses traffic after one slow
///   response and wins it back gradually.
///
/// Failures (connect errors, timeouts, 5xx) count as a response of `failurePenalty`, so a
/// failing server is steered away from like a very slow one, and retried as the penalty decays.
///
/// A server without samples yet is costed at the slowest measured server's time, so new or
/// returning servers get traffic without being flooded before their first response.
/// Ties are broken round robin (the scan starts after the last pick). Response times are
/// observed per event loop (this instance), in-flight counts across loops (`BalancedServer`).
///
/// Not thread-safe: one instance per event loop.
package final class LatencyAware: LoadBalancingAlgorithm {
    package let name: AlgorithmName
    private let followsPeaks: Bool
    private let decay: Double
    private let failurePenalty: Double
    private var averages: [ResponseTimeAverage] = []
    private var nextIndex = 0

    /// - Parameters:
    ///   - name: `.leastResponseTime` or `.peakEWMA`.
    ///   - decay: how fast old samples lose weight (the time after which they count 1/e).
    ///   - failurePenalty: the response time a failure counts as.
    package init(name: AlgorithmName, decay: Duration = .seconds(10), failurePenalty: Duration = .seconds(1)) {
        precondition(name == .leastResponseTime || name == .peakEWMA, "not a latency-aware algorithm: \(name)")
        self.name = name
        self.followsPeaks = name == .peakEWMA
        self.decay = Self.nanoseconds(decay)
        self.failurePenalty = Self.nanoseconds(failurePenalty)
    }

    package var observesResponses: Bool { true }

    package func observe(serverIndex: Int, responseNanoseconds: Int64, failed: Bool, now: UInt64) {
        guard serverIndex >= 0 else { return }
        if serverIndex >= averages.count {
            averages.append(contentsOf: repeatElement(ResponseTimeAverage(), count: serverIndex + 1 - averages.count))
        }
        let sample = failed ? max(failurePenalty, Double(responseNanoseconds)) : Double(max(responseNanoseconds, 0))
        averages[serverIndex].add(sample, at: now, decay: decay, followsPeaks: followsPeaks)
    }

    /// The response time this loop currently expects from the server at `index`, in
    /// nanoseconds (nil before its first sample).
    package func expectedResponseNanoseconds(of index: Int, now: UInt64) -> Double? {
        guard index < averages.count, averages[index].hasSamples else { return nil }
        return averages[index].current(at: now, decay: decay)
    }

    package func pick(from servers: [BalancedServer], excluding excluded: ServerIndexSet) -> Int? {
        pick(from: servers, excluding: excluded, now: Self.clock())
    }

    /// `pick` at a given time (tests inject it).
    package func pick(from servers: [BalancedServer], excluding excluded: ServerIndexSet, now: UInt64) -> Int? {
        let count = servers.count
        guard count > 0 else { return nil }
        let unsampledTime = slowestMeasured(count: count, now: now)
        for tier in [WeightTier.weighted, .backup] {
            var best = -1
            var bestCost = Double.infinity
            var index = nextIndex < count ? nextIndex : 0
            for _ in 0..<count {
                let server = servers[index]
                let weight = server.effectiveWeight
                if tier.includes(weight: weight), server.isEligible(at: index, excluding: excluded) {
                    let cost = cost(of: server, at: index, in: tier, unsampledTime: unsampledTime, now: now)
                    if cost < bestCost {
                        best = index
                        bestCost = cost
                    }
                }
                index = index + 1 == count ? 0 : index + 1
            }
            if best >= 0 {
                nextIndex = best + 1 == count ? 0 : best + 1
                return best
            }
        }
        return nil
    }

    /// Whether picking `candidate` would cost more than `factor` times the cheapest eligible
    /// server of its tier, by this algorithm's own cost (`response time × (in flight + 1) /
    /// weight`). The adaptive mode's rotation guard asks this of each rotation pick.
    package func isOutOfLine(_ candidate: Int, in servers: [BalancedServer], excluding excluded: ServerIndexSet, factor: Double, now: UInt64) -> Bool
    {
        let count = servers.count
        guard candidate < count else { return false }
        let tier: WeightTier = servers[candidate].weight > 0 ? .weighted : .backup
        let unsampledTime = slowestMeasured(count: count, now: now)
        var cheapest = Double.infinity
        for index in 0..<count where tier.includes(weight: servers[index].weight) && servers[index].isEligible(at: index, excluding: excluded) {
            cheapest = min(cheapest, cost(of: servers[index], at: index, in: tier, unsampledTime: unsampledTime, now: now))
        }
        let candidateCost = cost(of: servers[candidate], at: candidate, in: tier, unsampledTime: unsampledTime, now: now)
        return cheapest.isFinite && candidateCost > factor * cheapest
    }

    /// What picking the server at `index` is expected to cost: `response time × (in flight +
    /// 1) / weight`, a server without samples taken at `unsampledTime`.
    @inline(__always)
    private func cost(of server: BalancedServer, at index: Int, in tier: WeightTier, unsampledTime: Double, now: UInt64) -> Double {
        let time =
            index < averages.count && averages[index].hasSamples
            ? averages[index].current(at: now, decay: decay)
            : unsampledTime
        // +1 ns keeps idle servers with a decayed-to-zero time comparable by load.
        return (time + 1) * Double(server.inFlight + 1) / Double(tier.effectiveWeight(server.effectiveWeight))
    }

    private func slowestMeasured(count: Int, now: UInt64) -> Double {
        var slowest = 0.0
        for index in 0..<min(count, averages.count) where averages[index].hasSamples {
            slowest = max(slowest, averages[index].current(at: now, decay: decay))
        }
        return slowest
    }

    private static func nanoseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1e9 + Double(duration.components.attoseconds) / 1e9
    }

    static func clock() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}

// Per-event-loop state without synchronisation: must not cross threads.
@available(*, unavailable)
extension LatencyAware: Sendable {}
