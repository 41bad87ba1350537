import FulcrumConfig
import NIOCore
import NIOSSL
import NIOTLS

/// TLS to one server: the context (verification, trust roots, client certificate) built once
/// when the configuration is applied, and the name sent by SNI and verified.
struct BackendTLS: Sendable {
    let context: NIOSSLContext
    /// nil when the server is addressed by IP and no `sni` is set.
    let serverName: String?
    /// The server speaks HTTP/2 (`protocol: h2`): ALPN offers `h2` alone, and a server that
    /// does not choose it fails the handshake (`TLSHandshakeWatcher`).
    let requiresHTTP2: Bool

    /// - Throws: `StartupError.badServerTLS` naming what could not be read.
    init(_ settings: ServerTLSConfig, host: String, http2: Bool = false, backend: String, server: String) throws {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        requiresHTTP2 = http2
        if http2 {
            configuration.applicationProtocols = ["h2"]
        }
        configuration.certificateVerification = settings.verify ? .fullVerification : .none
        do {
            if let ca = settings.caFile {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
            }
            if let client = settings.clientCertificateFile {
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(client).map { .certificate($0) }
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: client, format: .pem))
            }
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw StartupError.badServerTLS(backend: backend, server: server, reason: "\(error)")
        }
        let isIPLiteral = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        serverName = settings.serverName ?? (isIPLiteral ? nil : host)
    }
}

/// Why a TLS connection to a server could not be set up.
struct BackendTLSError: Error, CustomStringConvertible {
    let underlying: any Error

    var description: String {
        if let ssl = underlying as? NIOSSLError, case .handshakeFailed(let error) = ssl {
            return "TLS handshake failed (\(error))"
        }
        if let notHTTP2 = underlying as? HTTP2NotNegotiated {
            return "\(notHTTP2)"
        }
        return "TLS handshake failed (\(underlying))"
    }
}

/// A `protocol: h2` server that did not choose `h2` by ALPN.
struct HTTP2NotNegotiated: Error, CustomStringConvertible {
    let negotiated: String?

    var description: String {
        "the server did not agree to HTTP/2 by ALPN (it chose \(negotiated.map { "\"\($0)\"" } ?? "nothing")); is it an h2 server?"
    }
}

/// Completes `handshake` when the TLS handshake with a server is done (or fails), so that a
/// connection counts as made only once it can carry a request; then leaves the pipeline.
/// With `requiresHTTP2`, a server that did not choose `h2` by ALPN fails it.
final class TLSHandshakeWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    let handshake: EventLoopPromise<Void>
    let requiresHTTP2: Bool

    init(handshake: EventLoopPromise<Void>, requiresHTTP2: Bool = false) {
        self.handshake = handshake
        self.requiresHTTP2 = requiresHTTP2
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted(let negotiated) = event {
            if requiresHTTP2, negotiated != "h2" {
                handshake.fail(BackendTLSError(underlying: HTTP2NotNegotiated(negotiated: negotiated)))
                context.close(promise: nil)
                return
            }
            handshake.succeed()
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A server that knows none of the offered protocols may end the handshake with
        // no_application_protocol (RFC 7301 §3.2) rather than choose none (nginx does).
        if requiresHTTP2, "\(error)".contains("NO_APPLICATION_PROTOCOL") {
            handshake.fail(BackendTLSError(underlying: HTTP2NotNegotiated(negotiated: nil)))
        } else {
            handshake.fail(BackendTLSError(underlying: error))
        }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshake.fail(BackendTLSError(underlying: ChannelError.eof))
        context.fireChannelInactive()
    }
}

extension EventLoopFuture where Value == any Channel {
    /// A connection to a server counts as made once `handshake` (its TLS handshake, when it
    /// has one) completed; a failed handshake closes it.
    func completingHandshake(_ handshake: EventLoopPromise<Void>?) -> EventLoopFuture<any Channel> {
        flatMap { channel in
            guard let handshake else { return channel.eventLoop.makeSucceededFuture(channel) }
            return handshake.futureResult.map { channel }.flatMapErrorThrowing { error in
                channel.close(promise: nil)
                throw error
            }
        }
    }
}
