import NIOCore
import NIOHTTP1
import NIOHTTP2

/// One HTTP/2 connection to a server, owned by one event loop's `HTTP2ConnectionSet`: it
/// carries many exchanges at once, each on a stream of its own (`HTTP2UpstreamStream`).
///
/// It takes new streams while it has fewer than `maxStreams` open and the server has not sent
/// GOAWAY. `maxStreams` is the backend's `max_concurrent_streams`, or the server's
/// SETTINGS_MAX_CONCURRENT_STREAMS when that is lower (`HTTP2SettingsObserver` reads it).
final class HTTP2ServerConnection {
    let channel: any Channel
    /// The PROXY protocol header the connection began with (nil: none); only exchanges of the
    /// same client connection use it.
    let proxyHeader: ByteBuffer?
    private let multiplexer: NIOHTTP2Handler.StreamMultiplexer
    private let scheme: HTTP2FramePayloadToHTTP1ClientCodec.HTTPProtocol
    private let authority: String
    private let configuredMaximum: Int
    private(set) var maxStreams: Int
    private(set) var openStreams = 0
    /// Streams ever opened on it.
    private(set) var streamsOpened = 0
    /// GOAWAY came, or the connection closed: it takes no new stream.
    private(set) var isClosing = false
    /// Told when the connection can take more streams again, or is gone.
    var onCapacityChange: ((HTTP2ServerConnection) -> Void)?

    init(
        channel: any Channel,
        multiplexer: NIOHTTP2Handler.StreamMultiplexer,
        isSecure: Bool,
        authority: String,
        maxStreams: Int,
        proxyHeader: ByteBuffer?
    ) {
        self.channel = channel
        self.multiplexer = multiplexer
        self.scheme = isSecure ? .https : .http
        self.authority = authority
        self.configuredMaximum = maxStreams
        self.maxStreams = maxStreams
        self.proxyHeader = proxyHeader
    }

    var hasCapacity: Bool { !isClosing && openStreams < maxStreams }

    /// Opens a stream for one exchange. The future completes on the connection's loop.
    func openStream() -> EventLoopFuture<HTTP2UpstreamStream> {
        openStreams += 1
        streamsOpened += 1
        let (scheme, authority, carried) = (scheme, authority, streamsOpened)
        let created = channel.eventLoop.makePromise(of: (any Channel).self)
        multiplexer.createStreamChannel(promise: created) { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandlers([
                    HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: scheme),
                    HTTP2UpstreamStream(requestsSent: carried, authority: authority),
                ])
            }
        }
        return created.futureResult.assumeIsolated().flatMapThrowing { [self] stream in
            stream.closeFuture.assumeIsolated().whenComplete { _ in self.streamClosed() }
            return try stream.pipeline.syncOperations.handler(type: HTTP2UpstreamStream.self)
        }.flatMapErrorThrowing { [self] error in
            streamClosed()
            throw error
        }.nonisolated()
    }

    private func streamClosed() {
        openStreams -= 1
        onCapacityChange?(self)
    }

    /// The server's SETTINGS: it may allow fewer streams than the backend's limit.
    func settingsReceived(_ settings: HTTP2Settings) {
        guard let allowed = settings.last(where: { $0.parameter == .maxConcurrentStreams })?.value else { return }
        maxStreams = max(1, min(configuredMaximum, allowed))
        onCapacityChange?(self)
    }

    /// GOAWAY, or the channel closed: streams already open finish (or fail), no new ones.
    func closing() {
        guard !isClosing else { return }
        isClosing = true
        onCapacityChange?(self)
    }

    /// Closes once its open streams end (GOAWAY first, as NIOHTTP2 does on close).
    func close() {
        isClosing = true
        channel.close(promise: nil)
    }
}

/// Watches the connection-level frames of an HTTP/2 connection to a server (after
/// `NIOHTTP2Handler`, which hands on frames of stream 0) for the server's SETTINGS and GOAWAY,
/// and tells its `HTTP2ServerConnection`.
///
/// The server's first SETTINGS may come before the connection object exists (in the read that
/// completes the TLS handshake): what came is kept and applied when it is set.
final class HTTP2SettingsObserver: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame

    weak var connection: HTTP2ServerConnection? {
        didSet {
            if let settings { connection?.settingsReceived(settings) }
            if sawGoAway { connection?.closing() }
        }
    }
    private var settings: HTTP2Settings?
    private var sawGoAway = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data).payload {
        case .settings(.settings(let settings)):
            self.settings = (self.settings ?? []) + settings
            connection?.settingsReceived(settings)
        case .goAway:
            sawGoAway = true
            connection?.closing()
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection?.closing()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A connection error (NIOHTTP2 sent GOAWAY for it): nothing more can use it.
        connection?.closing()
        context.close(promise: nil)
    }
}
