import FulcrumBalancing
import NIOCore

/// One end of an upgraded connection (WebSocket after `101 Switching Protocols`): relays the
/// raw bytes its channel reads to the partner channel and back, as swift-nio-examples'
/// `GlueHandler` does.
///
/// - Backpressure: a side reads only while its partner's channel is writable; a partner that
///   becomes writable again re-issues the held read.
/// - Half-close: input closed on one side closes the partner's output; a side that closes
///   closes its partner.
/// - Idle timeout: no byte either way for `idleTimeout` closes both (`timeouts.tunnel`).
/// - Counts: the bytes each end read, handed to `onEnd` (a TCP connection's traffic).
///
/// Both ends live on one event loop (a client connection and its server connections always
/// do), so they call each other directly.
final class TunnelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: TunnelHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    private let shared: Shared
    private let isClientEnd: Bool

    /// The bytes that went through, by direction.
    struct Totals {
        /// Read from the client, written to the server.
        var fromClient = 0
        /// Read from the server, written to the client.
        var fromServer = 0
    }

    /// What both ends share: the idle timer, the counts and the one-time end of the tunnel.
    private final class Shared {
        let idleTimeout: TimeAmount
        var lastActivity = NIODeadline.now()
        var timer: Scheduled<Void>?
        var ended = false
        var totals = Totals()
        let onEnd: (Totals) -> Void

        init(idleTimeout: TimeAmount, onEnd: @escaping (Totals) -> Void) {
            self.idleTimeout = idleTimeout
            self.onEnd = onEnd
        }
    }

    private init(shared: Shared, isClientEnd: Bool) {
        self.shared = shared
        self.isClientEnd = isClientEnd
    }

    /// Two joined ends; `onEnd` runs once, when the tunnel closes, with what went through.
    static func pair(idleTimeout: TimeAmount, onEnd: @escaping (Totals) -> Void) -> (client: TunnelHandler, server: TunnelHandler) {
        let shared = Shared(idleTimeout: idleTimeout, onEnd: onEnd)
        let client = TunnelHandler(shared: shared, isClientEnd: true)
        let server = TunnelHandler(shared: shared, isClientEnd: false)
        client.partner = server
        server.partner = client
        return (client, server)
    }

    /// Starts the idle timer and reading on both ends (call once both are in their pipelines).
    func start() {
        guard let context else { return }
        armIdleTimer(on: context.eventLoop, in: shared.idleTimeout)
        context.read()
        partner?.context?.read()
    }

    private func armIdleTimer(on eventLoop: any EventLoop, in delay: TimeAmount) {
        shared.timer = eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            let idle = NIODeadline.now() - shared.lastActivity
            if idle >= shared.idleTimeout {
                closeBoth()
            } else {
                armIdleTimer(on: eventLoop, in: shared.idleTimeout - idle)
            }
        }
    }

    private func closeBoth() {
        context?.close(promise: nil)
        partner?.context?.close(promise: nil)
    }

    private func end() {
        guard !shared.ended else { return }
        shared.ended = true
        shared.timer?.cancel()
        shared.onEnd(shared.totals)
    }

    // MARK: Called by the partner

    private func partnerWrite(_ data: NIOAny) {
        context?.write(data, promise: nil)
    }

    private func partnerFlush() {
        context?.flush()
    }

    private func partnerWriteEOF() {
        context?.close(mode: .output, promise: nil)
    }

    private func partnerClosed() {
        context?.close(promise: nil)
    }

    private func partnerBecameWritable() {
        if pendingRead, let context {
            pendingRead = false
            context.read()
        }
    }

    private var isWritable: Bool { context?.channel.isWritable ?? false }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let count = unwrapInboundIn(data).readableBytes
        if isClientEnd {
            shared.totals.fromClient += count
        } else {
            shared.totals.fromServer += count
        }
        partner?.partnerWrite(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        shared.lastActivity = .now()
        partner?.partnerFlush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        end()
        partner?.partnerClosed()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent {
            partner?.partnerWriteEOF()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        partner?.partnerClosed()
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            partner?.partnerBecameWritable()
        }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if partner?.isWritable ?? false {
            context.read()
        } else {
            pendingRead = true
        }
    }
}
