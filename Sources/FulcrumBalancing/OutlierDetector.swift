import Synchronization

/// Passive outlier detection for one backend: a server whose live exchanges fail
/// `consecutiveFailures` times in a row (connect errors, timeouts, 5xx) is ejected for a
/// back-off period (`EjectionBackoff`), unless that would leave the backend without a server
/// in rotation (the panic threshold) or eject more than `maxEjectedPercent` of its servers.
///
/// The failure streak and the back-off live in each `BalancedServer`, so they survive
/// reloads; this object holds the backend's settings and serialises ejection decisions
/// (two event loops must not both eject "the last but one" server). Successes cost one
/// relaxed atomic load; the lock is taken only once a streak reaches the threshold.
///
/// The caller brings ejected servers back when `returnIfOver` says so: on the next passing
/// health check when the backend has checks, otherwise when the ejection's time is up.
package final class OutlierDetector: Sendable {
    package struct Settings: Sendable, Equatable {
        package var consecutiveFailures: Int
        /// The first ejection's length, in nanoseconds.
        package var baseEjection: Int64
        /// The longest ejection, in nanoseconds.
        package var maximumEjection: Int64
        /// At most this share of the backend's servers is ejected at once (at least one).
        package var maxEjectedPercent: Int

        package init(consecutiveFailures: Int, baseEjection: Int64, maximumEjection: Int64, maxEjectedPercent: Int) {
            precondition(consecutiveFailures >= 1 && baseEjection > 0 && maximumEjection >= baseEjection)
            self.consecutiveFailures = consecutiveFailures
            self.baseEjection = baseEjection
            self.maximumEjection = maximumEjection
            self.maxEjectedPercent = maxEjectedPercent
        }
    }

    /// What a failure led to.
    package enum Verdict: Sendable, Equatable {
        /// The server is out for `nanoseconds`; this is its `consecutiveEjections`th in a row.
        case ejected(nanoseconds: Int64, consecutiveEjections: Int)
        /// The streak reached the threshold but the server stays: `reason` says why.
        case spared(reason: String)
    }

    package let settings: Settings
    private let servers: [BalancedServer]
    private let decisions = Mutex(())

    package init(settings: Settings, servers: [BalancedServer]) {
        self.settings = settings
        self.servers = servers
    }

    /// Records a successful exchange with `servers[index]`.
    @inline(__always)
    package func recordSuccess(serverIndex index: Int) {
        servers[index].recordSuccess()
    }

    /// Records a failed exchange with `servers[index]` at `now` (monotonic nanoseconds).
    /// Returns a verdict when the failure completes a streak (and once per streak when the
    /// server is spared), nil otherwise.
    package func recordFailure(serverIndex index: Int, now: UInt64) -> Verdict? {
        let server = servers[index]
        let streak = server.recordFailure()
        guard streak >= settings.consecutiveFailures else { return nil }
        return decisions.withLock { _ in
            guard !server.isEjected else { return nil }
            let othersInRotation = servers.indices.contains { $0 != index && servers[$0].isAvailable }
            guard othersInRotation else {
                return streak == settings.consecutiveFailures ? .spared(reason: "it is the last server in rotation") : nil
            }
            let ejected = servers.reduce(0) { $0 + ($1.isEjected ? 1 : 0) }
            guard ejected < max(1, servers.count * settings.maxEjectedPercent / 100) else {
                return streak == settings.consecutiveFailures
                    ? .spared(
                        reason: "\(ejected) of \(servers.count) servers are ejected already (max_ejected_percent \(settings.maxEjectedPercent))"
                    )
                    : nil
            }
            let (duration, count) = server.ejection.withLock { backoff in
                let duration = backoff.eject(now: now, base: settings.baseEjection, maximum: settings.maximumEjection)
                return (duration, backoff.consecutiveEjections)
            }
            server.setEjected(true)
            server.resetFailureStreak()
            return .ejected(nanoseconds: duration, consecutiveEjections: count)
        }
    }

    /// Brings `servers[index]` back if its ejection is over at `now`; true if it came back.
    @discardableResult
    package func returnIfOver(serverIndex index: Int, now: UInt64) -> Bool {
        let server = servers[index]
        guard server.isEjected else { return false }
        let over = server.ejection.withLock { backoff in
            guard backoff.isOver(now: now) else { return false }
            backoff.returned(now: now)
            return true
        }
        if over {
            server.resetFailureStreak()
            server.setEjected(false)
        }
        return over
    }
}
