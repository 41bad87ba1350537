import FulcrumConfig

/// A server the engine holds responsible for leaving (or not entering) rotation, until it
/// shows it recovered.
package struct AdaptiveSuspect: Sendable, Equatable {
    /// The rule that named it last.
    package var rule: AdaptiveRule
    /// How many times it became a suspect, counting relapses soon after a recovery: each
    /// relapse doubles the proof it must give.
    package var strikes: Int
    /// Since when every window showed it alike its peers (nil: the last window did not).
    package var cleanSince: ContinuousClock.Instant?

    /// How long it must look alike its peers before rotation may come back: one switch
    /// interval, doubled at each relapse, at most 16 of them.
    package func requiredProof(minSwitchInterval: Duration) -> Duration {
        minSwitchInterval * (1 << min(max(strikes - 1, 0), 4))
    }
}

/// A backend's adaptive state: the algorithm in use, whether it is pinned, the recent
/// decisions and the evidence that outlives a window. Changed only by
/// `AdaptiveEngine.evaluate` and the manual controls below.
package struct AdaptiveState: Sendable, Equatable {
    package static let historyLimit = 100

    package private(set) var algorithm: AlgorithmName
    package private(set) var isPinned = false
    package private(set) var lastSwitch: ContinuousClock.Instant?
    /// The most recent decisions, oldest first (at most `historyLimit`).
    package private(set) var history: [AdaptiveDecision] = []
    /// The most recent switches, oldest first (at most `historyLimit`): with frequent
    /// evaluations, `history` soon holds only decisions to keep.
    package private(set) var switches: [AdaptiveDecision] = []
    /// Each server's last window with requests. A server the current algorithm steers
    /// around may get no request in a window; its last measurement stands for it then
    /// (otherwise avoiding a slow or failing server would look like it had recovered).
    package private(set) var lastMeasured: [String: ServerWindow] = [:]
    /// Servers a rule named (slow, failing, overloaded), by name, until they prove recovery.
    package internal(set) var suspects: [String: AdaptiveSuspect] = [:]
    /// Servers that recovered, with their strikes and when: a relapse soon after counts as
    /// another strike.
    var recovered: [String: Recovery] = [:]
    /// Windows in a row that showed the servers alike (windows with too little traffic to
    /// judge neither add nor break the run).
    package internal(set) var alikeWindows = 0

    /// Starts with `algorithm`: `peak_ewma` by default, because it is safe when nothing is
    /// known yet (it measures every server and steers by what it sees); rotation must be
    /// earned by evidence that the servers are alike.
    package init(algorithm: AlgorithmName = .peakEWMA) {
        self.algorithm = algorithm
    }

    /// Switches by hand (admin API); `pin` stops the engine from switching until `unpin()`.
    package mutating func select(_ algorithm: AlgorithmName, pin: Bool, at now: ContinuousClock.Instant) {
        if algorithm != self.algorithm {
            self.algorithm = algorithm
            lastSwitch = now
            alikeWindows = 0
        }
        isPinned = pin
    }

    /// Lets the engine choose again.
    package mutating func unpin() {
        isPinned = false
    }

    /// A server with fewer requests than this in a window is judged by its last measurement
    /// (a few probe requests to an avoided server say little about it).
    package static let minimumServerRequests = 5

    /// Stands in the last measurement for servers with too few requests in this window, and
    /// remembers the new ones.
    mutating func carryOver(_ servers: [ServerWindow]) -> [ServerWindow] {
        servers.map { server in
            if server.requests >= Self.minimumServerRequests || (server.requests > 0 && lastMeasured[server.name] == nil) {
                lastMeasured[server.name] = server
                return server
            }
            guard var last = lastMeasured[server.name] else { return server }
            last.weight = server.weight
            last.meanInFlight = server.meanInFlight
            last.inRotation = server.inRotation
            last.share = server.share
            last.guarded = server.guarded
            last.carriedOver = true
            return last
        }
    }

    /// Names `server` as the reason rotation is unsafe.
    mutating func blame(_ server: String, rule: AdaptiveRule, at now: ContinuousClock.Instant, relapseMemory: Duration) {
        if var suspect = suspects[server] {
            suspect.rule = rule
            suspect.cleanSince = nil
            suspects[server] = suspect
            return
        }
        var strikes = 1
        if let earlier = recovered.removeValue(forKey: server), now - earlier.at < relapseMemory {
            strikes = earlier.strikes + 1
        }
        suspects[server] = AdaptiveSuspect(rule: rule, strikes: strikes, cleanSince: nil)
    }

    /// Records a window in which `server`, a suspect, looked alike its peers (`clean`) or not;
    /// clears it once it has looked alike for its required proof.
    mutating func observeSuspect(_ server: String, clean: Bool, at now: ContinuousClock.Instant, minSwitchInterval: Duration) {
        guard var suspect = suspects[server] else { return }
        guard clean else {
            suspect.cleanSince = nil
            suspects[server] = suspect
            return
        }
        let since = suspect.cleanSince ?? now
        suspect.cleanSince = since
        if now - since >= suspect.requiredProof(minSwitchInterval: minSwitchInterval) {
            suspects[server] = nil
            recovered[server] = Recovery(strikes: suspect.strikes, at: now)
        } else {
            suspects[server] = suspect
        }
    }

    /// Forgets suspects that are no longer servers of the backend (a reload removed them).
    mutating func forgetServers(notIn names: Set<String>) {
        suspects = suspects.filter { names.contains($0.key) }
        recovered = recovered.filter { names.contains($0.key) }
    }

    mutating func record(_ decision: AdaptiveDecision) {
        if decision.switched {
            algorithm = decision.to
            lastSwitch = decision.time
            switches.append(decision)
            if switches.count > Self.historyLimit { switches.removeFirst(switches.count - Self.historyLimit) }
        }
        history.append(decision)
        if history.count > Self.historyLimit { history.removeFirst(history.count - Self.historyLimit) }
    }

    struct Recovery: Sendable, Equatable {
        var strikes: Int
        var at: ContinuousClock.Instant
    }
}
