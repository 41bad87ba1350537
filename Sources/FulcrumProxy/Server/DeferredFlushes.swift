import NIOCore

/// A channel owner whose flush can wait until `DeferredFlushes` runs it.
protocol DeferredFlushTarget: AnyObject {
    /// True while the target waits in a `DeferredFlushes` queue (set and cleared by it), so a
    /// target is queued at most once per event-loop tick however often it asks.
    var isFlushQueued: Bool { get set }
    /// Flushes now what was written since the last flush (nothing if that was done meanwhile).
    func flushDeferred()
}

/// Flushes of one event loop, held until it has handled the whole batch of I/O events it is
/// handling now, then done in a row.
///
/// Each flush is a `write` to a socket, and on loopback (or any local peer) the kernel hands
/// the bytes to the receiver within that call and wakes it if it sleeps in `epoll_wait`, at
/// the writer's expense (on a virtual machine, an inter-processor interrupt and a VM exit).
/// Flushing at the end of each connection's read handled the batch one request at a time:
/// the server woke for one request, answered it and went back to sleep before the next one
/// came, so nearly every request paid a wake-up (measured: about 15 % of the proxy's CPU time
/// spent waking its peers with HTTPS keep-alive). Written in a row, most requests find their
/// server or client already awake. HAProxy likewise sends what a pass over its ready
/// connections produced after that pass; Netty's `FlushConsolidationHandler` defers flushes
/// to a task on the loop in the same way.
///
/// The flushes run in one task on the loop per tick that has any (not one per request):
/// SwiftNIO runs the tasks queued while it handles I/O events right after them, before it
/// waits again, so nothing is held beyond the current tick. Only used on `eventLoop`, so it
/// takes no locks.
final class DeferredFlushes {
    private let eventLoop: any EventLoop
    private var queued: [any DeferredFlushTarget] = []
    /// The queue being flushed; swapped with `queued` so a flush may queue another target.
    private var flushing: [any DeferredFlushTarget] = []
    private var isScheduled = false

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Flushes `target` once the loop has handled its current I/O events.
    func flushSoon(_ target: any DeferredFlushTarget) {
        guard !target.isFlushQueued else { return }
        target.isFlushQueued = true
        queued.append(target)
        if !isScheduled {
            isScheduled = true
            eventLoop.assumeIsolated().execute { self.run() }
        }
    }

    private func run() {
        isScheduled = false
        swap(&queued, &flushing)
        for target in flushing {
            target.isFlushQueued = false
            target.flushDeferred()
        }
        // Keeps the storage; releases the targets.
        flushing.removeAll(keepingCapacity: true)
    }
}
