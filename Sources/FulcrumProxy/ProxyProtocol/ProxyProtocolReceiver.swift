import Logging
import NIOCore

/// The first handler of a connection from a source the frontend trusts to send a PROXY
/// protocol header (`accept_proxy`): reads the header, then builds the rest of the pipeline
/// (TLS, HTTP) for the client the header names, hands it whatever followed the header, and
/// leaves.
///
/// The header is required from those sources, as with HAProxy's `accept-proxy`: a connection
/// that sends anything else, or nothing within `timeout`, is closed, with a warning that says
/// why. (From any other source no header is read, so one sent anyway is what it looks like to
/// HTTP or TLS: a malformed request or handshake.)
final class ProxyProtocolReceiver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Builds the rest of the pipeline for the client the header names (`source` nil: the
    /// connection's own peer).
    typealias Continuation = (_ header: ProxyProtocolHeader, _ channel: any Channel) throws -> Void

    private let timeout: TimeAmount
    private let frontend: String
    private let logger: Logger
    private let continuation: Continuation
    private var received: ByteBuffer?
    private var deadline: Scheduled<Void>?
    private var isDone = false

    init(timeout: TimeAmount, frontend: String, logger: Logger, continuation: @escaping Continuation) {
        self.timeout = timeout
        self.frontend = frontend
        self.logger = logger
        self.continuation = continuation
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBoundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            refuse(context: loopBoundContext.value, reason: "no PROXY protocol header within \(timeout)")
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !isDone else { return context.fireChannelRead(data) }
        var bytes = unwrapInboundIn(data)
        if var earlier = received.take() {
            earlier.writeBuffer(&bytes)
            bytes = earlier
        }
        switch ProxyProtocolHeader.parse(bytes.readableBytesView) {
        case .incomplete:
            received = bytes
        case .invalid(let reason):
            refuse(context: context, reason: reason)
        case .header(let header, let length):
            isDone = true
            deadline?.cancel()
            deadline = nil
            bytes.moveReaderIndex(forwardBy: length)
            do {
                try continuation(header, context.channel)
            } catch {
                logger.warning(
                    "could not set up a connection after its PROXY protocol header: \(error)",
                    metadata: ["frontend": "\(frontend)"]
                )
                context.close(promise: nil)
                return
            }
            // The handlers just added follow this one: what came after the header is theirs.
            if bytes.readableBytes > 0 {
                context.fireChannelRead(wrapInboundOut(bytes))
            }
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if isDone { context.fireChannelReadComplete() }
    }

    private func refuse(context: ChannelHandlerContext, reason: String) {
        guard !isDone else { return }
        isDone = true
        received = nil
        logger.warning(
            "closed a connection from a PROXY protocol source: \(reason)",
            metadata: ["frontend": "\(frontend)", "peer": "\(context.channel.remoteAddress.map { "\($0)" } ?? "unknown")"]
        )
        context.close(promise: nil)
    }
}
