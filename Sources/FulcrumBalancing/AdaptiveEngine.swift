import FulcrumConfig

/// The decision engine of `algorithm: adaptive`: a pure function of the window's metrics,
/// the backend's state and the time.
///
/// **What it reads.** Each algorithm fixes one dimension of the servers and leaves another
/// free, and the engine only reads the free one: a state its own choice created is not a
/// property of the servers. Rotation fixes every server's share, so a server's limits show
/// in its latency and its queue. A load-aware algorithm (`peak_ewma`, `least_connections`)
/// evens out latency and queues, so a server's capacity shows in the *share* it is given: a
/// server that `peak_ewma` keeps at a third of an equal share cannot take an equal share.
///
/// **Rules**, first match wins (thresholds in `AdaptiveOptions`, the backend's `adaptive:`):
///
/// 1. pinned → keep;
/// 2. fewer than `minimumRequests` in the window → keep;
/// 3. a server's error rate ≥ `errorRate` while another's is below half of it → `peak_ewma`;
/// 4. a server holds requests and answered none in the window → `peak_ewma`;
/// 5. under rotation, the guard passed over a server in ≥ `guardedTurns` of its turns →
///    `peak_ewma`;
/// 6. slowest ÷ fastest p95 ≥ `latencySpread` → `peak_ewma`;
/// 7. busiest ÷ idlest weighted in-flight ≥ `inFlightImbalance` (not under a latency-aware
///    algorithm) → `least_connections`;
/// 8. rotation (`round_robin`, or `weighted_round_robin` when weights differ) only on evidence
///    of alike capacity; otherwise keep:
///    - a server a rule 3–7 named (a *suspect*) must first look alike its peers for one
///      `minSwitchInterval` in a row, twice as long at each relapse (`recovering`);
///    - under a load-aware algorithm every server must get ≥ `minimumShare` of an equal share
///      (`capacity`), and the p95s must lie within `alikeSpread` (`latency_spread`);
///    - and all that for `confirmingWindows` windows in a row (`confirming`).
///
/// For the algorithm in use, its rule's threshold is multiplied by `hysteresis`, so leaving
/// it takes a clear change. A switch sooner than `minSwitchInterval` after the last one is
/// held back (and recorded as such); meanwhile `AdaptiveAlgorithm`'s rotation guard keeps
/// traffic off a server out of line.
package enum AdaptiveEngine {
    /// p95s within this factor of each other are alike (to enter rotation, and for a suspect
    /// to count as recovered).
    package static let alikeSpread = 1.5
    /// Under a load-aware algorithm, a server given less than this share of an equal share has
    /// less capacity than its peers.
    package static let minimumShare = 0.75
    /// Windows in a row that must show the servers alike before a load-aware algorithm gives
    /// way to rotation.
    package static let confirmingWindows = 3
    /// From this part of a server's turns passed over by the rotation guard, rotation is left.
    package static let guardedTurns = 0.2
    /// A server blamed again within this many switch intervals of its recovery has relapsed.
    package static let relapseMemoryIntervals = 10

    package static func evaluate(
        backend: String,
        servers: [ServerWindow],
        state: inout AdaptiveState,
        now: ContinuousClock.Instant,
        settings: AdaptiveOptions = AdaptiveOptions()
    ) -> AdaptiveDecision {
        let current = state.algorithm
        let answered = Dictionary(servers.map { ($0.name, $0.requests) }, uniquingKeysWith: +)
        let servers = state.carryOver(withShares(servers))
        state.forgetServers(notIn: Set(servers.map(\.name)))
        var verdict = judge(servers: servers, answered: answered, state: &state, now: now, settings: settings)
        if verdict.target != current, let lastSwitch = state.lastSwitch, now - lastSwitch < settings.minSwitchInterval {
            verdict.reason =
                "held by min_switch_interval: would switch to \(verdict.target.rawValue) (\(verdict.reason)), "
                + "but the last switch was \(format(seconds: now - lastSwitch)) ago < \(format(seconds: settings.minSwitchInterval))"
                + (current.isRotation ? "; the rotation guard keeps traffic off servers out of line meanwhile" : "")
            verdict.target = current
            verdict.rule = .minSwitchInterval
        }
        let explanation =
            verdict.target == current
            ? "\(backend) keeps \(current.rawValue): \(verdict.reason)"
            : "\(backend) \(current.rawValue) → \(verdict.target.rawValue): \(verdict.reason)"
        let decision = AdaptiveDecision(
            time: now,
            backend: backend,
            from: current,
            to: verdict.target,
            rule: verdict.rule,
            explanation: explanation,
            inputs: servers
        )
        state.record(decision)
        return decision
    }

    /// What the rules say, before the switch interval has its word.
    private struct Verdict {
        var target: AlgorithmName
        var rule: AdaptiveRule
        var reason: String
    }

    private static func judge(
        servers allServers: [ServerWindow],
        answered: [String: Int],
        state: inout AdaptiveState,
        now: ContinuousClock.Instant,
        settings: AdaptiveOptions
    ) -> Verdict {
        let current = state.algorithm
        if state.isPinned { return Verdict(target: current, rule: .pinned, reason: "pinned by an operator") }
        let servers = allServers.filter(\.inRotation)
        let total = servers.reduce(0) { $0 + ($1.carriedOver ? 0 : $1.requests) }
        if total < settings.minimumRequests || servers.count < 2 {
            return Verdict(target: current, rule: .insufficientData, reason: "\(total) requests over \(servers.count) servers is too little to judge")
        }
        let relapseMemory = settings.minSwitchInterval * relapseMemoryIntervals
        if let (verdict, blamed) = ruleOutOfRotation(servers: servers, answered: answered, current: current, settings: settings) {
            state.blame(blamed, rule: verdict.rule, at: now, relapseMemory: relapseMemory)
            for name in state.suspects.keys where name != blamed {
                state.observeSuspect(name, clean: false, at: now, minSwitchInterval: settings.minSwitchInterval)
            }
            state.alikeWindows = 0
            return verdict
        }
        for server in servers where state.suspects[server.name] != nil {
            let clean = looksAlike(server, among: servers, answered: answered, current: current, settings: settings)
            state.observeSuspect(server.name, clean: clean, at: now, minSwitchInterval: settings.minSwitchInterval)
        }
        return rotationVerdict(servers: servers, state: &state, now: now, settings: settings)
    }

    /// Rules 3–7: evidence that some server cannot take its share, with the server to blame.
    private static func ruleOutOfRotation(
        servers: [ServerWindow],
        answered: [String: Int],
        current: AlgorithmName,
        settings: AdaptiveOptions
    ) -> (Verdict, blamed: String)? {
        func threshold(_ base: Double, for algorithm: AlgorithmName) -> Double {
            current == algorithm ? base * settings.hysteresis : base
        }

        // 3. Errors concentrated on some servers.
        let measured = servers.filter { $0.requests > 0 }
        if let worst = measured.max(by: { $0.errorRate < $1.errorRate }),
            let best = measured.min(by: { $0.errorRate < $1.errorRate })
        {
            let limit = threshold(settings.errorRate, for: .peakEWMA)
            if worst.errorRate >= limit, best.errorRate < worst.errorRate / 2 {
                let reason =
                    "error rate \(percent(worst.errorRate)) on \(worst.name) vs \(percent(best.errorRate)) on \(best.name) ≥ \(percent(limit))"
                return (Verdict(target: .peakEWMA, rule: .errorRate, reason: reason), worst.name)
            }
        }

        // 4. A server that holds requests and answered none in the window has turned slow:
        // its latency is known to exceed the window before its first slow answer arrives.
        if let silent = servers.filter({ answered[$0.name] == 0 && $0.meanInFlight >= 2 }).max(by: { $0.meanInFlight < $1.meanInFlight }) {
            let reason = "\(silent.name) holds \(Int(silent.meanInFlight.rounded())) requests and answered none in the window"
            return (Verdict(target: .peakEWMA, rule: .latencySpread, reason: reason), silent.name)
        }

        // 5. The rotation guard passed over a server for a good part of its turns: rotation is
        // not working for it (its answers may be too few to show its latency yet).
        if current.isRotation,
            let passed = servers.filter({ $0.guarded >= AdaptiveState.minimumServerRequests })
                .max(by: { guardedShare($0, answered) < guardedShare($1, answered) }),
            guardedShare(passed, answered) >= guardedTurns
        {
            let reason =
                "the rotation guard passed over \(passed.name) in \(percent(guardedShare(passed, answered))) of its turns"
                + " ≥ \(percent(guardedTurns))"
            return (Verdict(target: .peakEWMA, rule: .latencySpread, reason: reason), passed.name)
        }

        // 6. Latency spread.
        let timed = servers.compactMap { server in server.p95Milliseconds.map { (server.name, max($0, 0.001)) } }
        if timed.count >= 2, let slow = timed.max(by: { $0.1 < $1.1 }), let fast = timed.min(by: { $0.1 < $1.1 }) {
            let spread = slow.1 / fast.1
            let limit = threshold(settings.latencySpread, for: .peakEWMA)
            if spread >= limit {
                let reason = "p95 spread \(ratio(spread)) (\(slow.0) \(milliseconds(slow.1)) vs \(fast.0) \(milliseconds(fast.1))) ≥ \(ratio(limit))"
                return (Verdict(target: .peakEWMA, rule: .latencySpread, reason: reason), slow.0)
            }
        }

        // 7. Uneven load — among servers that answered or hold requests, and not under a
        // latency-aware algorithm: those weigh in-flight requests already, and the imbalance
        // may be their own doing (steering around a slow or failing server).
        let latencyAware = current == .peakEWMA || current == .leastResponseTime
        let loads = servers.filter { $0.meanInFlight > 0 || !$0.carriedOver && $0.requests > 0 }
            .map { ($0.name, $0.meanInFlight / Double(max($0.weight, 1)) + 1) }
        if !latencyAware, loads.count >= 2, let busy = loads.max(by: { $0.1 < $1.1 }), let idle = loads.min(by: { $0.1 < $1.1 }) {
            let imbalance = busy.1 / idle.1
            let limit = threshold(settings.inFlightImbalance, for: .leastConnections)
            if imbalance >= limit {
                let reason = "in-flight imbalance \(ratio(imbalance)) (\(busy.0) vs \(idle.0)) ≥ \(ratio(limit))"
                return (Verdict(target: .leastConnections, rule: .unevenLoad, reason: reason), busy.0)
            }
        }
        return nil
    }

    /// Rule 8: rotation, when the evidence says every server can take an equal share.
    private static func rotationVerdict(
        servers: [ServerWindow],
        state: inout AdaptiveState,
        now: ContinuousClock.Instant,
        settings: AdaptiveOptions
    ) -> Verdict {
        let current = state.algorithm
        let equalWeights = Set(servers.map(\.weight)).count == 1
        let rotation: AlgorithmName = equalWeights ? .roundRobin : .weightedRoundRobin
        let timed = servers.compactMap(\.p95Milliseconds).map { max($0, 0.001) }
        let spread = timed.count >= 2 ? timed.max()! / timed.min()! : 1
        // Leaving rotation stays an unsafe way out: from rotation, an unproven suspect means
        // the load-aware fallback; otherwise the algorithm in use is kept.
        let fallback: AlgorithmName = current.isRotation || current == .random ? .peakEWMA : current

        // A suspect out of rotation (drained, down) takes nothing from a rotation of the others;
        // it stays a suspect for when it returns.
        let inRotation = Set(servers.map(\.name))
        if let (name, suspect) = state.suspects.filter({ inRotation.contains($0.key) }).min(by: { $0.key < $1.key }) {
            state.alikeWindows = 0
            let proof = suspect.requiredProof(minSwitchInterval: settings.minSwitchInterval)
            let shown = suspect.cleanSince.map { now - $0 } ?? .zero
            let reason =
                "\(name) has not shown it recovered (named by \(suspect.rule.rawValue), strike \(suspect.strikes)): "
                + "alike its peers for \(format(seconds: shown)) of the \(format(seconds: proof)) it must show"
            return Verdict(target: fallback, rule: .recovering, reason: reason)
        }
        if current.isLoadAware, let least = servers.filter({ $0.share != nil }).min(by: { $0.share! < $1.share! }),
            let share = least.share, share < minimumShare
        {
            state.alikeWindows = 0
            let reason =
                "\(least.name) takes \(percent(share)) of an equal share under \(current.rawValue) "
                + "(less capacity than its peers) < \(percent(minimumShare))"
            return Verdict(target: current, rule: .capacity, reason: reason)
        }
        if !current.isRotation, spread >= alikeSpread {
            state.alikeWindows = 0
            return Verdict(
                target: current,
                rule: .latencySpread,
                reason: "p95 spread \(ratio(spread)) ≥ \(ratio(alikeSpread)): not alike enough for rotation"
            )
        }
        state.alikeWindows += 1
        if !current.isRotation, state.alikeWindows < confirmingWindows {
            return Verdict(
                target: current,
                rule: .confirming,
                reason: "servers alike (p95 spread \(ratio(spread)), equal shares) for \(state.alikeWindows) of \(confirmingWindows) windows"
            )
        }
        return Verdict(target: rotation, rule: .uniform, reason: "servers alike (p95 spread \(ratio(spread)), no error or load outliers)")
    }

    /// Whether a suspect looked like its peers in this window: measured afresh, as fast, as
    /// reliable, and (under a load-aware algorithm) given an equal share.
    private static func looksAlike(
        _ server: ServerWindow,
        among servers: [ServerWindow],
        answered: [String: Int],
        current: AlgorithmName,
        settings: AdaptiveOptions
    ) -> Bool {
        guard !server.carriedOver, (answered[server.name] ?? 0) >= AdaptiveState.minimumServerRequests,
            let p95 = server.p95Milliseconds
        else { return false }
        let fastest = servers.compactMap(\.p95Milliseconds).min() ?? p95
        if p95 > alikeSpread * max(fastest, 0.001) { return false }
        if server.errorRate >= settings.errorRate / 2 { return false }
        if current.isLoadAware, let share = server.share, share < minimumShare { return false }
        return true
    }

    /// The part of a server's rotation turns the guard passed over.
    private static func guardedShare(_ server: ServerWindow, _ answered: [String: Int]) -> Double {
        Double(server.guarded) / Double(max(server.guarded + (answered[server.name] ?? 0), 1))
    }

    /// Each server's completed requests per weight, relative to the mean of the servers in
    /// rotation.
    private static func withShares(_ servers: [ServerWindow]) -> [ServerWindow] {
        let inRotation = servers.filter(\.inRotation)
        let perWeight = inRotation.map { Double($0.requests) / Double(max($0.weight, 1)) }
        let mean = perWeight.reduce(0, +) / Double(max(perWeight.count, 1))
        return servers.map { server in
            var server = server
            server.share = server.inRotation && mean > 0 ? Double(server.requests) / Double(max(server.weight, 1)) / mean : nil
            return server
        }
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
        let seconds = duration.components.seconds
        let milliseconds = duration.components.attoseconds / 1_000_000_000_000_000
        return seconds == 0 && milliseconds > 0 ? "\(milliseconds)ms" : "\(seconds)s"
    }
}
