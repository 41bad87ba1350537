import NIOCore
import Synchronization

/// Limits how many `/work` requests a worker works on at once; the others wait their turn, first
/// come first served. This is the worker's capacity model (``WorkerBehaviour/capacity``): a
/// machine with fewer slots, or a saturated one, answers later because requests queue, not
/// because each one is slower.
///
/// One instance is shared by all connections of a worker, on all event loops, so its state is
/// behind a `Mutex`. Nothing here blocks: a request that finds no free slot leaves a waiter, and
/// the request is resumed later with `eventLoop.execute` on its own event loop — never synchronously
/// from ``release()`` or ``setCapacity(_:)``, which may be called from another loop or from inside
/// the releasing handler.
///
/// Every admitted request holds a slot until it calls ``release()``, also while the capacity is
/// unlimited: that way the requests in flight count when the capacity is lowered at run time.
final class WorkAdmission: Sendable {
    /// Identifies a waiting request, to take it out of the queue with ``cancel(_:)``.
    struct Ticket: Hashable, Sendable {
        fileprivate let id: UInt64
    }

    /// What ``acquire(on:whenAdmitted:)`` did.
    enum Admission: Equatable, Sendable {
        /// A slot was free and is now held by the caller, which starts working straight away.
        /// `whenAdmitted` will not be called.
        case admitted
        /// No slot was free. `whenAdmitted` will run on the event loop once one is, with the slot
        /// already held; unless the waiter is cancelled first.
        case queued(Ticket)
    }

    private struct Waiter {
        var ticket: Ticket
        var eventLoop: any EventLoop
        var start: @Sendable () -> Void

        func resume() {
            self.eventLoop.execute(self.start)
        }
    }

    private struct State {
        /// At most this many requests hold a slot; 0 or less means no limit.
        var capacity: Int
        /// Requests holding a slot: working, or admitted and about to start on their event loop.
        var working = 0
        /// In arrival order. Invariant: non-empty only while no slot is free.
        var waiters = CircularBuffer<Waiter>()
        var nextTicket: UInt64 = 0

        var hasFreeSlot: Bool {
            self.capacity <= 0 || self.working < self.capacity
        }

        /// Hands free slots to the waiters at the head of the queue and returns them, to be resumed
        /// outside the lock.
        mutating func admitWaiters() -> [Waiter] {
            var admitted: [Waiter] = []
            while self.hasFreeSlot, let waiter = self.waiters.popFirst() {
                self.working += 1
                admitted.append(waiter)
            }
            return admitted
        }
    }

    private let state: Mutex<State>

    /// - Parameter capacity: slots; 0 (or less) for no limit.
    init(capacity: Int) {
        self.state = Mutex(State(capacity: capacity))
    }

    /// Takes a slot if one is free, or queues behind the requests already waiting.
    ///
    /// - Parameters:
    ///   - eventLoop: where `whenAdmitted` runs: the requesting channel's loop.
    ///   - whenAdmitted: called once a slot is granted to a queued request. It owns the slot from
    ///     then on, and must ``release()`` it even if it no longer wants it (its connection closed).
    func acquire(on eventLoop: any EventLoop, whenAdmitted: @escaping @Sendable () -> Void) -> Admission {
        self.state.withLock { state in
            // Checking the queue as well keeps it first come, first served.
            if state.waiters.isEmpty, state.hasFreeSlot {
                state.working += 1
                return .admitted
            }
            let ticket = Ticket(id: state.nextTicket)
            state.nextTicket += 1
            state.waiters.append(Waiter(ticket: ticket, eventLoop: eventLoop, start: whenAdmitted))
            return .queued(ticket)
        }
    }

    /// Gives a slot back and, if that frees one, grants it to the longest-waiting request.
    func release() {
        let admitted = self.state.withLock { state in
            precondition(state.working > 0, "WorkAdmission.release() without a slot held")
            state.working -= 1
            return state.admitWaiters()
        }
        for waiter in admitted {
            waiter.resume()
        }
    }

    /// Takes a waiting request out of the queue (its connection closed).
    ///
    /// - Returns: `true` if it was still waiting; `false` if it had already been granted a slot,
    ///   in which case its `whenAdmitted` is on its way and has to release that slot.
    @discardableResult
    func cancel(_ ticket: Ticket) -> Bool {
        self.state.withLock { state in
            guard let index = state.waiters.firstIndex(where: { $0.ticket == ticket }) else {
                return false
            }
            state.waiters.remove(at: index)
            return true
        }
    }

    /// Changes the number of slots. Raising it (or going to 0, no limit) starts waiting requests at
    /// once; lowering it takes nothing away from requests at work, it only admits no new one until
    /// fewer than `capacity` are working.
    func setCapacity(_ capacity: Int) {
        let admitted = self.state.withLock { state in
            state.capacity = capacity
            return state.admitWaiters()
        }
        for waiter in admitted {
            waiter.resume()
        }
    }

    /// How many requests hold a slot, and how many wait for one.
    var counts: (working: Int, waiting: Int) {
        self.state.withLock { ($0.working, $0.waiters.count) }
    }
}
