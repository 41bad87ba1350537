import NIOCore
import NIOHTTP2

/// One HTTP/2 connection to a server, owned by one event loop's `HTTP2ConnectionSet`: it
/// carries many exchanges at once, each on a stream of its own (`HTTP2UpstreamStream`), run
/// on the connection itself.
///
/// NIOHTTP2's stream multiplexer would give every stream a child channel, with its pipeline,
/// codec, handlers and futures, built and torn down per request; the client side left it for
/// that reason (`HTTP2StreamsHandler`), and so does this side. `NIOHTTP2Handler` runs without a
/// multiplexer and passes the connection's frames to this handler, its last, which does the
/// part of the multiplexer a proxy needs: it numbers the streams, hands each its frames and
/// the end of each read, keeps the connection's receive window open, tells each stream when
/// its request bytes leave (as the handler's frame delegate) and when it closes.
///
/// It takes new streams while it has fewer than `maxStreams` open and the server has not sent
/// GOAWAY. `maxStreams` is the backend's `max_concurrent_streams`, or the server's
/// SETTINGS_MAX_CONCURRENT_STREAMS when that is lower.
final class HTTP2ServerConnection: ChannelDuplexHandler, NIOHTTP2FrameDelegate {
    typealias InboundIn = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    /// The connection window kept open (the protocol's is 64 KiB): room for every stream's
    /// window, so one slow stream cannot stall the others.
    static let connectionWindow = 1 << 22
    /// Streams one connection opens before it closes for a new one (stream IDs end at 2^31).
    static let streamsPerConnection = 1 << 30

    let eventLoop: any EventLoop
    /// The PROXY protocol header the connection began with (nil: none); only exchanges of the
    /// same client connection use it.
    let proxyHeader: ByteBuffer?
    let scheme: String
    /// `:authority` for requests that had no `Host`.
    let authority: String
    private let configuredMaximum: Int
    private(set) var maxStreams: Int
    /// The streams given out and not yet closed, in the order they opened; a connection has
    /// few, and a linear search of them costs less than hashing.
    private var streams: [HTTP2UpstreamStream] = []
    /// Streams ever opened on it.
    private(set) var streamsOpened = 0
    /// GOAWAY came, or the connection closed: it takes no new stream.
    private(set) var isClosing = false
    /// Told when the connection can take more streams again, or is gone.
    var onCapacityChange: ((HTTP2ServerConnection) -> Void)?
    private var context: ChannelHandlerContext?
    private var lastStreamNumber = -1
    private var hasUnflushedWrites = false

    init(eventLoop: any EventLoop, isSecure: Bool, authority: String, maxStreams: Int, proxyHeader: ByteBuffer?) {
        self.eventLoop = eventLoop
        self.scheme = isSecure ? "https" : "http"
        self.authority = authority
        self.configuredMaximum = maxStreams
        self.maxStreams = maxStreams
        self.proxyHeader = proxyHeader
    }

    var openStreams: Int { streams.count }
    var hasCapacity: Bool { !isClosing && streams.count < maxStreams }
    var isChannelWritable: Bool { context?.channel.isWritable ?? false }

    /// A stream for one exchange. It opens on the wire with its first frame.
    func openStream() -> HTTP2UpstreamStream {
        streamsOpened += 1
        let stream = HTTP2UpstreamStream(connection: self, requestsSent: streamsOpened)
        streams.append(stream)
        if streamsOpened >= Self.streamsPerConnection { closing() }
        return stream
    }

    /// The next stream ID: a client's are odd, and rise in the order streams open.
    func nextStreamID() -> HTTP2StreamID {
        lastStreamNumber += 2
        return HTTP2StreamID(lastStreamNumber)
    }

    /// A stream that never opened on the wire, let go by its exchange.
    func forget(_ stream: HTTP2UpstreamStream) {
        guard let index = streams.firstIndex(where: { $0 === stream }) else { return }
        streams.remove(at: index)
        onCapacityChange?(self)
    }

    func write(_ frame: HTTP2Frame) {
        guard let context else { return }
        context.write(wrapOutboundOut(frame), promise: nil)
        hasUnflushedWrites = true
    }

