import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// One exchange's HTTP/2 stream to a server (`protocol: h2` or `h2c`), run on its connection
/// (`HTTP2ServerConnection`) with no channel of its own: it writes the request's frames there,
/// and the connection hands it the response's.
///
/// It is the exchange's `UpstreamConnection`, as `BackendConnection` is for HTTP/1.1, so the
/// exchange's state machine does not know which it has. Flow control is per stream, end to
/// end, as NIOHTTP2's stream channels keep it: the window the response used is given back only
/// while the client takes more (`pauseReads` holds it, so the server stops this stream, and
/// only this one), and request bytes the server has no window for wait in `NIOHTTP2Handler`,
/// counted here, which holds up the client's reads (`isWritable`). Closing the stream before
/// its end sends RST_STREAM (CANCEL): a client that goes away cancels the server's work, as
/// gRPC expects.
final class HTTP2UpstreamStream: UpstreamConnection {
    /// Request bytes that may wait for the server's window before the client's reads pause,
    /// and below which they resume (as `HTTP2StreamWriter` does the other way).
    static let outboundHighWatermark = 64 * 1024
    static let outboundLowWatermark = 16 * 1024
    /// Window given back once this much of it was used: half the stream's window.
    static let windowUpdateThreshold = HTTP2ConnectionSet.streamWindow / 2

    /// Given when the stream's first frame is written: a client's streams must open on the
    /// wire in the order of their IDs.
    private(set) var streamID: HTTP2StreamID?
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

    /// Nil once the stream is over for its connection.
    private(set) var connection: HTTP2ServerConnection?
    private var control = ServerReadControl()
    private var requestMethod = HTTPMethod.GET
    /// The request's latest frame, held back until the next one or a flush, so that the frame
    /// that ends the request is usually one it has anyway (a GET is one HEADERS frame).
    private var held: HTTP2Frame.FramePayload?
    private var requestEnded = false
    private var finalResponseArrived = false
    private var responseEnded = false
    /// Reset, or closed by the server: nothing more is written.
    private var isReset = false
    /// The response read since the last `readComplete`.
    private(set) var hasUnreportedReads = false
    /// Response bytes delivered whose window was not given back yet.
    private var windowToReturn = 0
    /// Request body bytes handed to the HTTP/2 handler and not yet encoded for the socket.
    private var bufferedBytes = 0
    /// What the exchange is told if the stream ends before its response did.
    private var failure = BackendFailure.connectionClosed

    init(connection: HTTP2ServerConnection, requestsSent: Int) {
        self.connection = connection
        self.requestsSent = requestsSent
        control.timer.configure(eventLoop: connection.eventLoop) { [weak self] in self?.timerFired() }
    }

    var isWritable: Bool {
        bufferedBytes < Self.outboundHighWatermark && (connection?.isChannelWritable ?? false)
    }

    // MARK: Used by the exchange

    func begin(request: HTTPRequestHead, sink: any BackendResponseSink, responseTimeout: TimeAmount) {
        self.sink = sink
        requestMethod = request.method
        control.responseTimeout = responseTimeout
        control.armResponseTimeout()
    }

    /// The head, which the exchange serialized for HTTP/1.1 (`ForwardingHeaders`), as the
    /// stream's HEADERS.
    func write(_ bytes: ByteBuffer) {
        guard let connection else { return }
        guard let block = HTTP2Heads.requestBlock(serializedHead: bytes, scheme: connection.scheme, authority: connection.authority)
        else {
            // Only the exchange's own serialization comes here; anything else is a bug, and
            // the exchange fails rather than send something else.
            close()
            return
        }
        hold(.headers(.init(headers: block)))
    }

    func writeBody(_ body: ByteBuffer, chunked: Bool) {
        // HTTP/2 frames the body itself: a chunked request's body goes as DATA as it comes.
        guard body.readableBytes > 0 else { return }
        bufferedBytes += body.readableBytes
        hold(.data(.init(data: .byteBuffer(body))))
    }

