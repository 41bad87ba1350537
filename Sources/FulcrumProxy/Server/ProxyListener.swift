import FulcrumConfig
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOHTTP1

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
    private let currentBinding: NIOLockedValueBox<Binding>

    init(configuredAddress: ListenAddress, channel: any Channel, quiescing: ServerQuiescingHelper, binding: NIOLockedValueBox<Binding>) {
        self.configuredAddress = configuredAddress
        self.boundAddress = channel.localAddress!
        self.channel = channel
        self.quiescing = quiescing
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
