import NIOCore

/// A re-armable deadline on one event loop that schedules at most one task at a time.
///
/// Timeouts are re-armed on every request (and on every read for inactivity timeouts).
/// Scheduling and cancelling a NIO task each time costs allocations and heap operations, so
/// this keeps the wanted deadline in a variable and lets a single scheduled task check it when
/// it fires: if the deadline moved later, the task re-schedules itself for the new time.
/// Re-arming is then just a clock read and a store.
struct DeadlineTimer {
    private var deadline: NIODeadline?
    private var scheduled: Scheduled<Void>?
    private var scheduledFor: NIODeadline = .distantFuture

    init() {}

    /// Arms (or moves) the deadline to `now + timeout`. `onExpiry` is called on `eventLoop`
    /// when the deadline passes without being moved or cancelled.
    mutating func arm(
        in timeout: TimeAmount,
        on eventLoop: any EventLoop,
        onExpiry: @escaping () -> Void
    ) {
        let newDeadline = NIODeadline.now() + timeout
        deadline = newDeadline
        if scheduled == nil || newDeadline < scheduledFor {
            scheduled?.cancel()
            scheduledFor = newDeadline
            scheduled = eventLoop.assumeIsolated().scheduleTask(deadline: newDeadline, onExpiry)
        }
    }

    /// Forgets the deadline. The scheduled task, if any, stays and finds nothing to do.
    mutating func cancel() {
        deadline = nil
    }

    /// Cancels the scheduled task too (when the owner goes away).
    mutating func invalidate() {
        deadline = nil
        scheduled?.cancel()
        scheduled = nil
        scheduledFor = .distantFuture
    }

    /// Call first thing in `onExpiry`. Returns true when the deadline really passed; otherwise
    /// the task is re-scheduled for the moved deadline (or dropped if cancelled) and the
    /// caller must do nothing.
    mutating func fired(on eventLoop: any EventLoop, onExpiry: @escaping () -> Void) -> Bool {
        scheduled = nil
        scheduledFor = .distantFuture
        guard let deadline else { return false }
        if deadline <= .now() {
            self.deadline = nil
            return true
        }
        scheduledFor = deadline
        scheduled = eventLoop.assumeIsolated().scheduleTask(deadline: deadline, onExpiry)
        return false
    }
}
