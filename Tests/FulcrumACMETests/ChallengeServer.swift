import FulcrumACME
import NIOCore
import NIOHTTP1
import NIOPosix

/// A plain HTTP server that answers HTTP-01 challenges from `challenges`, 404 otherwise: what
/// the CA fetches (Fulcrum's own frontends answer them in `fulcrum run`).
final class ChallengeServer: Sendable {
    let port: Int
    private let channel: any Channel

    static func start(_ challenges: HTTP01Challenges) async throws -> ChallengeServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(challenges: challenges))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return ChallengeServer(port: channel.localAddress!.port!, channel: channel)
    }

    private init(port: Int, channel: any Channel) {
        self.port = port
        self.channel = channel
    }

    func stop() async throws { try await channel.close() }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let challenges: HTTP01Challenges

        init(challenges: HTTP01Challenges) { self.challenges = challenges }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .head(let head) = unwrapInboundIn(data) else { return }
            let answer = challenges.answer(forPath: head.uri)
            var headers = HTTPHeaders([("Content-Type", "text/plain"), ("Content-Length", "\(answer?.utf8.count ?? 0)")])
            headers.add(name: "Connection", value: "close")
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: answer == nil ? .notFound : .ok, headers: headers))),
                promise: nil
            )
            if let answer { context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: answer)))), promise: nil) }
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
        }
    }
}
