import NIOCore

/// The first handler of a connection to a server that takes a PROXY protocol header
/// (`send_proxy`): puts the header in front of the connection's first write, whoever makes
/// it (TLS's handshake, a request, a health check), and leaves.
///
/// Not in `channelActive`: NIO completes a connect's future before it fires `channelActive`,
/// so a request written from that future would go first.
final class ProxyProtocolSender: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var header: ByteBuffer?

    init(header: ByteBuffer) {
        self.header = header
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if let header = header.take() {
            context.write(wrapOutboundOut(header), promise: nil)
            context.write(data, promise: promise)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        } else {
            context.write(data, promise: promise)
        }
    }
}
