import FulcrumConfig
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOTLS

/// Builds the pipeline of a client connection to a frontend: HTTP/1.1, or HTTP/2 negotiated
/// by ALPN (TLS) or detected by its connection preface (`h2c: true`).
///
/// HTTP/1.1: `ClientConnectionGuard` → `HTTPRequestDecoder` → `ProxyHandler` (which writes
/// responses as bytes). HTTP/2: `DeferredFlushHandler` → `NIOHTTP2Handler` without a stream
/// multiplexer → `HTTP2StreamsHandler` (which also closes an idle connection, and sends GOAWAY
/// on shutdown), which runs a `ProxyHandler` per stream on the connection itself, so a
/// stream is routed, balanced and forwarded to the (HTTP/1.1) servers exactly as an HTTP/1.1
/// request is, through the same per-loop pools.
struct ClientPipeline: Sendable {
    let frontendName: String
    let isSecure: Bool
    let clientIdle: TimeAmount
    let headerRead: TimeAmount
    /// How long an HTTP/1.1 connection waits idle before it is parked (nil: never; also when
    /// not shorter than `clientIdle`).
    let parkAfter: TimeAmount?
    let decoderLimits: NIOHTTPDecoderLimitConfiguration
    let maxConcurrentStreams: Int
    /// Offer HTTP/2 by ALPN (TLS frontends whose `alpn` lists h2).
    let negotiatesHTTP2: Bool
    /// Accept HTTP/2 with prior knowledge on a plain listener (`h2c: true`).
    let acceptsPriorKnowledge: Bool
    /// Sources whose connections begin with a PROXY protocol header (`accept_proxy.from`).
    var acceptsProxyProtocolFrom: [CIDRBlock]? = nil
    /// `mode: tcp`: the connection is relayed as bytes to a server (`TCPSession`), not read
    /// as HTTP.
    var mode: ProxyMode = .http
    /// `mode: tcp` with `sni` rules: the ClientHello's server name is read before routing.
    var routesByClientHello = false
    /// `tls.hsts`'s header value, and its whole HTTP/1 line, built once per configuration;
    /// nil on plain listeners.
    var strictTransportSecurity: String? = nil {
        didSet { strictTransportSecurityLine = strictTransportSecurity.map(ForwardingHeaders.strictTransportSecurityLine) }
    }
    private(set) var strictTransportSecurityLine: String?

    /// Whether a connection from `peer` must begin with a PROXY protocol header.
    func expectsProxyProtocol(from peer: SocketAddress?) -> Bool {
        guard let sources = acceptsProxyProtocolFrom, let bytes = peer?.addressBytes else { return false }
        return sources.contains { $0.contains(bytes) }
    }

    /// Configures a new client connection; the TLS handler, if any, is already in place.
    /// `parking` is where the connection parks when idle, if it may; `proxied` is the PROXY
    /// protocol header it began with, whose addresses are the client's; `unparked`: it comes
    /// back from the parking lot because its client sent more.
    func configure(
        channel: any Channel,
        loop: LoopContext,
        parking: ParkingSpot? = nil,
        proxied: ProxyProtocolHeader? = nil,
        unparked: Bool = false
    ) throws {
        let client = ClientInfo(peer: channel.remoteAddress, isSecure: isSecure, proxied: proxied)
        // Counted from here to the close (a future callback, not a handler every read passes).
        let frontendName = frontendName
        loop.traffic.connectionOpened(frontend: frontendName)
        let traffic = NIOLoopBound(loop.traffic, eventLoop: channel.eventLoop)
        channel.closeFuture.whenComplete { _ in traffic.value.connectionClosed(frontend: frontendName) }
        if mode == .tcp {
            let session = TCPSession(
                loop: loop,
                frontendName: frontendName,
                client: client,
                clientHelloTimeout: routesByClientHello ? headerRead : nil
            )
            try channel.pipeline.syncOperations.addHandler(session)
            return
        }
        let connectionGuard = ClientConnectionGuard(clientIdleTimeout: clientIdle, headerReadTimeout: headerRead)
        if let parking, let parkAfter, parkAfter < clientIdle {
            connectionGuard.allowParking(at: parking, after: parkAfter, proxied: proxied)
        }
        if unparked { connectionGuard.clientHasSentMore() }
        // Also bounds a client that connects and never completes the handshake or the preface.
        try channel.pipeline.syncOperations.addHandler(connectionGuard)
        if negotiatesHTTP2 {
            let negotiation = ApplicationProtocolNegotiationHandler { result, channel in
                channel.eventLoop.makeCompletedFuture {
                    if case .negotiated("h2") = result {
                        try configureHTTP2(channel: channel, loop: loop, client: client, replacing: connectionGuard)
                    } else {
                        try configureHTTP1(channel: channel, loop: loop, client: client, connectionGuard: connectionGuard)
                    }
                }
            }
            try channel.pipeline.syncOperations.addHandler(negotiation)
        } else if acceptsPriorKnowledge {
            try channel.pipeline.syncOperations.addHandler(
                HTTP2PrefaceDetector { isHTTP2 in
                    if isHTTP2 {
                        try configureHTTP2(channel: channel, loop: loop, client: client, replacing: connectionGuard)
                    } else {
                        try configureHTTP1(channel: channel, loop: loop, client: client, connectionGuard: connectionGuard)
                    }
                }
            )
        } else {
            try configureHTTP1(channel: channel, loop: loop, client: client, connectionGuard: connectionGuard)
        }
    }

