/// The up/down state machine of one server's active health checks (HAProxy's `rise`/`fall`).
///
/// An up server goes down after `fall` failed probes in a row; a down server comes back
/// after `rise` successful probes in a row. Any other outcome resets the opposite count.
/// Servers start up: a proxy that starts must not refuse traffic until the first probes
/// have run.
package struct HealthTracker: Sendable, Equatable {
    package enum Transition: Sendable, Equatable {
        case wentDown
        case cameUp
    }

    package private(set) var isUp = true
    private let rise: Int
    private let fall: Int
    /// Consecutive probe outcomes that point away from the current state.
    private var streak = 0

    /// - Parameter isUp: the state to start in (a reload that replaces a server's check starts
    ///   the new tracker where the server is).
    package init(rise: Int, fall: Int, isUp: Bool = true) {
        precondition(rise >= 1 && fall >= 1)
        self.rise = rise
        self.fall = fall
        self.isUp = isUp
    }

    /// Records one probe; returns the transition it completes, if any.
    package mutating func record(success: Bool) -> Transition? {
        guard success != isUp else {
            streak = 0
            return nil
        }
        streak += 1
        guard streak >= (isUp ? fall : rise) else { return nil }
        streak = 0
        isUp.toggle()
        return isUp ? .cameUp : .wentDown
    }
}
