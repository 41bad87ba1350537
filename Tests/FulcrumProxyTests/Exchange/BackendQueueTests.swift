import FulcrumConfig
import NIOConcurrencyHelpers
import Testing

@testable import FulcrumProxy

/// The backend's queue without an event loop: order, its bound, timeouts, declined wake-ups.
@Suite("Backend queue")
struct BackendQueueTests {
    /// A queue whose waiters record their wake-ups, and take the slot unless told to decline.
    final class Recorder: Sendable {
        let woken = NIOLockedValueBox<[Int]>([])
        let declining = NIOLockedValueBox<Set<Int>>([])

        func waiter(_ name: Int) -> @Sendable (@escaping @Sendable (Bool) -> Void) -> Void {
            { [self] slotTaken in
                woken.withLockedValue { $0.append(name) }
                slotTaken(!declining.withLockedValue { $0.contains(name) })
            }
        }
    }

    @Test("woken in order, one per freed slot; one put back in front goes next; full at max")
    func order() throws {
        let queue = BackendQueue()
        let recorder = Recorder()
        for name in 1...3 { #expect(queue.enqueue(atFront: false, max: 3, wake: recorder.waiter(name)) != nil) }
        #expect(queue.enqueue(atFront: false, max: 3, wake: recorder.waiter(4)) == nil)
        #expect(queue.stats.rejected == 1 && queue.stats.length == 3)
        queue.slotFreed()
        #expect(recorder.woken.withLockedValue { $0 } == [1])
        // 1 found the slot taken meanwhile: back in front, even though the queue is full.
        #expect(queue.enqueue(atFront: true, max: 3, wake: recorder.waiter(1)) != nil)
        queue.slotFreed()
        queue.slotFreed()
        #expect(recorder.woken.withLockedValue { $0 } == [1, 1, 2])
        #expect(!queue.isEmpty)
    }

    @Test("a waiter whose client left declines, and the slot goes to the next; a timed-out one is gone")
    func declineAndTimeout() throws {
        let queue = BackendQueue()
        let recorder = Recorder()
        recorder.declining.withLockedValue { $0 = [1, 2] }
        for name in 1...4 { _ = queue.enqueue(atFront: false, max: 10, wake: recorder.waiter(name)) }
        let fifth = try #require(queue.enqueue(atFront: false, max: 10, wake: recorder.waiter(5)))
        #expect(queue.timedOut(fifth))
        #expect(!queue.timedOut(fifth))
        queue.slotFreed()
        #expect(recorder.woken.withLockedValue { $0 } == [1, 2, 3])
        queue.slotFreed()
        queue.slotFreed()
        #expect(recorder.woken.withLockedValue { $0 } == [1, 2, 3, 4])
        #expect(queue.isEmpty)
        #expect(queue.stats.timedOut == 1 && queue.stats.length == 0)
    }
}
