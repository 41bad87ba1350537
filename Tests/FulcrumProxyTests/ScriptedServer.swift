import Foundation
import NIOCore
import NIOPosix

/// A server that answers with exactly the bytes a test gives it and records exactly the bytes
/// it received, for checking the proxy's wire format in both directions.
///
/// On each connection it collects bytes until they contain `requestEnd` (for example the
/// empty line after a head, or the last chunk of a chunked body), then writes `response`
/// and, when `closeAfterResponse` is set, closes (a body delimited by the close).
final class ScriptedServer: Sendable {
    let port: Int
    private let channel: any Channel
    private let received = ReceivedRequests()

    /// The raw requests received so far, one string per request.
    var requests: [String] { received.all }
    /// How many connections it has accepted.
    var connectionsAccepted: Int { received.connections }

    init(requestEnd: String = "\r\n\r\n", response: String, closeAfterResponse: Bool = false) async throws {
        let received = self.received
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ScriptHandler(
                            requestEnd: requestEnd,
                            response: response,
                            closeAfterResponse: closeAfterResponse,
                            received: received
                        )
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        port = channel.localAddress!.port!
    }

    func close() async throws {
        try await channel.close()
    }

    final class ReceivedRequests: @unchecked Sendable {
        private let lock = NSLock()
        private var requests: [String] = []
        private var accepted = 0
        var all: [String] { lock.withLock { requests } }
        var connections: Int { lock.withLock { accepted } }
        func append(_ request: String) { lock.withLock { requests.append(request) } }
        func connectionAccepted() { lock.withLock { accepted += 1 } }
    }

    private final class ScriptHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        private let requestEnd: String
        private let response: String
        private let closeAfterResponse: Bool
        private let received: ReceivedRequests
        private var pending = ""

        init(requestEnd: String, response: String, closeAfterResponse: Bool, received: ReceivedRequests) {
            self.requestEnd = requestEnd
            self.response = response
            self.closeAfterResponse = closeAfterResponse
            self.received = received
        }

        func channelActive(context: ChannelHandlerContext) {
            received.connectionAccepted()
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            pending += String(buffer: unwrapInboundIn(data))
            while let end = pending.range(of: requestEnd) {
                received.append(String(pending[..<end.upperBound]))
                pending = String(pending[end.upperBound...])
                let written = context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response)))
                if closeAfterResponse {
                    written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
                    return
                }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            context.close(promise: nil)
        }
    }
}
