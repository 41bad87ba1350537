import NIOCore

/// A re-armable deadline on one event loop that schedules at most one task at a time.
///
/// Timeouts are re-armed on every request (and on every read for inactivity timeouts).
/// Scheduling and cancelling a NIO task each time costs allocations and heap operations, so
/// this keeps the wanted deadline in a variable and lets a single scheduled task check it when
/// it fires: if the deadline moved later, the task re-schedules itself for the new time.
/// Re-arming is then just a clock read and a store.
///
/// The expiry callback is given once (`configure`), not per `arm`: building a closure per
/// request would allocate, and a `[weak self]` capture would give the owner a side table,
/// which puts every later retain and release of it on the runtime's slow path. Owners capture
/// `unowned self` and `invalidate()` the timer when they leave their channel, so the callback
/// never outlives them.
struct DeadlineTimer {
    /// The deadline armed (nil: none).
    private(set) var deadline: NIODeadline?
    private var scheduled: Scheduled<Void>?
    private var scheduledFor: NIODeadline = .distantFuture
    private var eventLoop: (any EventLoop)?
    private var onExpiry: (() -> Void)?

    init() {}

    /// Sets the loop the timer runs on and what to call when a deadline passes.
    mutating func configure(eventLoop: any EventLoop, onExpiry: @escaping () -> Void) {
        self.eventLoop = eventLoop
        self.onExpiry = onExpiry
    }

    /// Arms (or moves) the deadline to `now + timeout`.
    mutating func arm(in timeout: TimeAmount) {
        let newDeadline = NIODeadline.now() + timeout
        deadline = newDeadline
        schedule(checkingAt: newDeadline)
    }

    /// Arms the deadline to `now + timeout`, with the task scheduled no later than
    /// `now + check`: a deadline that the owner may soon move earlier, but not earlier than
    /// that, then needs no second task. (The task finds the deadline later, and re-schedules
    /// itself once.) Returns the time the task checks by.
    @discardableResult
    mutating func arm(in timeout: TimeAmount, checkingWithin check: TimeAmount) -> NIODeadline {
        let now = NIODeadline.now()
        deadline = now + timeout
        let checkAt = now + min(timeout, check)
        schedule(checkingAt: checkAt)
        return checkAt
    }

    /// Makes sure a task runs no later than `checkAt`.
    @inline(__always)
    private mutating func schedule(checkingAt checkAt: NIODeadline) {
        // The usual case — a task is already scheduled no later than that — touches nothing
        // else (not even the loop and callback references, which would cost retains).
        if scheduled == nil || checkAt < scheduledFor {
            guard let eventLoop, let onExpiry else { return }
            scheduled?.cancel()
            scheduledFor = checkAt
            scheduled = eventLoop.assumeIsolated().scheduleTask(deadline: checkAt, onExpiry)
        }
    }

    /// Forgets the deadline. The scheduled task, if any, stays and finds nothing to do.
    mutating func cancel() {
        deadline = nil
    }

    /// Cancels the scheduled task and drops the callback (when the owner leaves its channel).
    mutating func invalidate() {
        deadline = nil
        scheduled?.cancel()
        scheduled = nil
        scheduledFor = .distantFuture
        onExpiry = nil
        eventLoop = nil
    }

    /// Call first thing in the expiry callback. Returns true when the deadline really passed;
    /// otherwise the task is re-scheduled for the moved deadline, or for `check` if that is
    /// earlier (or dropped if cancelled), and the caller must do nothing.
    mutating func fired(checkingAgainAt check: NIODeadline? = nil) -> Bool {
        scheduled = nil
        scheduledFor = .distantFuture
        guard let deadline, let eventLoop, let onExpiry else { return false }
        if deadline <= .now() {
            self.deadline = nil
            return true
        }
        let next = min(deadline, check ?? deadline)
        scheduledFor = next
        scheduled = eventLoop.assumeIsolated().scheduleTask(deadline: next, onExpiry)
        return false
    }
}
