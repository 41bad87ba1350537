import FulcrumConfig

/// What the decision engine sees of one server over the last evaluation window.
package struct ServerWindow: Sendable, Equatable {
    package var name: String
    package var weight: Int
    /// Requests completed in the window.
    package var requests: Int
    /// Of those, failures: 5xx responses, connect errors, timeouts.
    package var failures: Int
    /// The window's 95th-percentile response time, in milliseconds; nil without responses.
    package var p95Milliseconds: Double?
    /// Requests in flight, averaged over the window.
    package var meanInFlight: Double
    /// Whether the server could be picked when the window closed (not down, ejected, draining
    /// or in maintenance). Servers out of rotation are left out of the capacity comparison:
    /// no algorithm sends them anything.
    package var inRotation = true
    /// Rotation picks the adaptive mode's guard passed over this server in the window.
    package var guarded = 0
    /// The server answered too few requests in this window to judge it (the current algorithm
    /// may be steering around it): requests, failures and p95 are those of its last window
    /// with enough of them.
    package var carriedOver = false
    /// The requests it completed in *this* window per unit of weight, relative to the mean of
    /// the servers in rotation (1 = an equal share). Set by the engine before carrying over.
    package var share: Double?

    package init(name: String, weight: Int = 1, requests: Int, failures: Int = 0, p95Milliseconds: Double?, meanInFlight: Double = 0) {
        self.name = name
        self.weight = weight
        self.requests = requests
        self.failures = failures
        self.p95Milliseconds = p95Milliseconds
        self.meanInFlight = meanInFlight
    }

    package var errorRate: Double { requests == 0 ? 0 : Double(failures) / Double(requests) }
}

/// The rule behind a decision.
package enum AdaptiveRule: String, Sendable, Equatable {
    /// An operator pinned the algorithm; the engine does not change it.
    case pinned
    /// Too few requests in the window to judge.
    case insufficientData = "insufficient_data"
    /// Some servers fail much more often than others.
    case errorRate = "error_rate"
    /// Servers differ a lot in response time, or one holds requests and answers none.
    case latencySpread = "latency_spread"
    /// Servers carry very different numbers of requests in flight.
    case unevenLoad = "uneven_load"
    /// A load-aware algorithm gives some server much less than an equal share: its capacity is
    /// below its peers', so rotation would overload it.
    case capacity
    /// A server that made the engine leave rotation has not yet shown, for long enough, that
    /// it recovered.
    case recovering
    /// The servers look alike, but not yet for long enough to leave a load-aware algorithm.
    case confirming
    /// Servers are alike: plain rotation is best (cheapest, fairest).
    case uniform
    /// Another algorithm would fit, but the last switch was too recent.
    case minSwitchInterval = "min_switch_interval"
}

/// One evaluation of the engine: what it saw, what it chose, and why.
package struct AdaptiveDecision: Sendable, Equatable {
    package var time: ContinuousClock.Instant
    package var backend: String
    package var from: AlgorithmName
    package var to: AlgorithmName
    package var rule: AdaptiveRule
    /// One line for logs and the admin API, e.g.
    /// `web round_robin → peak_ewma: p95 spread 8.3× (web2 212 ms vs web1 25 ms) ≥ 3×`.
    package var explanation: String
    package var inputs: [ServerWindow]

    package var switched: Bool { from != to }
}

extension AlgorithmName {
    /// Round robin and its weighted form: they fix each server's share, so a server's limits
    /// show in its latency and its queue, never in its share.
    package var isRotation: Bool { self == .roundRobin || self == .weightedRoundRobin }

    /// Algorithms that pick by each server's load or latency: they fix neither share, so a
    /// server's capacity shows in the share they give it.
    package var isLoadAware: Bool {
        switch self {
        case .leastConnections, .powerOfTwo, .leastResponseTime, .peakEWMA: true
        case .roundRobin, .weightedRoundRobin, .random, .hash, .adaptive: false
        }
    }
}
