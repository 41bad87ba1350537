/// How long passive outlier detection keeps a server out: each ejection that follows the
/// previous one soon after lasts twice as long, up to a maximum (Envoy's and Finagle's
/// back-off, made exponential as the issue asks).
///
/// Times are monotonic nanoseconds (the clock of `NIODeadline`), passed in, so the back-off
/// is tested with an injected clock.
package struct EjectionBackoff: Sendable, Equatable {
    /// Ejections in a row: the next lasts `base × 2^consecutiveEjections`, capped at the maximum.
    package private(set) var consecutiveEjections = 0
    /// When the current ejection ends; nil when the server is not ejected.
    package private(set) var ejectedUntil: UInt64?
    /// When the server last came back.
    private var returnedAt: UInt64 = 0

    package init() {}

    /// Starts an ejection at `now`; returns its length in nanoseconds.
    ///
    /// A server that stayed in rotation for `maximum` since it last came back starts again
    /// from `base`: its earlier trouble is over.
    package mutating func eject(now: UInt64, base: Int64, maximum: Int64) -> Int64 {
        if consecutiveEjections > 0, now &- returnedAt >= UInt64(maximum) {
            consecutiveEjections = 0
        }
        var duration = min(base, maximum)
        for _ in 0..<consecutiveEjections where duration < maximum {
            duration = duration > maximum / 2 ? maximum : duration * 2
        }
        consecutiveEjections += 1
        ejectedUntil = now &+ UInt64(duration)
        return duration
    }

    /// Whether the current ejection has run its course (false when not ejected).
    package func isOver(now: UInt64) -> Bool {
        ejectedUntil.map { now >= $0 } ?? false
    }

    /// Records that the server came back at `now`.
    package mutating func returned(now: UInt64) {
        ejectedUntil = nil
        returnedAt = now
    }
}
