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

    /// - Throws: `StartupError.badServerTLS` naming what could not be read.
    init(_ settings: ServerTLSConfig, host: String, backend: String, server: String) throws {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
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
        return "TLS handshake failed (\(underlying))"
    }
}

/// Completes `handshake` when the TLS handshake with a server is done (or fails), so that a
/// connection counts as made only once it can carry a request; then leaves the pipeline.
final class TLSHandshakeWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    let handshake: EventLoopPromise<Void>

    init(handshake: EventLoopPromise<Void>) {
        self.handshake = handshake
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            handshake.succeed()
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        handshake.fail(BackendTLSError(underlying: error))
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshake.fail(BackendTLSError(underlying: ChannelError.eof))
        context.fireChannelInactive()
    }
}
