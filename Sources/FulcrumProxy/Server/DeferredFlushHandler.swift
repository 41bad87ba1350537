import NIOCore

/// Holds an HTTP/2 connection's flushes until `DeferredFlushes` runs them, at the end of the
/// event loop's current batch of I/O events: the responses of all the streams that ended in
/// that batch leave in one write.
///
/// A response ends with a flush of its stream channel, which NIOHTTP2 passes down to the
/// connection as soon as it comes; NIOHTTP2 holds flushes back only while the connection
/// itself is reading, and a proxy's responses arrive on other channels (the servers'). So ten
/// streams answered in one batch were ten socket writes (callgrind: 20,010 writes for 20,000
/// responses at ten streams per connection). HTTP/1.1's `ProxyHandler` defers its flushes the
/// same way.
///
/// It sits between the HTTP/2 handler and the socket (or the TLS handler).
final class DeferredFlushHandler: ChannelOutboundHandler, RemovableChannelHandler, DeferredFlushTarget {
    typealias OutboundIn = Any

    private let flushes: DeferredFlushes
    private var context: ChannelHandlerContext?
    private var hasPendingFlush = false
    var isFlushQueued = false

    init(flushes: DeferredFlushes) {
        self.flushes = flushes
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        flushPending(context: context)
        self.context = nil
    }

    func flush(context: ChannelHandlerContext) {
        hasPendingFlush = true
        flushes.flushSoon(self)
    }

    func flushDeferred() {
        guard let context else { return }
        flushPending(context: context)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // What was written before the close (a GOAWAY, the last responses) goes out first:
        // NIO fails the writes that were never flushed when the channel closes.
        flushPending(context: context)
        context.close(mode: mode, promise: promise)
    }

    private func flushPending(context: ChannelHandlerContext) {
        if hasPendingFlush {
            hasPendingFlush = false
            context.flush()
        }
    }
}
