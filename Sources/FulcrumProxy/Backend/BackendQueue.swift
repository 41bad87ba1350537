import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// A backend's queue (`queue: { max, timeout }`): requests that found every server they may
/// go to at its limit (`max_connections`, `max_requests`) wait here, across event loops, and
/// are woken in order as slots free.
///
/// A waiter is a wake-up closure, which runs on the waiting exchange's event loop; the
/// exchange then picks a server again. A waiter whose client went away declines the wake-up,
/// and the slot passes to the next one. New requests queue behind the waiters rather than
/// taking a freed slot before them, as HAProxy's do.
///
/// One queue lives as long as its backend: a reload that keeps the backend keeps it, with its
/// waiters, even when it changes the queue's settings (which `RuntimeBackend` holds: the
/// requests that waited before the reload still free their slots here).
final class BackendQueue: Sendable {
    /// A waiting request: wakes it on its event loop, answering whether it took the slot.
    struct Waiter: Sendable {
        let id: UInt64
        let wake: @Sendable (_ slotTaken: @escaping @Sendable (Bool) -> Void) -> Void
    }

    private struct State {
        var waiters = CircularBuffer<Waiter>()
        var nextID: UInt64 = 1
        var stats = QueueStats()
    }

    private let state = NIOLockedValueBox(State())
    /// How many wait: set under the lock, read without it before every pick of the backend.
    private let length = Atomic<Int>(0)

    init() {}

    /// Whether no request waits (read before every pick of a backend with a queue).
    var isEmpty: Bool { length.load(ordering: .relaxed) == 0 }

    /// Adds a waiter, at the back, or at the front for one that was woken but found the slot
    /// taken (it keeps its place). Returns its id; nil when `max` wait already.
    func enqueue(
        atFront: Bool,
        max: Int,
        wake: @escaping @Sendable (_ slotTaken: @escaping @Sendable (Bool) -> Void) -> Void
    ) -> UInt64? {
        state.withLockedValue { state in
            guard atFront || state.waiters.count < max else {
                state.stats.rejected += 1
                return nil
            }
            let waiter = Waiter(id: state.nextID, wake: wake)
            state.nextID &+= 1
            if atFront { state.waiters.prepend(waiter) } else { state.waiters.append(waiter) }
            length.store(state.waiters.count, ordering: .relaxed)
            return waiter.id
        }
    }

    /// Takes a waiter out whose time is up; false when it was already woken.
    func timedOut(_ id: UInt64) -> Bool {
        state.withLockedValue { state in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return false }
            state.waiters.remove(at: index)
            length.store(state.waiters.count, ordering: .relaxed)
            state.stats.timedOut += 1
            return true
        }
    }

    /// A woken waiter went to a server after waiting this long.
    func served(waited: TimeAmount) {
        state.withLockedValue { state in
            state.stats.served += 1
            state.stats.waitedNanoseconds += waited.nanoseconds
        }
    }

    /// A slot freed (a request to a limited server ended, or a server has room): wakes the
    /// first waiter. If it declines (its client went away), the next one is woken.
    func slotFreed() {
        let next = state.withLockedValue { state -> Waiter? in
            let waiter = state.waiters.popFirst()
            length.store(state.waiters.count, ordering: .relaxed)
            return waiter
        }
        guard let next else { return }
        next.wake { [self] taken in
            if !taken { slotFreed() }
        }
    }

    var stats: QueueStats {
        var stats = state.withLockedValue { $0.stats }
        stats.length = length.load(ordering: .relaxed)
        return stats
    }
}
