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
    /// `max_connections`/`max_requests`: the requests it may have in flight (0: no limit).
    private let inFlightLimit = Atomic<Int>(0)
    /// Why the server is out of rotation, one bit per reason (`Exclusion`); 0: in rotation.
    /// One word, so a pick tests every reason with a single load.
    private let exclusions = Atomic<UInt8>(0)
    /// Failed exchanges in a row from live traffic (passive outlier detection).
    private let failureStreak = Atomic<Int>(0)
    /// The passive ejection back-off; touched only when a server is ejected or returns.
    let ejection = Mutex(EjectionBackoff())
    /// How far a slow start has brought the server, in thousandths of its weight (1000: not
    /// ramping). The algorithms read it on every pick; `ramp` says how it moves.
    private let rampThousandths = Atomic<Int>(1000)
    private let ramp = Mutex(SlowStartRamp())

    private enum Exclusion {
        static let healthDown: UInt8 = 1 << 0
        static let ejected: UInt8 = 1 << 1
        static let draining: UInt8 = 1 << 2
        static let maintenance: UInt8 = 1 << 3
        /// The reasons after which a server is cold: it ramps up when the last one clears.
        /// (A draining server kept serving its clients and requests in flight.)
        static let cold: UInt8 = healthDown | ejected | maintenance
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

    /// The weight the algorithms balance by, in thousandths: `weight × 1000`, less while a
    /// slow start ramps the server up (`rampThousandths`). 0 for a backup.
    @inline(__always)
    package var effectiveWeight: Int { weight &* rampThousandths.load(ordering: .relaxed) }

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

    /// The requests the server may have in flight at once (`max_requests`, or
    /// `max_connections` for one connection per request); nil: no limit.
    package var limit: Int? {
        let limit = inFlightLimit.load(ordering: .relaxed)
        return limit > 0 ? limit : nil
    }

    package func setLimit(_ limit: Int?) {
        inFlightLimit.store(max(limit ?? 0, 0), ordering: .relaxed)
    }

    /// Whether it may take one more request: it has no limit, or is below it. (Across event
    /// loops the check and the start of the request are not one step: two loops may both
    /// see the last slot, and the server briefly takes one more than its limit.)
    @inline(__always)
    package var hasRoom: Bool {
        let limit = inFlightLimit.load(ordering: .relaxed)
        return limit == 0 || requestsInFlight.load(ordering: .relaxed) < limit
    }

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
            let before = exclusions.bitwiseAnd(~bit, ordering: .relaxed).oldValue
            // Back from down, ejected or maintenance, with no such reason left: cold.
            if before & bit & Exclusion.cold != 0, before & ~bit & Exclusion.cold == 0 {
                beginSlowStart()
            }
        }
    }

    // MARK: Slow start

    /// `slow_start`: how long the server ramps from 10 % of its weight to all of it when it
    /// comes back (nil: it takes its full share at once). Turning it off ends a ramp.
    package func setSlowStart(_ duration: Duration?) {
        let nanoseconds = duration.map { Int64($0.components.seconds) * 1_000_000_000 + $0.components.attoseconds / 1_000_000_000 } ?? 0
        ramp.withLock { ramp in
            ramp.duration = max(nanoseconds, 0)
            if ramp.duration == 0 {
                ramp.start = nil
                rampThousandths.store(1000, ordering: .relaxed)
            }
        }
    }

    /// Starts a ramp from `SlowStartRamp.floor`, when the server has a slow start: it came
    /// back from down, ejected or maintenance, or a reload added it. The ramp's clock starts
    /// at the next `advanceSlowStart`.
    package func beginSlowStart() {
        ramp.withLock { ramp in
            guard ramp.duration > 0 else { return }
            ramp.start = nil
            ramp.isPending = true
            rampThousandths.store(SlowStartRamp.floor, ordering: .relaxed)
        }
    }

    /// Whether a slow start is under way (`advanceSlowStart` has work to do).
    package var isRamping: Bool { rampThousandths.load(ordering: .relaxed) < 1000 }

    /// How far the ramp is, in percent of the weight; nil when the server is not ramping.
    package var rampPercent: Int? {
        let thousandths = rampThousandths.load(ordering: .relaxed)
        return thousandths < 1000 ? thousandths / 10 : nil
    }

    /// Moves the ramp to where it is at `now` (monotonic nanoseconds): linearly from 10 % to
    /// 100 % over the slow start. Returns whether it is still ramping.
    @discardableResult
    package func advanceSlowStart(now: UInt64) -> Bool {
        ramp.withLock { ramp in
            guard ramp.isPending || ramp.start != nil, ramp.duration > 0 else { return false }
            let start = ramp.start ?? now
            ramp.start = start
            ramp.isPending = false
            let thousandths = SlowStartRamp.thousandths(elapsed: now &- start, of: ramp.duration)
            rampThousandths.store(thousandths, ordering: .relaxed)
            if thousandths >= 1000 { ramp.start = nil }
            return thousandths < 1000
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

/// A slow start's progress (HAProxy's `slowstart`, Envoy's slow start mode): after coming back,
/// a server's effective weight grows linearly from `floor` thousandths to all of it over
/// `duration`, so a cold server (empty caches, a JIT not warmed up) is not handed its full
/// share at once.
struct SlowStartRamp {
    /// Where a ramp starts: 10 % of the weight, as HAProxy's and Envoy's do (about).
    static let floor = 100
    /// The slow start's length in nanoseconds; 0: none.
    var duration: Int64 = 0
    /// When the ramp began; nil when it has not (or is over).
    var start: UInt64?
    /// A ramp was begun and its clock starts at the next advance.
    var isPending = false

    /// The ramp's level after `elapsed` of `duration` nanoseconds, in thousandths.
    static func thousandths(elapsed: UInt64, of duration: Int64) -> Int {
        guard duration > 0, elapsed < UInt64(duration) else { return 1000 }
        let progress = Double(elapsed) / Double(duration)
        return min(1000, floor + Int(Double(1000 - floor) * progress))
    }
}
