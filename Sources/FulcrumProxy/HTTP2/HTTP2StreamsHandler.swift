import NIOCore
import NIOHTTP1
import NIOHTTP2

/// Runs an HTTP/2 connection's streams on the connection itself: each stream is a
/// `ProxyHandler` and its `HTTP2StreamWriter`, fed the stream's frames, with no channel of its
/// own.
///
/// NIOHTTP2's stream multiplexer gives every stream a child channel, with its pipeline, its
/// codec and its handlers, built and torn down per request; that machinery was about a
/// quarter of an HTTP/2 request's instructions (bench/RESULTS.md). Here `NIOHTTP2Handler` runs
/// without a multiplexer and passes the connection's frames down its pipeline, and this handler
/// does the part of the multiplexer a proxy needs:
///
/// - a request's first HEADERS frame starts its stream's exchange, later ones are its
///   trailers, and DATA frames its body (`HTTP2Heads`);
/// - inbound flow control: the connection's window is given back as it is used, and a
///   stream's once its exchange reads on (`ProxyHandler.read`), so a server that does not
///   take a body stops the client, one stream at a time;
/// - outbound flow control: `NIOHTTP2Handler` holds DATA frames the client has no window for,
///   and tells this handler, as its frame delegate, when each leaves; a stream with too much
///   waiting pauses its server's reads;
/// - a stream that closes or is reset (`StreamClosedEvent`) ends its exchange, and the
///   connection's end ends them all;
/// - the connection's life (`HTTP2StreamsHandler+Lifecycle.swift`): it closes after
///   `client_idle` with no stream open, and on shutdown sends GOAWAY and closes once its last
///   stream ends.
///
/// It is the last handler of the connection's pipeline, right after `NIOHTTP2Handler`.
final class HTTP2StreamsHandler: ChannelDuplexHandler, NIOHTTP2FrameDelegate, DeferredFlushTarget {
    typealias InboundIn = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    /// Makes the exchange of a new stream.
    typealias ExchangeFactory = (HTTP2StreamWriter) -> ProxyHandler

    private struct Stream {
        let writer: HTTP2StreamWriter
        let exchange: ProxyHandler
    }

    /// The connection window this handler keeps open (NIOHTTP2's own default is 64 KiB): room
    /// for every stream's window, so one slow stream cannot stall the others.
    let connectionWindow: Int
    /// The frontend's `tls.hsts` value, on every stream's final responses.
    let strictTransportSecurity: String?
    private let makeExchange: ExchangeFactory
    /// The loop's flushes: the streams' writes are flushed once per tick, together.
    private let flushes: DeferredFlushes
    var isFlushQueued = false
    private(set) var context: ChannelHandlerContext?
    /// The open streams, in the order they opened; a connection has few (at most
    /// `max_concurrent_streams`), and a linear search of them costs less than hashing.
    private var streams: [Stream] = []
    /// The streams whose first HEADERS arrived and that NIOHTTP2 has not reported closed (with
    /// those reset for a malformed block, which have no exchange), for the idle time and the
    /// shutdown.
    var openStreams: [HTTP2StreamID] = []
    /// The highest stream the client opened (for GOAWAY).
    var lastStreamID = HTTP2StreamID.rootStream
    /// How long the connection may stay open with no stream (`client_idle`).
    let idleTimeout: TimeAmount
    var idleTimer = DeadlineTimer()
    /// A GOAWAY was sent: the connection closes once its last stream ends.
    var isDraining = false

