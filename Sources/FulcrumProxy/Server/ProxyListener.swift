import FulcrumConfig
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One bound listening socket of a frontend.
///
/// The socket outlives reloads that keep its address: what it serves new connections with
/// (the frontend's name, timeouts and limits, its certificates) is its `binding`, read once per
/// accepted connection and replaced by a reload. Connections already open keep the settings
/// they were accepted with (a parked one takes the current settings when it comes back).
///
/// The parking lot accepts on the socket (`ParkingLot`); `serve` makes each connection a
/// channel on the next event loop, as `ServerBootstrap` would.
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
    let socket: ListeningSocket
    /// Its open channels, which closing it drains.
    let connections = ConnectionTracker()
    private let currentBinding: NIOLockedValueBox<Binding>
    private let group: any EventLoopGroup
    private let contexts: LoopContextTable

    /// The address actually bound (the port is known here when the configured one was 0).
    var boundAddress: SocketAddress { socket.boundAddress }

    /// Binds `address` with the frontend's `binding`; it accepts once given to the parking lot.
    init(address: ListenAddress, binding: Binding, group: any EventLoopGroup, contexts: LoopContextTable) throws {
        configuredAddress = address
        socket = try ListeningSocket(host: address.host, port: address.port)
        currentBinding = NIOLockedValueBox(binding)
        self.group = group
        self.contexts = contexts
    }

    var binding: Binding {
        get { currentBinding.withLockedValue { $0 } }
        set { currentBinding.withLockedValue { $0 = newValue } }
    }

    /// Makes a connection the parking lot accepted (or that comes back from it) a channel on
    /// the next event loop, with the pipeline of the current binding. The socket already counts
    /// against `limits`, until it really closes.
    func serve(_ descriptor: CInt, limits: ConnectionLimits, lot: ParkingLot) {
        let binding = self.binding
        let client = ClientSocket(descriptor: descriptor, listener: self, limits: limits, lot: lot)
        let (connections, contexts) = (connections, contexts)
        // On the loop itself, where `withConnectedSocket` sets the channel up at once; called
        // from another thread, it would submit that with a promise and a future chain.
        let loop = group.next()
        loop.execute {
            ClientBootstrap(group: loop)
                // (Drops the bootstrap's one default option, TCP_NODELAY, which it would apply
                // through a chain of futures, 12,600 instructions per connection. Fulcrum sets
                // TCP_NODELAY when it accepts (`ParkingLot`); multipath TCP concerns sockets the
                // bootstrap creates, and it creates none here.)
                .enableMPTCP(true)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        client.isAttached = true
                        connections.add(channel)
                        channel.closeFuture.whenComplete { _ in
                            connections.remove(channel)
                            client.channelClosed()
                        }
                        guard let options = channel.syncOptions else { throw ChannelError.operationUnsupported }
                        // A client that half-closes after its request still gets the response.
                        try options.setOption(.allowRemoteHalfClosure, value: true)
                        if let certificates = binding.certificates {
                            // Replaced by the TLS handler once the client's hello names a host.
                            try channel.pipeline.syncOperations.addHandler(certificates.makeSNIHandler(channel: channel))
                        }
                        // Only plain HTTP/1.1 parks: over TLS the session's state lives in the
                        // TLS handler, and an HTTP/2 connection's in its codec.
                        let parking = binding.certificates == nil ? client : nil
                        try binding.pipeline.configure(channel: channel, loop: contexts.context(for: channel.eventLoop), parking: parking)
                    }
                }
                .withConnectedSocket(descriptor)
                .whenFailure { _ in
                    // Failing before the initializer ran, the socket never became a channel,
                    // and nothing closed it; after, the channel's close did.
                    if !client.isAttached {
                        _ = Glibc.close(descriptor)
                        limits.closed()
                    }
                }
        }
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
        // Over TLS only: browsers ignore it over plain HTTP (RFC 6797 §8.1).
        pipeline.strictTransportSecurity = certificates == nil ? nil : frontend.tls?.hsts?.headerValue
        self.init(pipeline: pipeline, certificates: certificates, limits: limits)
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
