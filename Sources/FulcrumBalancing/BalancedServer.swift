import Synchronization

/// A server as the balancing algorithms see it: its identity plus the live state that every
/// event loop shares.
///
/// One `BalancedServer` exists per configured server for the lifetime of that server
/// (it survives reloads that keep the server), so counters, health and ejections carry over.
/// Everything the hot path reads is an atomic with relaxed ordering: each request touches the
/// in-flight counter once on start and once on finish and reads the exclusion flags once per
/// pick; readers only need an approximate, eventually consistent view.
package final class BalancedServer: Sendable {
    /// The server's name, unique within its backend.
    package let name: String
    private let currentWeight: Atomic<Int>
    private let requestsInFlight = Atomic<Int>(0)
    /// Why the server is out of rotation, one bit per reason (`Exclusion`); 0: in rotation.
    /// One word, so a pick tests every reason with a single load.
    private let exclusions = Atomic<UInt8>(0)
    /// Failed exchanges in a row from live traffic (passive outlier detection).
    private let failureStreak = Atomic<Int>(0)
    /// The passive ejection back-off; touched only when a server is ejected or returns.
    let ejection = Mutex(EjectionBackoff())

    private enum Exclusion {
        static let healthDown: UInt8 = 1 << 0
        static let ejected: UInt8 = 1 << 1
        static let draining: UInt8 = 1 << 2
        static let maintenance: UInt8 = 1 << 3
    }

    /// The largest weight a server can have; larger values are clamped to it.
    ///
    /// The configuration allows 1…256, but weights can also be set at run time. The cap keeps
    /// the algorithms' integer arithmetic (sums of weights, smooth-weighted counters) far
    /// from overflow for any realistic number of servers, so it never has to be checked per
    /// pick.
    package static let maximumWeight = 1 << 20

    /// - Parameter weight: clamped to `0...BalancedServer.maximumWeight`.
    package init(name: String, weight: Int = 1) {
        self.name = name
        self.currentWeight = Atomic(Self.clamp(weight))
    }

    /// Relative share of requests (0 = receives none unless it is the only choice).
    package var weight: Int { currentWeight.load(ordering: .relaxed) }

    /// Changes the weight at run time (admin API, decision engine); clamped to
    /// `0...BalancedServer.maximumWeight`.
    package func setWeight(_ weight: Int) {
        currentWeight.store(Self.clamp(weight), ordering: .relaxed)
    }

    private static func clamp(_ weight: Int) -> Int {
        min(max(weight, 0), maximumWeight)
    }

    /// Requests assigned to this server that have not finished, across all event loops.
    package var inFlight: Int { requestsInFlight.load(ordering: .relaxed) }

    /// Call when a request is assigned to this server.
    @inlinable
    package func requestStarted() { _requestStarted() }

    /// Call exactly once for every `requestStarted()`, when the exchange ends in any way.
    @inlinable
    package func requestFinished() { _requestFinished() }

    @usableFromInline
    func _requestStarted() { requestsInFlight.add(1, ordering: .relaxed) }

    @usableFromInline
    func _requestFinished() { requestsInFlight.subtract(1, ordering: .relaxed) }

    // MARK: Rotation

    /// Whether algorithms may choose this server: up, not ejected, not draining, not in
    /// maintenance.
    package var isAvailable: Bool { exclusions.load(ordering: .relaxed) == 0 }

    /// Whether a client already bound to the server (a sticky session) may still be sent to it:
    /// as `isAvailable`, except that a draining server keeps its clients while it takes no
    /// new ones (HAProxy's drain).
    package var acceptsBoundClients: Bool { exclusions.load(ordering: .relaxed) & ~Exclusion.draining == 0 }

    /// Whether active health checks consider the server up (always true without checks).
    package var isHealthy: Bool { exclusions.load(ordering: .relaxed) & Exclusion.healthDown == 0 }

    /// Sets the active health checks' verdict.
    package func setHealthy(_ isHealthy: Bool) { setExclusion(Exclusion.healthDown, !isHealthy) }

    /// Whether passive outlier detection has taken the server out of rotation.
    package var isEjected: Bool { exclusions.load(ordering: .relaxed) & Exclusion.ejected != 0 }

    func setEjected(_ isEjected: Bool) { setExclusion(Exclusion.ejected, isEjected) }

    /// What an operator asked of the server.
    package var adminState: AdminState {
        let flags = exclusions.load(ordering: .relaxed)
        if flags & Exclusion.maintenance != 0 { return .maintenance }
        if flags & Exclusion.draining != 0 { return .drain }
        return .ready
    }

    /// Puts the server in rotation (`.ready`, if nothing else keeps it out), drains it, or
    /// puts it in maintenance. Requests in flight finish either way.
    package func setAdminState(_ state: AdminState) {
        setExclusion(Exclusion.draining, state == .drain)
        setExclusion(Exclusion.maintenance, state == .maintenance)
    }

    /// The state to report, the operator's choice first: maintenance, draining, down (health
    /// checks), ejected (passive), or up.
    package var state: ServerState {
        let flags = exclusions.load(ordering: .relaxed)
        if flags & Exclusion.maintenance != 0 { return .maintenance }
        if flags & Exclusion.draining != 0 { return .draining }
        if flags & Exclusion.healthDown != 0 { return .down }
        if flags & Exclusion.ejected != 0 { return .ejected }
        return .up
    }

    private func setExclusion(_ bit: UInt8, _ isSet: Bool) {
        if isSet {
            exclusions.bitwiseOr(bit, ordering: .relaxed)
        } else {
            exclusions.bitwiseAnd(~bit, ordering: .relaxed)
        }
    }

    // MARK: Failure streak

    /// Records a failed exchange (connect error, timeout, 5xx); returns the failures in a row.
    func recordFailure() -> Int {
        failureStreak.wrappingAdd(1, ordering: .relaxed).newValue
    }

    /// Records a successful exchange, ending any failure streak. Writes only when there is a
    /// streak, so the common case is a load of a shared cache line, not a store to it.
    @inline(__always)
    func recordSuccess() {
        if failureStreak.load(ordering: .relaxed) != 0 {
            failureStreak.store(0, ordering: .relaxed)
        }
    }

    func resetFailureStreak() { failureStreak.store(0, ordering: .relaxed) }
}

/// What an operator set a server to (admin API `state`).
package enum AdminState: String, Sendable, CaseIterable {
    /// In rotation whenever it is healthy.
    case ready
    /// No new requests; those in flight finish.
    case drain
    /// Out of rotation (for work on the machine); health checks pause.
    case maintenance
}

/// A server's state as reported (logs, stats, admin API).
package enum ServerState: String, Sendable {
    case up
    /// Active health checks failed `fall` times in a row.
    case down
    /// Passive outlier detection took it out for a while.
    case ejected
    case draining
    case maintenance
}