    private func configureHTTP1(
        channel: any Channel,
        loop: LoopContext,
        client: ClientInfo,
        connectionGuard: ClientConnectionGuard
    ) throws {
        let proxy = ProxyHandler(
            loop: loop,
            frontendName: frontendName,
            isSecure: isSecure,
            writer: HTTP1ResponseWriter(
                allocator: channel.allocator,
                strictTransportSecurity: strictTransportSecurityLine
            ),
            connectionGuard: connectionGuard,
            clientIdle: clientIdle,
            client: client
        )
        connectionGuard.proxy = proxy
        try channel.pipeline.syncOperations.addHandlers([
            // No response encoder: the proxy handler writes responses as bytes.
            ByteToMessageHandler(Self.requestDecoder(limits: decoderLimits)),
            proxy,
        ])
    }

    /// The HTTP/1.x request decoder of a client connection. (Bytes after an upgrade request go
    /// on as they are: they belong to the tunnel.)
    static func requestDecoder(limits: NIOHTTPDecoderLimitConfiguration) -> HTTPRequestDecoder {
        HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes, limitConfiguration: limits)
    }

    /// HTTP/2 replaces the connection guard: its per-request timeouts are HTTP/1.1's (a stream
    /// has no head to read byte by byte), and `HTTP2StreamsHandler` bounds the connection's
    /// idle time instead.
    ///
    /// `NIOHTTP2Handler` runs without a stream multiplexer: `HTTP2StreamsHandler` runs every
    /// stream's exchange on the connection, with no child channel per stream.
    private func configureHTTP2(
        channel: any Channel,
        loop: LoopContext,
        client: ClientInfo,
        replacing connectionGuard: ClientConnectionGuard
    ) throws {
        let pipeline = channel.pipeline.syncOperations
        pipeline.removeHandler(connectionGuard, promise: nil)
        // Half-closure is for HTTP/1.1 (a client that ends its side still gets its response);
        // an HTTP/2 client that closes its side is done, and expects the connection to close.
        try channel.syncOptions?.setOption(.allowRemoteHalfClosure, value: false)
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreams),
            HTTP2Setting(parameter: .maxHeaderListSize, value: decoderLimits.maxHeaderListSize),
        ]
        // `HTTP2Heads` checks the client's blocks as it converts them (`HTTP2FieldRules`), and
        // the blocks sent are built from heads llhttp parsed: NIOHTTP2's check of both would
        // cost 12 % of a request.
        connection.headerBlockValidation = .disabled
        let frontendName = frontendName
        let isSecure = isSecure
        let clientIdle = clientIdle
        // `client` was read and formatted once for all the connection's streams (3,400
        // instructions each).
        let streams = HTTP2StreamsHandler(
            connectionWindow: 1 << 20,
            idleTimeout: clientIdle,
            strictTransportSecurity: strictTransportSecurity,
            flushes: loop.flushes
        ) { writer in
            ProxyHandler(
                loop: loop,
                frontendName: frontendName,
                isSecure: isSecure,
                writer: writer,
                connectionGuard: nil,
                clientIdle: clientIdle,
                client: client
            )
        }
        // Before the HTTP/2 handler, so its flushes (every stream's) wait for the loop's batch.
        try pipeline.addHandler(DeferredFlushHandler(flushes: loop.flushes))
        try pipeline.addHandler(NIOHTTP2Handler(mode: .server, frameDelegate: streams, connectionConfiguration: connection))
        try pipeline.addHandler(streams)
    }
}
