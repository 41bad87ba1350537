import NIOCore
import NIOHTTP1

/// One pooled HTTP/1.1 connection to a server: the last handler of the backend channel.
///
/// It forwards response parts to its current `sink`, holds reads while the client cannot take
/// more bytes (backpressure towards the server), and owns the connection's one timer:
/// the response timeout while an exchange runs, the idle timeout while pooled (both through
/// `ServerReadControl`, which HTTP/2 streams share).
///
/// Requests go out as bytes the exchange serialized (`HTTPWireFormat`); the response decoder
/// is told each request's method directly (`ResponseDecoder`), so writes pass no HTTP handler.
final class BackendConnection: ChannelDuplexHandler, UpstreamConnection {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The exchange using this connection; `nil` while pooled.
    var sink: (any BackendResponseSink)?
    /// The pool that opened it (a cycle only while the channel is open: NIO drops the handler on close).
    var pool: BackendConnectionPool?
    /// False once the server said `Connection: close`, or the exchange ended abnormally.
    var isReusable = true
    /// The PROXY protocol header the connection began with: only an exchange of the same
    /// client connection may reuse it (nil: any may).
    var proxyHeader: ByteBuffer?
    /// Requests sent over this connection so far (the first one is never a stale-connection retry).
    private(set) var requestsSent = 0

    private var context: ChannelHandlerContext?
    /// The decoder of this connection's responses, which must know each request's method.
    private let decoder: HTTPResponseDecoder
    private var control = ServerReadControl()
    var isFlushQueued = false

    init(decoder: HTTPResponseDecoder) {
        self.decoder = decoder
    }

    var isActive: Bool { context?.channel.isActive ?? false }
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

    /// Starts an exchange for `request` (whose serialized head the caller writes next): the
    /// response timeout runs from now.
    func begin(request: HTTPRequestHead, sink: any BackendResponseSink, responseTimeout: TimeAmount) {
        self.sink = sink
        self.requestsSent += 1
        control.responseTimeout = responseTimeout
        // A response to HEAD has no body whatever its headers say; the decoder needs the method.
        decoder.write(data: .head(request))
        control.armResponseTimeout()
    }

    /// Writes request bytes (a serialized head, or body bytes as they are).
    func write(_ bytes: ByteBuffer) {
        context?.write(wrapOutboundOut(bytes), promise: nil)
    }

    /// Writes a part of the request body, as a chunk when the request is chunked.
    func writeBody(_ body: ByteBuffer, chunked: Bool) {
        guard chunked else {
            write(body)
            return
        }
        // An empty chunk would end the body.
        guard let context, body.readableBytes > 0 else { return }
        var header = context.channel.allocator.buffer(capacity: 18)
        header.writeChunkHeader(size: body.readableBytes)
        write(header)
        write(body)
        write(Self.lineBreak)
    }

    /// Ends the request body: the last chunk and trailers when chunked (a Content-Length body
    /// ends by itself).
    func writeEnd(_ trailers: HTTPHeaders?, chunked: Bool) {
        guard chunked, let context else { return }
        var end = context.channel.allocator.buffer(capacity: 5)
        end.writeLastChunk(trailers: trailers)
        write(end)
    }

    private static let lineBreak = ByteBuffer(staticString: "\r\n")

    /// Flushes what was written (the exchange asks `DeferredFlushes` to call this).
    func flushDeferred() {
        context?.flush()
    }

    /// Request bytes are still flowing to the server: the response timeout counts from the
    /// last of them (a long upload is not a slow server).
    func requestProgressed() {
        control.armResponseTimeout()
    }

    /// Stops reading from the server until `resumeReads()` (the client is not writable). The
    /// response timeout stops with it: a client slow to read is not a slow server.
    func pauseReads(clientTimeout: TimeAmount) {
        control.pause(clientTimeout: clientTimeout, exchangeRunning: sink != nil)
    }

    func resumeReads() {
        if control.resume() { context?.read() }
    }

    /// Closes the connection; a sink still attached hears `backendFailed` from `channelInactive`
    /// unless it detached first.
    func close() {
        isReusable = false
        context?.close(promise: nil)
    }

    /// Gives the connection back to the pool that opened it.
    func release() {
        if let pool {
            pool.release(self)
        } else {
            sink = nil
            close()
        }
    }

    /// The exchange became a WebSocket tunnel: this connection is no longer an HTTP
    /// connection (nor pooled again); it stays in the pipeline only to tell its pool when it
    /// closes. A tunnel end goes where the response decoder was (the decoder hands it
    /// whatever bytes followed the `101`), and the server may half-close, as the tunnel
    /// relays that.
    func becomeTunnel(_ tunnel: TunnelHandler) throws {
        sink = nil
        isReusable = false
        control.timer.invalidate()
        _ = control.detach()
        guard let context else { throw ChannelError.ioOnClosedChannel }
        let pipeline = context.pipeline.syncOperations
        try pipeline.addHandler(tunnel, position: .before(self))
        let decoder = try pipeline.handler(type: ByteToMessageHandler<ResponseDecoder>.self)
        pipeline.removeHandler(decoder, promise: nil)
        context.channel.setOption(ChannelOptions.allowRemoteHalfClosure, value: true).whenFailure { _ in }
    }

    /// Called by the pool when the connection goes back to it.
    func becomeIdle(timeout: TimeAmount) {
        sink = nil
        if control.detach() { context?.read() }
        control.timer.arm(in: timeout)
    }

    // MARK: Channel events

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let sink else {
            // A server has nothing to say on an idle connection; whatever this is, the
            // connection can no longer be trusted to frame the next response.
            close()
            return
        }
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
        isReusable = false
        control.timer.invalidate()
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
        if control.mayRead() { context.read() }
    }

    private func timerFired() {
        guard control.timer.fired() else { return }
        isReusable = false
        if let sink {
            self.sink = nil
            sink.backendFailed(control.expiryFailure, connection: self)
        }
        close()
    }
}

/// NIO's HTTP response decoder, wrapped so that its `ByteToMessageHandler` does not observe
/// writes.
///
/// The decoder has to know the method of the request each response answers (a response to
/// HEAD has no body). NIO's way is to watch `HTTPClientRequestPart` writes go by; Fulcrum
/// writes requests as bytes, so `BackendConnection` tells the decoder directly.
struct ResponseDecoder: ByteToMessageDecoder {
    typealias InboundOut = HTTPClientResponsePart

    let decoder: HTTPResponseDecoder

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        try decoder.decode(context: context, buffer: &buffer)
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decoder.decodeLast(context: context, buffer: &buffer, seenEOF: seenEOF)
    }

    mutating func decoderAdded(context: ChannelHandlerContext) {
        decoder.decoderAdded(context: context)
    }

    mutating func decoderRemoved(context: ChannelHandlerContext) {
        decoder.decoderRemoved(context: context)
    }

    func shouldReclaimBytes(buffer: ByteBuffer) -> Bool {
        decoder.shouldReclaimBytes(buffer: buffer)
    }
}
