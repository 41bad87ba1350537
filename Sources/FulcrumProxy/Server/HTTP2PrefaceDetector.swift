import NIOCore

/// Tells HTTP/2 with prior knowledge from HTTP/1.1 on a plain listener (`h2c: true`): a
/// connection that starts with the HTTP/2 connection preface (RFC 9113 §3.4) is HTTP/2,
/// anything else is HTTP/1.1.
///
/// It holds the first bytes until they decide (at most the preface's 24), has `configure`
/// add the chosen protocol's handlers after it, then passes the bytes on and leaves.
final class HTTP2PrefaceDetector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    private let configure: (_ isHTTP2: Bool) throws -> Void
    private var held: ByteBuffer?

    /// `configure` runs once, on the event loop, with the decision.
    init(configure: @escaping (_ isHTTP2: Bool) throws -> Void) {
        self.configure = configure
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if var held {
            held.writeBuffer(&bytes)
            self.held = held
        } else {
            held = bytes
        }
        guard let held else { return }
        let count = min(held.readableBytes, Self.preface.count)
        let matches = held.readableBytesView.prefix(count).elementsEqual(Self.preface.prefix(count))
        if matches, count < Self.preface.count { return }
        decide(isHTTP2: matches, context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A connection that ended before deciding: nothing can be served on it.
        held = nil
        context.fireChannelInactive()
    }

    private func decide(isHTTP2: Bool, context: ChannelHandlerContext) {
        do {
            try configure(isHTTP2)
        } catch {
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        if let held {
            self.held = nil
            context.fireChannelRead(wrapInboundOut(held))
            context.fireChannelReadComplete()
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