    init(
        connectionWindow: Int,
        idleTimeout: TimeAmount,
        strictTransportSecurity: String?,
        flushes: DeferredFlushes,
        makeExchange: @escaping ExchangeFactory
    ) {
        self.flushes = flushes
        self.connectionWindow = connectionWindow
        self.idleTimeout = idleTimeout
        self.strictTransportSecurity = strictTransportSecurity
        self.makeExchange = makeExchange
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        idleTimer.configure(eventLoop: context.eventLoop) { [unowned self] in idleTimerFired() }
        idleTimer.arm(in: idleTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        closeAll()
        idleTimer.invalidate()
        self.context = nil
    }

    // MARK: Frames from the client

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let headers):
            if let index = index(of: frame.streamID) {
                receivedTrailers(headers, on: streams[index])
            } else {
                open(frame.streamID, headers: headers, context: context)
            }
        case .data(let data):
            guard let index = index(of: frame.streamID) else { return }
            receivedData(data, on: streams[index], context: context)
        default:
            // RST_STREAM arrives as a StreamClosedEvent; NIOHTTP2Handler answers PING and
            // SETTINGS itself.
            break
        }
    }

    private func open(_ streamID: HTTP2StreamID, headers: HTTP2Frame.FramePayload.Headers, context: ChannelHandlerContext) {
        streamCreated(streamID)
        let head: HTTPRequestHead
        do {
            head = try HTTP2Heads.requestHead(from: headers.headers, endStream: headers.endStream)
        } catch {
            context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: streamID, payload: .rstStream(.protocolError))), promise: nil)
            return
        }
        let writer = HTTP2StreamWriter(streamID: streamID, strictTransportSecurity: strictTransportSecurity)
        writer.connection = self
        let exchange = makeExchange(writer)
        let stream = Stream(writer: writer, exchange: exchange)
        streams.append(stream)
        exchange.attach(to: context)
        if headers.endStream { writer.requestEnded = true }
        exchange.received(.head(head))
        if headers.endStream {
            exchange.received(.end(nil))
        }
    }

    private func receivedTrailers(_ headers: HTTP2Frame.FramePayload.Headers, on stream: Stream) {
        guard let context else { return }
        stream.writer.requestEnded = true
        do {
            let trailers = try HTTP2Heads.trailers(from: headers.headers)
            stream.exchange.received(.end(trailers))
        } catch {
            // Malformed trailers make the request malformed: the stream is reset, and its
            // StreamClosedEvent ends the exchange.
            stream.writer.isClosed = true
            context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: stream.writer.streamID, payload: .rstStream(.protocolError))), promise: nil)
        }
    }

    private func receivedData(_ data: HTTP2Frame.FramePayload.Data, on stream: Stream, context: ChannelHandlerContext) {
        guard case .byteBuffer(let body) = data.data else { return }
        stream.writer.received(flowControlled: body.readableBytes + (data.paddingBytes.map { $0 + 1 } ?? 0))
        if data.endStream { stream.writer.requestEnded = true }
        if body.readableBytes > 0 {
            stream.exchange.received(.body(body))
        }
        if data.endStream {
            stream.exchange.received(.end(nil))
        } else {
            // As a channel's read after its reads complete: the exchange gives the window back
            // now, or once its server can take more.
            stream.exchange.read(context: context)
        }
    }

    // MARK: Stream and connection events

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // By the event's type first, then one cast that cannot fail: a failed `as?` costs as
        // much as a cast, and these come several times per stream. By how often they come: a
        // window change for every DATA frame and closed stream, then one creation (which needs
        // no cast) and one closure per stream.
        let type = ObjectIdentifier(Swift.type(of: event))
        if type == ObjectIdentifier(NIOHTTP2WindowUpdatedEvent.self) {
            let event = event as! NIOHTTP2WindowUpdatedEvent
            if event.streamID == .rootStream { connectionWindowChanged(event, context: context) }
        } else if type == ObjectIdentifier(NIOHTTP2StreamCreatedEvent.self) {
            // Nothing to read: a stream counts as open from its first HEADERS (`open`).
        } else if type == ObjectIdentifier(StreamClosedEvent.self) {
            streamClosed((event as! StreamClosedEvent).streamID, context: context)
        } else if event is ChannelShouldQuiesceEvent {
            drain(context: context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// The connection's window, as NIOHTTP2's multiplexer keeps it: topped up to its target
    /// once half of it is used.
    private func connectionWindowChanged(_ event: NIOHTTP2WindowUpdatedEvent, context: ChannelHandlerContext) {
        if let window = event.inboundWindowSize, window <= connectionWindow / 2 {
            let increment = connectionWindow - window
            context.write(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: increment))), promise: nil)
            context.flush()
        }
    }

    /// A stream ended, normally or by a reset: its exchange ends with it. (NIOHTTP2 also
    /// reports streams whose first block it refused itself, which this handler never saw.)
    private func streamClosed(_ streamID: HTTP2StreamID, context: ChannelHandlerContext) {
        if let index = index(of: streamID) {
            let stream = streams.remove(at: index)
            stream.writer.isClosed = true
            stream.writer.connection = nil
            stream.exchange.clientClosed()
        }
        streamEnded(streamID, context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            for stream in streams { stream.exchange.clientBecameWritable() }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closeAll()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A stream's error was answered by NIOHTTP2 with RST_STREAM, and its StreamClosedEvent
        // follows; a connection's closes the connection. Neither needs more here.
        if error is NIOHTTP2Errors.StreamError { return }
        context.fireErrorCaught(error)
    }

    private func closeAll() {
        let open = streams
        streams.removeAll()
        for stream in open {
            stream.writer.isClosed = true
            stream.writer.connection = nil
            stream.exchange.clientClosed()
        }
    }

    // MARK: Frames to the client (NIOHTTP2FrameDelegate)

    /// A stream wrote: the connection is flushed once the loop has handled its current I/O
    /// events, once for every stream that wrote meanwhile (each flush makes NIOHTTP2Handler
    /// walk its flow-control buffers).
    func flushSoon() {
        flushes.flushSoon(self)
    }

    func flushDeferred() {
        context?.flush()
    }

    /// `NIOHTTP2Handler` encoded a frame for the socket. A DATA frame's bytes no longer wait
    /// for the client's window.
    func wroteFrame(_ frame: HTTP2Frame) {
        guard case .data(let data) = frame.payload, let index = index(of: frame.streamID) else { return }
        let stream = streams[index]
        if stream.writer.sent(bytes: data.data.readableBytes), let context, context.channel.isWritable {
            stream.exchange.clientBecameWritable()
        }
    }

    private func index(of streamID: HTTP2StreamID) -> Int? {
        streams.firstIndex { $0.writer.streamID == streamID }
    }
}