    func writeEnd(_ trailers: HTTPHeaders?, chunked: Bool) {
        requestEnded = true
        if let trailers, !trailers.isEmpty {
            writeHeld()
            send(.headers(.init(headers: HTTP2Heads.trailersBlock(trailers), endStream: true)))
        } else if var last = held {
            held = nil
            switch last {
            case .headers(var headers):
                headers.endStream = true
                last = .headers(headers)
            case .data(var data):
                data.endStream = true
                last = .data(data)
            default:
                break
            }
            send(last)
        } else {
            send(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true)))
        }
    }

    func flushDeferred() {
        writeHeld()
        connection?.flushIfNeeded()
    }

    func requestProgressed() {
        control.armResponseTimeout()
    }

    func pauseReads(clientTimeout: TimeAmount) {
        control.pause(clientTimeout: clientTimeout, exchangeRunning: sink != nil)
    }

    func resumeReads() {
        if control.resume() { returnWindow() }
    }

    /// Ends the stream: with RST_STREAM (CANCEL) unless both sides have ended it. A sink still
    /// attached hears `backendFailed`, on the next tick (as a channel's would).
    func close() {
        reset(.cancel)
        if let sink, let connection {
            self.sink = nil
            connection.eventLoop.assumeIsolated().execute { [self] in sink.backendFailed(failure, connection: self) }
        }
        finish()
    }

    /// The exchange is over: the stream ends (if the server answered before the request's end,
    /// with RST_STREAM, as RFC 9113 §8.1 allows).
    func release() {
        sink = nil
        reset(.cancel)
        finish()
    }

    func becomeTunnel(_ serverEnd: TunnelHandler) throws {
        // An HTTP/2 server cannot answer 101 (RFC 9113 §8.6); the exchange never asks.
        throw ChannelError.operationUnsupported
    }

    // MARK: Told by the connection

    /// A frame of the response.
    func received(_ payload: HTTP2Frame.FramePayload) {
        switch payload {
        case .headers(let headers):
            receivedHeaders(headers)
        case .data(let data):
            guard case .byteBuffer(let body) = data.data else { return }
            windowToReturn += body.readableBytes + (data.paddingBytes.map { $0 + 1 } ?? 0)
            guard let sink else { return }
            hasUnreportedReads = true
            control.armResponseTimeout()
            if body.readableBytes > 0 { sink.backendResponseBody(body) }
            if data.endStream {
                endResponse(nil)
            } else if control.mayRead() {
                returnWindow()
            }
        default:
            // RST_STREAM comes as the connection's StreamClosedEvent.
            break
        }
    }

    private func receivedHeaders(_ headers: HTTP2Frame.FramePayload.Headers) {
        guard let sink else { return }
        hasUnreportedReads = true
        if finalResponseArrived {
            // Trailers end the response.
            do {
                endResponse(try HTTP2Heads.trailers(from: headers.headers))
            } catch {
                malformedResponse()
            }
            return
        }
        let head: HTTPResponseHead
        do {
            head = try HTTP2Heads.responseHead(from: headers.headers, requestMethod: requestMethod, endStream: headers.endStream)
        } catch {
            malformedResponse()
            return
        }
        control.armResponseTimeout()
        let interim = head.status.code < 200
        if !interim { finalResponseArrived = true }
        sink.backendResponseHead(head, from: self)
        if headers.endStream, !interim { endResponse(nil) }
    }

    private func endResponse(_ trailers: HTTPHeaders?) {
        responseEnded = true
        control.responseEnded()
        sink?.backendResponseEnd(trailers, from: self)
    }

    /// Reports the end of the connection's read, if it brought this stream anything.
    func readComplete() {
        guard hasUnreportedReads else { return }
        hasUnreportedReads = false
        sink?.backendReadComplete()
    }

    /// A DATA frame of the request left for the socket; below the low watermark from above it,
    /// the client may send more.
    func sent(bytes: Int) {
        let wasAbove = bufferedBytes >= Self.outboundLowWatermark
        bufferedBytes -= bytes
        if wasAbove, bufferedBytes < Self.outboundLowWatermark, isWritable {
            sink?.backendWritabilityChanged(isWritable: true)
        }
    }

    /// The connection's channel can take more again.
    func channelBecameWritable() {
        if isWritable { sink?.backendWritabilityChanged(isWritable: true) }
    }

    /// NIOHTTP2 closed the stream, or the connection went: a response not ended fails its
    /// exchange. A refusal (RST_STREAM with REFUSED_STREAM, and NIOHTTP2 reports a GOAWAY's
    /// the same way) means the server did no work: any request may go again.
    func closed(reason: HTTP2ErrorCode?) {
        isReset = true
        if reason == .refusedStream { failure = .streamRefused }
        connection = nil
        control.timer.invalidate()
        if let sink, !responseEnded {
            self.sink = nil
            sink.backendFailed(failure, connection: self)
        }
    }

    // MARK: Writing

    private func hold(_ payload: HTTP2Frame.FramePayload) {
        writeHeld()
        held = payload
    }

    private func writeHeld() {
        if let payload = held {
            held = nil
            send(payload)
        }
    }

    private func send(_ payload: HTTP2Frame.FramePayload) {
        guard !isReset, let connection else { return }
        let id = streamID ?? connection.nextStreamID()
        streamID = id
        connection.write(HTTP2Frame(streamID: id, payload: payload))
    }

    private func returnWindow() {
        guard windowToReturn >= Self.windowUpdateThreshold, !responseEnded, !isReset, let connection, let streamID else { return }
        let increment = windowToReturn
        windowToReturn = 0
        connection.write(HTTP2Frame(streamID: streamID, payload: .windowUpdate(windowSizeIncrement: increment)))
        connection.flushIfNeeded()
    }

    private func reset(_ code: HTTP2ErrorCode) {
        held = nil
        guard !isReset else { return }
        isReset = true
        // A stream that wrote nothing was never opened; one that both sides ended is closed.
        guard let streamID, let connection, !(requestEnded && responseEnded) else { return }
        connection.write(HTTP2Frame(streamID: streamID, payload: .rstStream(code)))
        connection.flushIfNeeded()
    }

    private func malformedResponse() {
        reset(.protocolError)
        if let sink {
            self.sink = nil
            sink.backendFailed(.connectionClosed, connection: self)
        }
        finish()
    }

    /// The exchange let go, or the stream failed. A stream that wrote nothing was never opened:
    /// its connection forgets it now; NIOHTTP2's StreamClosedEvent tells it of the others.
    private func finish() {
        control.timer.invalidate()
        guard streamID == nil, let connection else { return }
        self.connection = nil
        connection.forget(self)
    }

    private func timerFired() {
        guard control.timer.fired() else { return }
        if let sink {
            self.sink = nil
            sink.backendFailed(control.expiryFailure, connection: self)
        }
        release()
    }
}
