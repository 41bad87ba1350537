import NIOCore

/// Enforces the client-side timeouts of a frontend connection; the first handler of the
/// client pipeline, so it sees raw bytes before the HTTP decoder.
///
/// - Between requests (and on a fresh connection) the connection may sit idle for
///   `client_idle`; then it is closed silently.
/// - From the first byte of a request, its whole head must arrive within `header_read`,
///   else the client gets 408 and the connection closes (slowloris defence).
///
/// The proxy handler tells the guard when a request head was decoded and when its response
/// finished; the guard only needs raw bytes to notice that a new request has begun.
///
/// - A connection the parking lot may keep (`allowParking`) that stays idle between requests
///   for `park_after` is parked: once its last response is on the wire, its socket leaves the
///   channel (`ParkingSpot.park`), still bound by the same `client_idle` deadline.
///
/// It also runs ``RequestLineScanner`` over the raw bytes, since the decoder skips a run of
/// spaces in a request line. A request line with one gets a 400, answered in turn after the
/// requests before it; nothing after it reaches the decoder.
final class ClientConnectionGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private enum State {
        /// No request in progress; waiting for its first byte.
        case idle
        /// Some bytes of a request head arrived; the head is not complete.
        case readingHead
        /// A request is being handled; its timeouts are the backend's.
        case busy
    }

    private var state = State.idle
    /// The connection came back from the parking lot because its client sent something: its
    /// first request has begun before its first read.
    private var beginsMidRequest = false
    /// A graceful shutdown came while a request head was arriving: it reaches the request
    /// handler once the head is decoded, so that request is answered before the connection
    /// closes.
    private var quiesceAfterHead = false
    private var requestLines = RequestLineScanner()
    /// A request line was refused: the rest of the input is dropped.
    private var refusedInput = false
    private var timer = DeadlineTimer()
    private var context: ChannelHandlerContext?
    private let clientIdleTimeout: TimeAmount
    private let headerReadTimeout: TimeAmount
    /// Where the connection parks, when it may, and how long it waits idle first. (Apart: the
    /// per-response check reads only the wait, and takes no reference to the spot.)
    private var parkingSpot: ParkingSpot?
    private var parkAfter: TimeAmount?
    private var proxied: ProxyProtocolHeader?
    /// When the connection, idle since its last response, may be parked.
    private var parkAt: NIODeadline?
    /// The HTTP/1.1 request handler, once the connection speaks HTTP/1.1; provides the 408
    /// page. A strong reference (a weak one would slow every retain of the
    /// proxy handler); the cycle ends in `handlerRemoved` when the channel closes.
    var proxy: (any HeaderTimeoutResponder)?

    init(clientIdleTimeout: TimeAmount, headerReadTimeout: TimeAmount) {
        self.clientIdleTimeout = clientIdleTimeout
        self.headerReadTimeout = headerReadTimeout
    }

    /// `proxied`: the PROXY protocol header the connection began with, which parking keeps.
    func allowParking(at spot: ParkingSpot, after wait: TimeAmount, proxied: ProxyProtocolHeader?) {
        parkingSpot = spot
        parkAfter = wait
        self.proxied = proxied
    }

    /// The client has sent bytes not read yet (a connection back from the parking lot, woken
    /// by them): `header_read` runs from the start, and a shutdown waits for that request.
    func clientHasSentMore() {
        beginsMidRequest = true
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        timer.configure(eventLoop: context.eventLoop) { [unowned self] in self.timerFired() }
        if context.channel.isActive { armForFirstRequest() }
    }

    func channelActive(context: ChannelHandlerContext) {
        armForFirstRequest()
        context.fireChannelActive()
    }

    /// `client_idle` until the first byte, then `header_read`: a new connection's first bytes
    /// usually come at once, so the task is scheduled for the header-read deadline from the
    /// start, and the first byte moves the deadline without scheduling a second task (one
    /// scheduled task less per connection; bench/callgrind.sh --new-connections).
    private func armForFirstRequest() {
        if beginsMidRequest {
            state = .readingHead
            arm(headerReadTimeout)
        } else {
            timer.arm(in: clientIdleTimeout, checkingWithin: headerReadTimeout)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer.invalidate()
        self.context = nil
        self.proxy = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer.invalidate()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // A client whose request is on its way is answered first (the handlers would see an
        // idle connection, and close it); `header_read` still bounds the wait.
        if state == .readingHead, event is ChannelShouldQuiesceEvent {
            quiesceAfterHead = true
            return
        }
        // Until the protocol is known (TLS handshake and ALPN, or the h2c preface), no request
        // handler is there to end the connection: a client that gives up before, or a
        // shutdown, ends it here. (Otherwise it would linger until `client_idle`, and hold up
        // a graceful shutdown for its whole grace period.)
        if proxy == nil, event is ChannelShouldQuiesceEvent || event as? ChannelEvent == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refusedInput else { return }
        let buffer = unwrapInboundIn(data)
        if state == .idle, !Self.isOnlyLineBreaks(buffer) {
            state = .readingHead
            arm(headerReadTimeout)
        }
        switch buffer.withUnsafeReadableBytes({ requestLines.scan($0) }) {
        case .valid:
            context.fireChannelRead(data)
            // The head is decoded, or the connection turned out to be HTTP/2 and this guard
            // left the pipeline: the shutdown goes on, from the pipeline's start. (The channel
            // outlives this call, so its pipeline is there even if this context left it.)
            if quiesceAfterHead, state != .readingHead || self.context == nil {
                quiesceAfterHead = false
                context.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            }
        case .doubleSpace(let offset):
            refusedInput = true
            // The requests before it go on, and so does this line's start (at least its
            // method and a space): that tells a waiting h2c preface detector this is HTTP/1.1,
            // so the request handler is in place for the error.
            if offset > 0 {
                context.fireChannelRead(wrapInboundOut(buffer.getSlice(at: buffer.readerIndex, length: offset)!))
            }
            context.fireErrorCaught(MalformedRequest.requestLineSpacing)
        }
    }

    /// Empty lines between requests are allowed (RFC 9112 §2.2) and do not start a request.
    /// (Checked only for the first read of a request; a request starts with a letter, so the
    /// check stops at the first byte.)
    private static func isOnlyLineBreaks(_ buffer: ByteBuffer) -> Bool {
        buffer.readableBytesView.allSatisfy { $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") }
    }

    /// The proxy decoded a request head: no client timeout applies until its response ends.
    func requestHeadReceived() {
        state = .busy
        timer.cancel()
    }

    /// The response to the current request was sent; the connection is idle again.
    func responseCompleted() {
        state = .idle
        if let parkAfter {
            parkAt = timer.arm(in: clientIdleTimeout, checkingWithin: parkAfter)
        } else {
            arm(clientIdleTimeout)
        }
    }

    private func arm(_ timeout: TimeAmount) {
        timer.arm(in: timeout)
    }

    private func timerFired() {
        guard let context else { return }
        if state == .idle, let parkAt, parkAt <= .now() {
            self.parkAt = nil
            park(context: context)
        }
        guard timer.fired(checkingAgainAt: state == .idle ? parkAt : nil) else { return }
        switch state {
        case .idle:
            context.close(promise: nil)
        case .readingHead:
            // Written here, below the HTTP handlers: no request head was decoded, so the
            // pipelining handler has no request to pair a response with.
            if let response = proxy?.headerTimeoutResponse(allocator: context.channel.allocator) {
                context.writeAndFlush(NIOAny(response)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            } else {
                context.close(promise: nil)
            }
        case .busy:
            break
        }
    }
}

extension ClientConnectionGuard {
    /// Parks the connection once everything written so far is on the wire (an empty write
    /// completes after them), if no byte of a new request arrived meanwhile. Nothing is
    /// buffered then: a byte read would have started a request.
    private func park(context: ChannelHandlerContext) {
        guard let spot = parkingSpot, timer.deadline != nil else { return }
        let channel = context.channel
        let flushed = context.writeAndFlush(NIOAny(channel.allocator.buffer(capacity: 0)))
        flushed.assumeIsolated().whenSuccess { [self] in
            guard state == .idle, self.context != nil, channel.isActive, let deadline = timer.deadline else { return }
            spot.park(channel, deadline: deadline, proxied: proxied)
        }
    }
}

/// Provides the 408 page the connection guard sends when a request head did not arrive in
/// time (the request handler knows the frontend's error pages).
protocol HeaderTimeoutResponder: AnyObject {
    /// The whole response as bytes; nothing else is sent on the connection after it.
    func headerTimeoutResponse(allocator: ByteBufferAllocator) -> ByteBuffer
}