    /// Flushes what the streams wrote: once per event-loop tick however many did, as the
    /// streams' flushes come from the loop's `DeferredFlushes`.
    func flushIfNeeded() {
        guard hasUnflushedWrites, let context else { return }
        hasUnflushedWrites = false
        context.flush()
    }

    /// Closes once its open streams end (GOAWAY first, as NIOHTTP2 does on close).
    func close() {
        isClosing = true
        context?.close(promise: nil)
    }

    /// GOAWAY, or the channel closed: streams already open finish (or fail), no new ones.
    func closing() {
        guard !isClosing else { return }
        isClosing = true
        onCapacityChange?(self)
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        closeAll()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if frame.streamID == .rootStream {
            switch frame.payload {
            case .settings(.settings(let settings)):
                settingsReceived(settings)
            case .goAway:
                closing()
            default:
                // NIOHTTP2Handler answers PING and SETTINGS itself.
                break
            }
            return
        }
        // Frames of a stream the exchange let go, or a server's push (refused: push is off).
        guard let stream = stream(frame.streamID) else { return }
        stream.received(frame.payload)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        for stream in streams { stream.readComplete() }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // By the event's type first, then one cast that cannot fail (as `HTTP2StreamsHandler`).
        let type = ObjectIdentifier(Swift.type(of: event))
        if type == ObjectIdentifier(NIOHTTP2WindowUpdatedEvent.self) {
            let event = event as! NIOHTTP2WindowUpdatedEvent
            if event.streamID == .rootStream { connectionWindowChanged(event, context: context) }
        } else if type == ObjectIdentifier(StreamClosedEvent.self) {
            let event = event as! StreamClosedEvent
            streamClosed(event.streamID, reason: event.reason)
        } else if type != ObjectIdentifier(NIOHTTP2StreamCreatedEvent.self) {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            for stream in streams { stream.channelBecameWritable() }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closing()
        closeAll()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A stream's error was answered by NIOHTTP2 with RST_STREAM, and its StreamClosedEvent
        // follows; a connection's (NIOHTTP2 sent GOAWAY for it) leaves nothing usable.
        if error is NIOHTTP2Errors.StreamError { return }
        closing()
        context.close(promise: nil)
    }

    // MARK: NIOHTTP2FrameDelegate

    /// `NIOHTTP2Handler` encoded a frame for the socket: a DATA frame's bytes no longer wait
    /// for the server's window.
    func wroteFrame(_ frame: HTTP2Frame) {
        guard case .data(let data) = frame.payload, let stream = stream(frame.streamID) else { return }
        stream.sent(bytes: data.data.readableBytes)
    }

    // MARK: Streams and windows

    private func stream(_ streamID: HTTP2StreamID) -> HTTP2UpstreamStream? {
        for stream in streams where stream.streamID == streamID { return stream }
        return nil
    }

    private func streamClosed(_ streamID: HTTP2StreamID, reason: HTTP2ErrorCode?) {
        guard let index = streams.firstIndex(where: { $0.streamID == streamID }) else { return }
        let stream = streams.remove(at: index)
        stream.closed(reason: reason)
        onCapacityChange?(self)
    }

    /// The server's SETTINGS: it may allow fewer streams than the backend's limit.
    private func settingsReceived(_ settings: HTTP2Settings) {
        guard let allowed = settings.last(where: { $0.parameter == .maxConcurrentStreams })?.value else { return }
        maxStreams = max(1, min(configuredMaximum, allowed))
        onCapacityChange?(self)
    }

    /// Tops the connection's window up to its target once half of it is used, as NIOHTTP2's
    /// multiplexer does.
    private func connectionWindowChanged(_ event: NIOHTTP2WindowUpdatedEvent, context: ChannelHandlerContext) {
        guard let window = event.inboundWindowSize, window <= Self.connectionWindow / 2 else { return }
        let increment = Self.connectionWindow - window
        context.writeAndFlush(
            wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: increment))),
            promise: nil
        )
    }

    private func closeAll() {
        let open = streams
        streams.removeAll()
        for stream in open { stream.closed(reason: nil) }
        if !open.isEmpty { onCapacityChange?(self) }
    }
}
