import FulcrumConfig
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix

/// One bound listening socket of a frontend.
///
/// The socket outlives reloads that keep its address: what it serves new connections with
/// (the frontend's name, timeouts and limits, its certificates) is its `binding`, read once per
/// accepted connection and replaced by a reload. Connections already open keep the settings
/// they were accepted with.
final class ProxyListener: Sendable {
    /// How a listener configures the connections it accepts.
    struct Binding: Sendable {
        let pipeline: ClientPipeline
        /// The frontend's certificate store when it terminates TLS.
        let certificates: CertificateStore?
        /// The `max_connections` caps its connections count against.
        let limits: ConnectionLimits

        var frontend: String { pipeline.frontendName }
    }

    /// The address as configured (what a reload compares).
    let configuredAddress: ListenAddress
    /// The address actually bound (the port is known here when the configured one was 0).
    let boundAddress: SocketAddress
    let channel: any Channel
    let quiescing: ServerQuiescingHelper
    /// Where its idle connections park, and the channels that came back from there.
    let parking: ParkingSpot
    private let currentBinding: NIOLockedValueBox<Binding>

    init(
        configuredAddress: ListenAddress,
        channel: any Channel,
        quiescing: ServerQuiescingHelper,
        parking: ParkingSpot,
        binding: NIOLockedValueBox<Binding>
    ) {
        self.configuredAddress = configuredAddress
        self.boundAddress = channel.localAddress!
        self.channel = channel
        self.quiescing = quiescing
        self.parking = parking
        self.currentBinding = binding
    }

    var binding: Binding {
        get { currentBinding.withLockedValue { $0 } }
        set { currentBinding.withLockedValue { $0 = newValue } }
    }

    /// Starts accepting: a listener is bound with `autoRead` off, so that a reload can bind it
    /// before the loops serve the snapshot that knows its frontend.
    func startAccepting() async throws {
        try await channel.setOption(.autoRead, value: true).get()
    }
}

extension ProxyListener.Binding {
    init(frontend: FrontendConfig, certificates: CertificateStore?, limits: ConnectionLimits) {
        var pipeline = ClientPipeline(
            frontendName: frontend.name,
            isSecure: certificates != nil,
            clientIdle: TimeAmount(frontend.timeouts.clientIdle),
            headerRead: TimeAmount(frontend.timeouts.headerRead),
            parkAfter: frontend.timeouts.parkAfter > .zero ? TimeAmount(frontend.timeouts.parkAfter) : nil,
            decoderLimits: NIOHTTPDecoderLimitConfiguration(frontend: frontend),
            maxConcurrentStreams: frontend.limits.maxConcurrentStreams,
            negotiatesHTTP2: frontend.tls?.alpn.contains("h2") ?? false,
            acceptsPriorKnowledge: frontend.h2c
        )
        pipeline.acceptsProxyProtocolFrom = frontend.acceptProxyFrom
        pipeline.mode = frontend.mode
        pipeline.routesByClientHello = frontend.mode == .tcp && frontend.routesByClientHello
        // Over TLS only: browsers ignore it over plain HTTP (RFC 6797 §8.1).
        pipeline.strictTransportSecurity = certificates == nil ? nil : frontend.tls?.hsts?.headerValue
        self.init(pipeline: pipeline, certificates: certificates, limits: limits)
    }
}

extension ProxyListener.Binding {
    /// Builds a new connection's pipeline: TLS if the frontend terminates it, then HTTP.
    /// `proxied`: the PROXY protocol header the connection began with.
    func configure(channel: any Channel, loop: LoopContext, parking: ParkingSpot, proxied: ProxyProtocolHeader?) throws {
        if let certificates {
            // Replaced by the TLS handler once the client's hello is read.
            try channel.pipeline.syncOperations.addHandler(certificates.makeHelloHandler())
        }
        // Only plain HTTP/1.1 parks: over TLS the session's state lives in the TLS handler
        // (and an HTTP/2 connection's in its codec, which the pipeline knows).
        try pipeline.configure(
            channel: channel,
            loop: loop,
            parking: certificates == nil ? parking : nil,
            proxied: proxied
        )
    }
}

extension NIOHTTPDecoderLimitConfiguration {
    /// The request decoder's limits for a frontend: `max_header_size` bounds the head.
    init(frontend: FrontendConfig) {
        self.init()
        maxHeaderListSize = frontend.limits.maxHeaderBytes
        maxHeaderFieldSize = frontend.limits.maxHeaderBytes
    }
}

extension ProxyListener {
    /// Binds `address` with the frontend's `binding`, not accepting yet (`startAccepting`).
    static func bind(
        address: ListenAddress,
        binding: ProxyListener.Binding,
        events: ListenerEventCounts,
        lot: ParkingLot,
        group: any EventLoopGroup,
        contexts: LoopContextTable,
        logger: Logger
    ) async throws -> ProxyListener {
        let quiescing = ServerQuiescingHelper(group: group)
        let current = NIOLockedValueBox(binding)
        let parking = ParkingSpot(lot: lot, binding: current, group: group, contexts: contexts)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // Accepting starts once the loops serve a snapshot that knows this frontend.
            .serverChannelOption(.autoRead, value: false)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        AcceptErrorBackoff(binding: current, events: events, logger: logger),
                        AcceptGate(binding: current, events: events),
                        quiescing.makeServerChannelHandler(channel: channel)
                    )
                }
            }
            // No `childChannelOption`s: the bootstrap applies those through a chain of futures,
            // about 27,000 instructions per connection for three options; set synchronously
            // here, a new connection costs 23,849 fewer (bench/callgrind.sh --new-connections).
            // Child channels read as usual: the server channel's autoRead is not inherited.
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let options = channel.syncOptions else { throw ChannelError.operationUnsupported }
                    try options.setOption(.socketOption(.tcp_nodelay), value: 1)
                    // A client that half-closes after its request still gets the response.
                    try options.setOption(.allowRemoteHalfClosure, value: true)
                    // Read once per connection: a reload may have replaced it.
                    let binding = current.withLockedValue { $0 }
                    let loop = contexts.context(for: channel.eventLoop)
                    guard binding.pipeline.expectsProxyProtocol(from: channel.remoteAddress) else {
                        return try binding.configure(channel: channel, loop: loop, parking: parking, proxied: nil)
                    }
                    // TLS and HTTP wait for the header, which comes first and names the client.
                    try channel.pipeline.syncOperations.addHandler(
                        ProxyProtocolReceiver(
                            timeout: binding.pipeline.headerRead,
                            frontend: binding.frontend,
                            logger: logger
                        ) { header, channel in
                            try binding.configure(channel: channel, loop: loop, parking: parking, proxied: header)
                        }
                    )
                }
            }
            .bind(host: address.host, port: address.port)
            .get()
        return ProxyListener(configuredAddress: address, channel: channel, quiescing: quiescing, parking: parking, binding: current)
    }
}
