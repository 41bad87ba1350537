import NIOCore
import NIOHTTP2
import NIOPosix
import Synchronization

/// An HTTP/2 server by prior knowledge (h2c) that misbehaves on purpose: on each request's
/// HEADERS it fails in one of two ways a real server can, or answers with frames the test
/// wrote (a malformed response, say). A proxy's retry rules and its checks of a server's
/// frames are tested against it.
package final class FaultyHTTP2Server: Sendable {
    package enum Fault: Sendable {
        /// `RST_STREAM` with `REFUSED_STREAM`: the server did no work (RFC 9113 §8.7), and
        /// the connection goes on.
        case refuseStream
        /// The TCP connection closes, as when a server crashes after reading the request.
        case dropConnection
        /// These frames, in order, on the request's stream.
        case answer([HTTP2Frame.FramePayload])
    }

    package let port: Int
    private let channel: any Channel
    private let counter: RequestCounter

    /// The requests whose HEADERS arrived.
    package var requestsReceived: Int { counter.requests.load(ordering: .relaxed) }

    private init(port: Int, channel: any Channel, counter: RequestCounter) {
        self.port = port
        self.channel = channel
        self.counter = counter
    }

    package static func start(_ fault: Fault) async throws -> FaultyHTTP2Server {
        let counter = RequestCounter()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { connection in
                connection.eventLoop.makeCompletedFuture {
                    // No check of the blocks it sends: some are malformed on purpose.
                    var configuration = NIOHTTP2Handler.ConnectionConfiguration()
                    configuration.headerBlockValidation = .disabled
                    _ = try connection.pipeline.syncOperations.configureHTTP2Pipeline(
                        mode: .server,
                        connectionConfiguration: configuration,
                        streamConfiguration: .init()
                    ) { stream in
                        stream.eventLoop.makeCompletedFuture {
                            try stream.pipeline.syncOperations.addHandler(FaultyStreamHandler(fault: fault, counter: counter))
                        }
                    }
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        guard let port = channel.localAddress?.port else {
            try? await channel.close()
            throw ChannelError.ioOnClosedChannel
        }
        return FaultyHTTP2Server(port: port, channel: channel, counter: counter)
    }

    package func shutdown() async throws {
        try await channel.close()
    }
}

private final class RequestCounter: Sendable {
    let requests = Atomic(0)
}

private final class FaultyStreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    let fault: FaultyHTTP2Server.Fault
    let counter: RequestCounter

    init(fault: FaultyHTTP2Server.Fault, counter: RequestCounter) {
        self.fault = fault
        self.counter = counter
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .headers = unwrapInboundIn(data) else { return }
        counter.requests.add(1, ordering: .relaxed)
        switch fault {
        case .refuseStream:
            context.writeAndFlush(wrapOutboundOut(.rstStream(.refusedStream)), promise: nil)
        case .dropConnection:
            context.channel.parent?.close(promise: nil)
        case .answer(let frames):
            for frame in frames { context.write(wrapOutboundOut(frame), promise: nil) }
            context.flush()
        }
    }
}
