import NIOCore
import NIOHTTP1

/// Why an exchange with a backend ended before its response was complete.
enum BackendFailure: Error, CustomStringConvertible {
    /// The connection closed (reset, EOF, or closed by us after an error).
    case connectionClosed
    /// No response byte arrived within the backend's response timeout.
    case responseTimeout

    var description: String {
        switch self {
        case .connectionClosed: "connection to server lost"
        case .responseTimeout: "server did not respond in time"
        }
    }
}

/// Receives what a backend connection reports for the exchange currently using it.
///
/// Implemented by the client-side handler; every call happens on the shared event loop, as a
/// direct method call (no futures per request).
protocol BackendResponseSink: AnyObject {
    func backendResponseHead(_ head: HTTPResponseHead, from connection: BackendConnection)
    func backendResponseBody(_ body: ByteBuffer)
    func backendResponseEnd(_ trailers: HTTPHeaders?, from connection: BackendConnection)
    func backendReadComplete()
    func backendWritabilityChanged(isWritable: Bool)
    func backendFailed(_ failure: BackendFailure, connection: BackendConnection)
}

/// One pooled HTTP/1.1 connection to a server: the last handler of the backend channel.
///
/// It forwards response parts to its current `sink`, holds reads while the client cannot take
/// more bytes (backpressure towards the server), and owns the connection's one timer:
/// the response timeout while an exchange runs, the idle timeout while pooled.
final class BackendConnection: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    /// The exchange using this connection; `nil` while pooled.
    var sink: BackendResponseSink?
    /// The pool that opened it (a cycle only while the channel is open: NIO drops the handler on close).
    var pool: BackendConnectionPool?
    /// False once the server said `Connection: close`, or the exchange ended abnormally.
    var isReusable = true
    /// Requests sent over this connection so far (the first one is never a stale-connection retry).
    private(set) var requestsSent = 0

    private var context: ChannelHandlerContext?
    private var readsPaused = false
    private var readPending = false
    private var timer = DeadlineTimer()
    private var responseTimeout: TimeAmount = .seconds(30)

    var isActive: Bool { context?.channel.isActive ?? false }
    var isWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        timer.configure(eventLoop: context.eventLoop) { [unowned self] in self.timerFired() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer.invalidate()
        self.context = nil
    }

    // MARK: Used by the exchange

    /// Starts an exchange: the response timeout runs from now.
    func begin(sink: BackendResponseSink, responseTimeout: TimeAmount) {
        self.sink = sink
        self.requestsSent += 1
        self.responseTimeout = responseTimeout
        armResponseTimeout()
    }

    func write(_ part: HTTPClientRequestPart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    /// Request bytes are still flowing to the server: the response timeout counts from the
    /// last of them (a long upload is not a slow server).
    func requestProgressed() {
        armResponseTimeout()
    }

    /// Stops reading from the server until `resumeReads()` (the client is not writable).
    func pauseReads() {
        readsPaused = true
    }

    func resumeReads() {
        readsPaused = false
        if readPending, let context {
            readPending = false
            context.read()
        }
    }

    /// Closes the connection; a sink still attached hears `backendFailed` from `channelInactive`
    /// unless it detached first.
    func close() {
        isReusable = false
        context?.close(promise: nil)
    }

    /// Called by the pool when the connection goes back to it.
    func becomeIdle(timeout: TimeAmount) {
        sink = nil
        readsPaused = false
        if readPending, let context {
            readPending = false
            context.read()
        }
        timer.arm(in: timeout)
    }

    // MARK: Channel events

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let sink else {
            // A server has nothing to say on an idle connection; whatever this is, the
            // connection can no longer be trusted to frame the next response.
            close()
            return
        }
        armResponseTimeout()
        switch unwrapInboundIn(data) {
        case .head(let head):
            sink.backendResponseHead(head, from: self)
        case .body(let body):
            sink.backendResponseBody(body)
        case .end(let trailers):
            timer.cancel()
            sink.backendResponseEnd(trailers, from: self)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        sink?.backendReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        sink?.backendWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        isReusable = false
        timer.invalidate()
        pool?.connectionClosed(self)
        if let sink {
            self.sink = nil
            sink.backendFailed(.connectionClosed, connection: self)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Parse errors and resets alike: the connection is finished. `channelInactive`
        // tells the exchange, which answers 502 if nothing was sent to the client yet.
        close()
    }

    func read(context: ChannelHandlerContext) {
        if readsPaused {
            readPending = true
        } else {
            context.read()
        }
    }

    // MARK: Timer

    private func armResponseTimeout() {
        timer.arm(in: responseTimeout)
    }

    private func timerFired() {
        guard timer.fired() else { return }
        isReusable = false
        if let sink {
            self.sink = nil
            sink.backendFailed(.responseTimeout, connection: self)
        }
        close()
    }
}
