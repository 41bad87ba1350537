// nio-floor PORT raw|http|parked|h2|h2-streams
// nio-floor PORT relay BACKEND_PORT
//
// A SwiftNIO server on 127.0.0.1:PORT, one event loop, that answers every request with
// "200 hello". `raw` has one handler and no HTTP codec: it answers each read (bench/idle.py
// sends one small request per read), so what an idle connection costs is NIO's channel,
// pipeline and receive buffer alone. `http` adds NIO's HTTP/1 server pipeline (decoder,
// encoder, pipelining handler) in front of a trivial responder: NIO's HTTP server floor.
// `parked` answers as `raw` does, but keeps idle connections out of NIO (ParkingLot.swift).
// `h2` is HTTP/2 with prior knowledge on NIOHTTP2Handler without a stream multiplexer, each
// request's HEADERS answered with HEADERS and DATA on the connection (Fulcrum's shape);
// `h2-streams` is NIO's documented HTTP/2 server, a child channel per stream with
// HTTP2FramePayloadToHTTP1ServerCodec and the `http` responder (Fulcrum's shape before).
// `relay` copies bytes between each client connection and a backend connection of its own
// (Relay.swift): the floor under a proxy on NIO.
import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import NIOPosix

let arguments = CommandLine.arguments
let modes = ["raw", "http", "parked", "h2", "h2-streams", "relay"]
guard (3...4).contains(arguments.count), let port = Int(arguments[1]), modes.contains(arguments[2]),
    (arguments[2] == "relay") == (arguments.count == 4)
else {
    print("usage: nio-floor PORT raw|http|parked|h2|h2-streams\n       nio-floor PORT relay BACKEND_PORT")
    exit(2)
}
let mode = arguments[2]
let backendPort = arguments.count == 4 ? Int(arguments[3]) ?? 0 : 0

/// Answers whatever arrives with one fixed response.
final class RawResponder: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    static let response = "HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nhello\n"

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: Self.response)), promise: nil)
    }
}

/// Answers each decoded request with "hello", and closes after it if the request asked to.
final class HTTPResponder: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    private var keepAlive = true

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            keepAlive = request.isKeepAlive
        case .body:
            break
        case .end:
            var head = HTTPResponseHead(version: .http1_1, status: .ok)
            head.headers.add(name: "content-length", value: "6")
            if !keepAlive { head.headers.add(name: "connection", value: "close") }
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "hello\n")))), promise: nil)
            let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if !keepAlive { written.whenComplete { _ in context.close(promise: nil) } }
        }
    }
}

/// Answers each HTTP/2 request (its HEADERS, or its last DATA frame) with "hello", in frames.
final class HTTP2FrameResponder: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let ended: Bool
        switch frame.payload {
        case .headers(let headers): ended = headers.endStream
        case .data(let data): ended = data.endStream
        default: ended = false
        }
        guard ended else { return }
        let head = HPACKHeaders([(":status", "200"), ("content-length", "6")])
        context.write(wrapOutboundOut(HTTP2Frame(streamID: frame.streamID, payload: .headers(.init(headers: head)))), promise: nil)
        let body = HTTP2Frame.FramePayload.Data(data: .byteBuffer(ByteBuffer(string: "hello\n")), endStream: true)
        context.write(wrapOutboundOut(HTTP2Frame(streamID: frame.streamID, payload: .data(body))), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
#if os(Linux)
if mode == "parked" {
    let lot = ParkingLot(port: port, group: group)
    print("nio-floor parked listening on 127.0.0.1:\(port)")
    lot.run()
}
#endif
let channel = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 4096)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.autoRead, value: mode != "relay")
    .childChannelInitializer { channel in
        if mode == "relay" { return startRelay(client: channel, backendPort: backendPort) }
        return channel.eventLoop.makeCompletedFuture {
            let pipeline = channel.pipeline.syncOperations
            switch mode {
            case "http":
                try pipeline.configureHTTPServerPipeline()
                try pipeline.addHandler(HTTPResponder())
            case "h2":
                try pipeline.addHandler(NIOHTTP2Handler(mode: .server))
                try pipeline.addHandler(HTTP2FrameResponder())
            case "h2-streams":
                _ = try pipeline.configureHTTP2Pipeline(mode: .server, connectionConfiguration: .init(), streamConfiguration: .init()) { stream in
                    stream.eventLoop.makeCompletedFuture {
                        try stream.pipeline.syncOperations.addHandlers([
                            HTTP2FramePayloadToHTTP1ServerCodec(), HTTPResponder(),
                        ])
                    }
                }
            default:
                try pipeline.addHandler(RawResponder())
            }
        }
    }
    .bind(host: "127.0.0.1", port: port)
    .wait()
print("nio-floor \(mode) listening on 127.0.0.1:\(port)")
try channel.closeFuture.wait()
