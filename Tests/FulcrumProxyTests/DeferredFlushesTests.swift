import NIOCore
import NIOEmbedded
import NIOPosix
import Testing

@testable import FulcrumProxy

/// `DeferredFlushes`: flushes wait for the end of the loop's current work, each target once.
@Suite("Deferred flushes")
struct DeferredFlushesTests {
    private final class Target: DeferredFlushTarget {
        var isFlushQueued = false
        var flushes = 0
        var onFlush: (() -> Void)?

        func flushDeferred() {
            flushes += 1
            onFlush?()
        }
    }

    /// Runs `body` on a loop of its own, then `check` (what `body` returns) behind the flush
    /// task that `body` queued; with `rounds: 2`, also behind the one that task queued.
    private func onLoop<Result: Sendable>(
        rounds: Int = 1,
        _ body: @escaping @Sendable (any EventLoop) -> () -> Result
    ) async throws -> Result {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let result = try await loop.flatSubmit {
            let check = body(loop)
            let promise = loop.makePromise(of: Result.self)
            // The loop runs its queued tasks in order: each round goes behind what is queued.
            func checkAfter(rounds: Int) {
                loop.assumeIsolated().execute {
                    if rounds > 1 {
                        checkAfter(rounds: rounds - 1)
                    } else {
                        promise.succeed(check())
                    }
                }
            }
            checkAfter(rounds: rounds)
            return promise.futureResult
        }.get()
        try await group.shutdownGracefully()
        return result
    }

    @Test("nothing is flushed at once; each target is flushed once however often it asked")
    func coalesces() async throws {
        let (during, after) = try await onLoop { loop in
            let flushes = DeferredFlushes(eventLoop: loop)
            let first = Target()
            let second = Target()
            flushes.flushSoon(first)
            flushes.flushSoon(second)
            flushes.flushSoon(first)
            let during = [first.flushes, second.flushes]
            return { (during, [first.flushes, second.flushes]) }
        }
        #expect(during == [0, 0])
        #expect(after == [1, 1])
    }

    @Test("a target that asks while the queue is being flushed is flushed in the next round")
    func requeuesDuringFlush() async throws {
        let (afterFirstRound, afterSecondRound) = try await onLoop(rounds: 2) { loop in
            let flushes = DeferredFlushes(eventLoop: loop)
            let first = Target()
            let second = Target()
            // Flushing the first target writes to the second, and once more to itself.
            first.onFlush = { [unowned first] in
                flushes.flushSoon(second)
                if first.flushes == 1 { flushes.flushSoon(first) }
            }
            flushes.flushSoon(first)
            var afterFirstRound: [Int] = []
            loop.assumeIsolated().execute { afterFirstRound = [first.flushes, second.flushes] }
            return { (afterFirstRound, [first.flushes, second.flushes]) }
        }
        #expect(afterFirstRound == [1, 0])
        #expect(afterSecondRound == [2, 1])
    }

    @Test("an HTTP/2 connection's flushes wait for the loop's batch, and a close flushes first")
    func deferredFlushHandler() throws {
        let channel = EmbeddedChannel()
        let flushes = DeferredFlushes(eventLoop: channel.embeddedEventLoop)
        try channel.pipeline.syncOperations.addHandler(DeferredFlushHandler(flushes: flushes))
        // Two streams' responses in one batch: nothing leaves until the batch is over.
        channel.write(ByteBuffer(string: "stream 1"), promise: nil)
        channel.flush()
        channel.write(ByteBuffer(string: "stream 3"), promise: nil)
        channel.flush()
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        channel.embeddedEventLoop.run()
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "stream 1"))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "stream 3"))
        // A GOAWAY written and flushed just before a close still goes out.
        channel.write(ByteBuffer(string: "goaway"), promise: nil)
        channel.flush()
        try channel.close().wait()
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "goaway"))
    }
}
