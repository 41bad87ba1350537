import FulcrumConfig

/// What the decision engine sees of one server over the last evaluation window.
public struct ServerWindow: Sendable, Equatable {
    public var name: String
    public var weight: Int
    /// Requests completed in the window.
    public var requests: Int
    /// Of those, failures: 5xx responses, connect errors, timeouts.
    public var failures: Int
    /// The window's 95th-percentile response time, in milliseconds; nil without responses.
    public var p95Milliseconds: Double?
    /// Requests in flight, averaged over the window.
    public var meanInFlight: Double
    /// The server answered too few requests in this window to judge it (the current algorithm
    /// may be steering around it): requests, failures and p95 are those of its last window
    /// with enough of them.
    public var carriedOver = false

    public init(name: String, weight: Int = 1, requests: Int, failures: Int = 0, p95Milliseconds: Double?, meanInFlight: Double = 0) {
        self.name = name
        self.weight = weight
        self.requests = requests
        self.failures = failures
        self.p95Milliseconds = p95Milliseconds
        self.meanInFlight = meanInFlight
    }

    public var errorRate: Double { requests == 0 ? 0 : Double(failures) / Double(requests) }
}

/// The rule behind a decision.
public enum AdaptiveRule: String, Sendable, Equatable {
    /// An operator pinned the algorithm; the engine does not change it.
    case pinned
    /// Too few requests in the window to judge.
    case insufficientData = "insufficient_data"
    /// Some servers fail much more often than others.
    case errorRate = "error_rate"
    /// Servers differ a lot in response time.
    case latencySpread = "latency_spread"
    /// Servers carry very different numbers of requests in flight.
    case unevenLoad = "uneven_load"
    /// Servers are alike: plain rotation is best (cheapest, fairest).
    case uniform
    /// Another algorithm would fit, but the last switch was too recent.
    case minSwitchInterval = "min_switch_interval"
}

/// One evaluation of the engine: what it saw, what it chose, and why.
public struct AdaptiveDecision: Sendable, Equatable {
    public var time: ContinuousClock.Instant
    public var backend: String
    public var from: AlgorithmName
    public var to: AlgorithmName
    public var rule: AdaptiveRule
    /// One line for logs and the admin API, e.g.
    /// `web round_robin → peak_ewma: p95 spread 8.3× (web2 212 ms vs web1 25 ms) > 3×`.
    public var explanation: String
    public var inputs: [ServerWindow]

    public var switched: Bool { from != to }
}

/// A backend's adaptive state: the algorithm in use, whether it is pinned, and the recent
/// decisions. Changed only by `AdaptiveEngine.evaluate` and the manual controls below.
public struct AdaptiveState: Sendable, Equatable {
    public static let historyLimit = 100

    public private(set) var algorithm: AlgorithmName
    public private(set) var isPinned = false
    public private(set) var lastSwitch: ContinuousClock.Instant?
    /// The most recent decisions, oldest first (at most `historyLimit`).
    public private(set) var history: [AdaptiveDecision] = []
    /// The most recent switches, oldest first (at most `historyLimit`): with frequent
    /// evaluations, `history` soon holds only decisions to keep.
    public private(set) var switches: [AdaptiveDecision] = []
    /// Each server's last window with requests. A server the current algorithm steers
    /// around may get no request in a window; its last measurement stands for it then
    /// (otherwise avoiding a slow or failing server would look like it had recovered).
    public private(set) var lastMeasured: [String: ServerWindow] = [:]

    public init(algorithm: AlgorithmName = .roundRobin) {
        self.algorithm = algorithm
    }

    /// Switches by hand (admin API); `pin` stops the engine from switching until `unpin()`.
    public mutating func select(_ algorithm: AlgorithmName, pin: Bool, at now: ContinuousClock.Instant) {
        if algorithm != self.algorithm {
            self.algorithm = algorithm
            lastSwitch = now
        }
        isPinned = pin
    }

    /// Lets the engine choose again.
    public mutating func unpin() {
        isPinned = false
    }

    /// A server with fewer requests than this in a window is judged by its last measurement
    /// (a few probe requests to an avoided server say little about it).
    public static let minimumServerRequests = 5

    /// Stands in the last measurement for servers with too few requests in this window, and
    /// remembers the new ones.
    fileprivate mutating func carryOver(_ servers: [ServerWindow]) -> [ServerWindow] {
        servers.map { server in
            if server.requests >= Self.minimumServerRequests || (server.requests > 0 && lastMeasured[server.name] == nil) {
                lastMeasured[server.name] = server
                return server
            }
            guard var last = lastMeasured[server.name] else { return server }
            last.weight = server.weight
            last.meanInFlight = server.meanInFlight
            last.carriedOver = true
            return last
        }
    }

    fileprivate mutating func record(_ decision: AdaptiveDecision) {
        if decision.switched {
            algorithm = decision.to
            lastSwitch = decision.time
            switches.append(decision)
            if switches.count > Self.historyLimit { switches.removeFirst(switches.count - Self.historyLimit) }
        }
        history.append(decision)
        if history.count > Self.historyLimit { history.removeFirst(history.count - Self.historyLimit) }
    }
}

