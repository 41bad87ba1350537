import FulcrumBalancing
import NIOCore

/// Waiting in the backend's queue (`BackendQueue`) when every server the request may go to is
/// at its limit: the handler enqueues a wake-up, and picks again when woken.
extension ProxyHandler {
    /// Queues the request, behind those already waiting (or in front, for one woken that found
    /// its slot taken meanwhile: it keeps its place and its deadline). 503 at once when the
    /// queue is full; 503 when its time is up.
    func waitInQueue(_ queue: BackendQueue, excluding tried: ServerIndexSet) {
        guard let backend else { return }
        let settings = backend.runtime.queueSettings
        let wasDequeued = isDequeued
        isDequeued = false
        let attempt = machine.queued()
        let now = NIODeadline.now()
        let deadline = queueDeadline ?? now + TimeAmount(settings.timeout)
        let bound = NIOLoopBound(self, eventLoop: loop.eventLoop)
        let woken = queue.enqueue(atFront: wasDequeued, max: settings.max) { slotTaken in
            bound.eventLoop.execute { slotTaken(bound.value.wokenFromQueue(attempt: attempt)) }
        }
        guard let id = woken else {
            run(machine.queueFull())
            return
        }
        if queueDeadline == nil {
            queueDeadline = deadline
            queueEnteredAt = now
        }
        queueTimer?.cancel()
        queueTimer = loop.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            queueTimer = nil
            guard queue.timedOut(id) else { return }
            queueDeadline = nil
            run(machine.queueTimedOut(attempt: attempt, after: settings.timeout))
        }
        // A server may have room already (the waiters ahead left, or it just came back):
        // then the first waiter goes now rather than at the next request's end.
        if backend.runtime.servers.enumerated().contains(where: { index, server in
            !tried.contains(index) && server.isAvailable && server.hasRoom
        }) {
            queue.slotFreed()
        }
    }

    /// The queue woke the request: picks a server again. False when the exchange no longer
    /// waits (its client went away, or it was answered), so the slot goes to the next waiter.
    func wokenFromQueue(attempt: Int) -> Bool {
        let action = machine.dequeued(attempt: attempt)
        guard case .pickServer = action else { return false }
        queueTimer?.cancel()
        queueTimer = nil
        isDequeued = true
        run(action)
        isDequeued = false
        return true
    }

    /// The request goes to a server: if it waited, how long is recorded.
    func leftQueue() {
        guard let enteredAt = queueEnteredAt, let queue = backend?.runtime.queue else { return }
        queueDeadline = nil
        queueEnteredAt = nil
        queue.served(waited: NIODeadline.now() - enteredAt)
    }
}
