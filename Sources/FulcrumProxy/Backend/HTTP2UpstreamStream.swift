import NIOCore
import NIOHTTP1
import NIOHTTP2

/// One exchange's HTTP/2 stream to a server (`protocol: h2` or `h2c`): the last handler of the
/// stream channel, after NIOHTTP2's `HTTP2FramePayloadToHTTP1ClientCodec`, which turns the
/// request's parts into frames and the response's frames into parts.
///
/// It is the exchange's `UpstreamConnection`, as `BackendConnection` is for HTTP/1.1, so the
/// exchange's state machine does not know which it has. Flow control is per stream, end to
/// end: reads from the stream stop while the client cannot take more (NIOHTTP2 then sends the
/// server no WINDOW_UPDATE for it, which holds up this stream only), and the stream channel's
/// writability, which follows the server's window for it, holds the client's reads. Closing
/// the stream before its end sends RST_STREAM (CANCEL): a client that goes away cancels the
/// server's work, as gRPC expects.
final class HTTP2UpstreamStream: ChannelDuplexHandler, UpstreamConnection {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    var sink: (any BackendResponseSink)?
    /// A stream carries one exchange; it is never used again.
    var isReusable: Bool {
        get { false }
        set {}
    }
    /// The streams its connection carried until this one: a failure on a connection that
    /// carried others may be a stale connection's (the exchange's retry rule).
    let requestsSent: Int
    var isFlushQueued = false

    /// Where requests without a `Host` header are sent (`:authority` is required).
    private let authority: String
    private var context: ChannelHandlerContext?
    private var control = ServerReadControl()
    /// What the exchange is told if the stream closes before its response ended.
    private var failure = BackendFailure.connectionClosed

    init(requestsSent: Int, authority: String) {
        self.requestsSent = requestsSent
        self.authority = authority
    }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        control.timer.configure(eventLoop: context.eventLoop) { [unowned self] in self.timerFired() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        control.timer.invalidate()
        self.context = nil
    }

    // MARK: Used by the exchange

    func begin(request: HTTPRequestHead, sink: any BackendResponseSink, responseTimeout: TimeAmount) {
        self.sink = sink
        control.responseTimeout = responseTimeout
        control.armResponseTimeout()
    }

    /// The head, which the exchange serialized for HTTP/1.1 (`ForwardingHeaders`), read back
    /// into a head for the codec: the forwarding rules stay in one place.
    func write(_ bytes: ByteBuffer) {
        guard let context else { return }
        guard var head = SerializedRequestHead.parse(bytes) else {
            // Only the exchange's own serialization comes here; anything else is a bug, and
            // the exchange fails rather than send something else.
            close()
            return
        }
        if !head.headers.contains(name: "host") {
            head.headers.add(name: "host", value: authority)
        }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
    }

    func writeBody(_ body: ByteBuffer, chunked: Bool) {
        // HTTP/2 frames the body itself: a chunked request's body goes as DATA as it comes.
        guard body.readableBytes > 0 else { return }
        context?.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
    }

    func writeEnd(_ trailers: HTTPHeaders?, chunked: Bool) {
        context?.write(wrapOutboundOut(.end(trailers)), promise: nil)
    }

    func flushDeferred() {
        context?.flush()
    }

    func requestProgressed() {
        control.armResponseTimeout()
    }

    func pauseReads(clientTimeout: TimeAmount) {
        control.pause(clientTimeout: clientTimeout, exchangeRunning: sink != nil)
    }

    func resumeReads() {
        if control.resume() { context?.read() }
    }

    /// Ends the stream: with RST_STREAM (CANCEL) unless both sides have ended it. A sink still
    /// attached hears `backendFailed`.
    func close() {
        context?.close(promise: nil)
    }

    /// The exchange is over: the stream closes (if the server answered before the request's
    /// end, with RST_STREAM, as RFC 9113 §8.1 allows).
    func release() {
        sink = nil
        close()
    }

    func becomeTunnel(_ serverEnd: TunnelHandler) throws {
        // An HTTP/2 server cannot answer 101 (RFC 9113 §8.6); the exchange never asks.
        throw ChannelError.operationUnsupported
    }

    // MARK: Channel events

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let sink else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            control.armResponseTimeout()
            sink.backendResponseHead(head, from: self)
        case .body(let body):
            control.armResponseTimeout()
            sink.backendResponseBody(body)
        case .end(let trailers):
            control.responseEnded()
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
        control.timer.invalidate()
        if let sink {
            self.sink = nil
            sink.backendFailed(failure, connection: self)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A reset stream, a GOAWAY that leaves it out, or a malformed response: the stream is
        // finished, and `channelInactive` tells the exchange. A refusal (NIOHTTP2 reports a
        // GOAWAY's as one too) means the server did no work: any request may go again.
        if let closed = error as? NIOHTTP2Errors.StreamClosed, closed.errorCode == .refusedStream {
            failure = .streamRefused
        }
        close()
    }

    func read(context: ChannelHandlerContext) {
        if control.mayRead() { context.read() }
    }

    private func timerFired() {
        guard control.timer.fired() else { return }
        if let sink {
            self.sink = nil
            sink.backendFailed(control.expiryFailure, connection: self)
        }
        close()
    }
}

/// Reads back a request head that `ForwardingHeaders` wrote as HTTP/1.1 bytes: `METHOD URI
/// HTTP/1.1`, then `name: value` lines, then an empty line. Nothing else is parsed here.
enum SerializedRequestHead {
    static func parse(_ bytes: ByteBuffer) -> HTTPRequestHead? {
        let text = String(buffer: bytes)
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)[...]
        guard let requestLine = lines.popFirst() else { return nil }
        let parts = requestLine.split(separator: " ", maxSplits: 2)
        guard parts.count == 3, parts[2] == "HTTP/1.1" else { return nil }
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: String(parts[0])), uri: String(parts[1]))
        for line in lines {
            if line.isEmpty { return head }
            guard let colon = line.firstIndex(of: ":") else { return nil }
            let value = line[line.index(after: colon)...].drop { $0 == " " }
            head.headers.add(name: String(line[..<colon]), value: String(value))
        }
        return nil
    }
}