/// The decision engine of `algorithm: adaptive`: a pure function of the window's metrics,
/// the backend's state and the time.
///
/// Rules, first match wins (thresholds in `AdaptiveOptions`, the backend's `adaptive:`):
///
/// 1. pinned → keep;
/// 2. fewer than `minimumRequests` in the window → keep;
/// 3. a server's error rate ≥ `errorRate` while another's is below half of it → `peak_ewma`;
/// 4. slowest p95 ÷ fastest p95 ≥ `latencySpread` → `peak_ewma`;
/// 5. busiest ÷ idlest weighted in-flight ≥ `inFlightImbalance` → `least_connections`;
/// 6. otherwise → `round_robin` (`weighted_round_robin` when weights differ).
///
/// For the algorithm in use, its rule's threshold is multiplied by `hysteresis`, so leaving
/// it takes a clear change. A switch sooner than `minSwitchInterval` after the last one is
/// held back (and recorded as such).
public enum AdaptiveEngine {
    public static func evaluate(
        backend: String,
        servers: [ServerWindow],
        state: inout AdaptiveState,
        now: ContinuousClock.Instant,
        settings: AdaptiveOptions = AdaptiveOptions()
    ) -> AdaptiveDecision {
        let current = state.algorithm
        let servers = state.carryOver(servers)
        var (target, rule, reason) = preferred(servers: servers, current: current, pinned: state.isPinned, settings: settings)
        if target != current, let lastSwitch = state.lastSwitch, now - lastSwitch < settings.minSwitchInterval {
            reason = "would switch to \(target.rawValue) (\(reason)), but the last switch was "
                + "\(format(seconds: now - lastSwitch)) ago < \(format(seconds: settings.minSwitchInterval))"
            target = current
            rule = .minSwitchInterval
        }
        let explanation = target == current
            ? "\(backend) keeps \(current.rawValue): \(reason)"
            : "\(backend) \(current.rawValue) → \(target.rawValue): \(reason)"
        let decision = AdaptiveDecision(
            time: now, backend: backend, from: current, to: target, rule: rule, explanation: explanation, inputs: servers
        )
        state.record(decision)
        return decision
    }

    private static func preferred(
        servers: [ServerWindow],
        current: AlgorithmName,
        pinned: Bool,
        settings: AdaptiveOptions
    ) -> (AlgorithmName, AdaptiveRule, String) {
        if pinned { return (current, .pinned, "pinned by an operator") }
        let total = servers.reduce(0) { $0 + ($1.carriedOver ? 0 : $1.requests) }
        if total < settings.minimumRequests || servers.count < 2 {
            return (current, .insufficientData, "\(total) requests over \(servers.count) servers is too little to judge")
        }
        func threshold(_ base: Double, for algorithm: AlgorithmName) -> Double {
            current == algorithm ? base * settings.hysteresis : base
        }

        // 3. Errors concentrated on some servers.
        let measured = servers.filter { $0.requests > 0 }
        if let worst = measured.max(by: { $0.errorRate < $1.errorRate }),
           let best = measured.min(by: { $0.errorRate < $1.errorRate }) {
            let limit = threshold(settings.errorRate, for: .peakEWMA)
            if worst.errorRate >= limit, best.errorRate < worst.errorRate / 2 {
                return (.peakEWMA, .errorRate, "error rate \(percent(worst.errorRate)) on \(worst.name) "
                    + "vs \(percent(best.errorRate)) on \(best.name) ≥ \(percent(limit))")
            }
        }

        // 4. Latency spread.
        let timed = servers.compactMap { server in server.p95Milliseconds.map { (server.name, max($0, 0.001)) } }
        if timed.count >= 2, let slow = timed.max(by: { $0.1 < $1.1 }), let fast = timed.min(by: { $0.1 < $1.1 }) {
            let spread = slow.1 / fast.1
            let limit = threshold(settings.latencySpread, for: .peakEWMA)
            if spread >= limit {
                return (.peakEWMA, .latencySpread, "p95 spread \(ratio(spread)) (\(slow.0) \(milliseconds(slow.1)) "
                    + "vs \(fast.0) \(milliseconds(fast.1))) ≥ \(ratio(limit))")
            }
        }

        // 5. Uneven load — among servers that answered or hold requests (a server that holds
        // requests and has answered none yet is the most loaded of all: a server turned slow
        // shows here before any of its slow answers arrives), and not under a latency-aware
        // algorithm: those weigh in-flight requests already, and the imbalance may be their
        // own doing (steering around a slow or failing server).
        let latencyAware = current == .peakEWMA || current == .leastResponseTime
        let loads = servers.filter { $0.meanInFlight > 0 || !$0.carriedOver && $0.requests > 0 }
            .map { ($0.name, $0.meanInFlight / Double(max($0.weight, 1)) + 1) }
        if !latencyAware, loads.count >= 2, let busy = loads.max(by: { $0.1 < $1.1 }), let idle = loads.min(by: { $0.1 < $1.1 }) {
            let imbalance = busy.1 / idle.1
            let limit = threshold(settings.inFlightImbalance, for: .leastConnections)
            if imbalance >= limit {
                return (.leastConnections, .unevenLoad, "in-flight imbalance \(ratio(imbalance)) (\(busy.0) vs \(idle.0)) ≥ \(ratio(limit))")
            }
        }

        // 6. Alike.
        let equalWeights = Set(servers.map(\.weight)).count == 1
        let rotation: AlgorithmName = equalWeights ? .roundRobin : .weightedRoundRobin
        let spread = timed.count >= 2 ? (timed.map(\.1).max()! / timed.map(\.1).min()!) : 1
        return (rotation, .uniform, "servers alike (p95 spread \(ratio(spread)), no error or load outliers)")
    }

    private static func ratio(_ value: Double) -> String {
        let tenths = (value * 10).rounded() / 10
        return tenths == tenths.rounded() ? "\(Int(tenths))×" : "\(tenths)×"
    }

    private static func percent(_ value: Double) -> String {
        "\(Int((value * 100).rounded()))%"
    }

    private static func milliseconds(_ value: Double) -> String {
        value >= 10 ? "\(Int(value.rounded())) ms" : "\((value * 10).rounded() / 10) ms"
    }

    private static func format(seconds duration: Duration) -> String {
        "\(duration.components.seconds)s"
    }
}

