import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL

/// A bare HTTP/2 client on NIO's own HTTP/2 stack: one connection (h2 by ALPN over TLS, or h2c
/// with prior knowledge), a stream per request, and what the server said on the connection
/// itself (its SETTINGS, a GOAWAY).
final class HTTP2TestClient: Sendable {
    struct Response: Sendable {
        var head: HTTPResponseHead
        var body: ByteBuffer
        var trailers: HTTPHeaders?
    }

    /// Connection-level frames seen from the server.
    final class ConnectionFrames: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTP2Frame
        private let state = NIOLockedValueBox<(settings: [HTTP2Setting], goAways: Int)>(([], 0))

        var settings: [HTTP2Setting] { state.withLockedValue { $0.settings } }
        var goAways: Int { state.withLockedValue { $0.goAways } }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = unwrapInboundIn(data)
            switch frame.payload {
            case .settings(.settings(let settings)):
                state.withLockedValue { $0.settings += settings }
            case .goAway:
                state.withLockedValue { $0.goAways += 1 }
            default:
                break
            }
            context.fireChannelRead(data)
        }
    }

    let channel: any Channel
    let frames: ConnectionFrames
    private let multiplexer: NIOLoopBound<NIOHTTP2Handler.StreamMultiplexer>
    private let isSecure: Bool

    private init(channel: any Channel, frames: ConnectionFrames, multiplexer: NIOLoopBound<NIOHTTP2Handler.StreamMultiplexer>, isSecure: Bool) {
        self.channel = channel
        self.frames = frames
        self.multiplexer = multiplexer
        self.isSecure = isSecure
    }

    /// Connects to `port`: over TLS trusting `authority` (offering only h2 by ALPN), or in
    /// clear text with prior knowledge.
    static func connect(port: Int, trusting authority: TestCertificateAuthority? = nil) async throws -> HTTP2TestClient {
        let tlsContext = try authority.map { authority in
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.trustRoots = .certificates([try authority.nioCertificate])
            configuration.applicationProtocols = ["h2"]
            return try NIOSSLContext(configuration: configuration)
        }
        let frames = ConnectionFrames()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: "127.0.0.1", port: port)
            .get()
        let multiplexer = try await channel.eventLoop.submit {
            let pipeline = channel.pipeline.syncOperations
            if let tlsContext {
                try pipeline.addHandler(try NIOSSLClientHandler(context: tlsContext, serverHostname: "localhost"))
            }
            let multiplexer = try pipeline.configureHTTP2Pipeline(
                mode: .client,
                connectionConfiguration: .init(),
                streamConfiguration: .init()
            ) { $0.eventLoop.makeSucceededVoidFuture() }
            try pipeline.addHandler(frames)
            return NIOLoopBound(multiplexer, eventLoop: channel.eventLoop)
        }.get()
        return HTTP2TestClient(channel: channel, frames: frames, multiplexer: multiplexer, isSecure: tlsContext != nil)
    }

    /// Sends a GET on a new stream and collects its response.
    func request(_ path: String) async throws -> Response {
        try await request(.GET, path)
    }

    /// Sends one request on a new stream and collects its response.
    func request(
        _ method: HTTPMethod,
        _ path: String,
        headers: [(String, String)] = [],
        body: ByteBuffer? = nil
    ) async throws -> Response {
        let promise = channel.eventLoop.makePromise(of: Response.self)
        let isSecure = isSecure
        let multiplexer = multiplexer
        channel.eventLoop.execute {
            multiplexer.value.createStreamChannel { stream in
                stream.eventLoop.makeCompletedFuture {
                    try stream.pipeline.syncOperations.addHandlers([
                        HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: isSecure ? .https : .http),
                        ResponseCollector(promise: promise),
                    ])
                }
            }.whenComplete { result in
                switch result {
                case .success(let stream):
                    var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
                    head.headers.add(name: "host", value: "localhost")
                    head.headers.add(contentsOf: headers)
                    stream.write(NIOAny(HTTPClientRequestPart.head(head)), promise: nil)
                    if let body {
                        stream.write(NIOAny(HTTPClientRequestPart.body(.byteBuffer(body))), promise: nil)
                    }
                    stream.writeAndFlush(NIOAny(HTTPClientRequestPart.end(nil)), promise: nil)
                case .failure(let error):
                    promise.fail(error)
                }
            }
        }
        return try await promise.futureResult.get()
    }

    func close() async throws {
        try await channel.close()
    }

    private final class ResponseCollector: ChannelInboundHandler {
        typealias InboundIn = HTTPClientResponsePart
        private let promise: EventLoopPromise<Response>
        private var response: Response?
        private var completed = false

        init(promise: EventLoopPromise<Response>) {
            self.promise = promise
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                // Interim responses are replaced by the final one.
                response = Response(head: head, body: context.channel.allocator.buffer(capacity: 0))
            case .body(var body):
                response?.body.writeBuffer(&body)
            case .end(let trailers):
                response?.trailers = trailers
                if let response {
                    complete(.success(response))
                } else {
                    complete(.failure(ChannelError.inputClosed))
                }
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            complete(.failure(ChannelError.eof))
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            complete(.failure(error))
            context.close(promise: nil)
        }

        private func complete(_ result: Result<Response, any Error>) {
            guard !completed else { return }
            completed = true
            promise.completeWith(result)
        }
    }
}
