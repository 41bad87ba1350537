import NIOCore
import NIOPosix

/// A TCP server for `mode: tcp` tests that speaks first and echoes: each connection gets
/// `NAME\n` as soon as it opens, then every byte back; when its client half-closes, it writes
/// `bye from NAME\n` and closes.
final class TCPTestServer: Sendable {
    let name: String
    let port: Int
    private let channel: any Channel

    private init(name: String, port: Int, channel: any Channel) {
        self.name = name
        self.port = port
        self.channel = channel
    }

    static func start(name: String) async throws -> TCPTestServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(EchoHandler(name: name))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return TCPTestServer(name: name, port: channel.localAddress!.port!, channel: channel)
    }

    func stop() async {
        try? await channel.close().get()
    }

    private final class EchoHandler: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let name: String

        init(name: String) { self.name = name }

        func channelActive(context: ChannelHandlerContext) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "\(name)\n")), promise: nil)
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.writeAndFlush(data, promise: nil)
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if event as? ChannelEvent == .inputClosed {
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "bye from \(name)\n"))).whenComplete { _ in
                    context.close(promise: nil)
                }
            }
        }
    }
}
