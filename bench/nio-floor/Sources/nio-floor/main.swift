// nio-floor PORT raw|http|parked|h2|h2-streams
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
import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import NIOPosix

let arguments = CommandLine.arguments
let modes = ["raw", "http", "parked", "h2", "h2-streams"]
guard arguments.count == 3, let port = Int(arguments[1]), modes.contains(arguments[2]) else {
    print("usage: nio-floor PORT raw|http|parked|h2|h2-streams")
    exit(2)
}
let mode = arguments[2]

/// Answers whatever arrives with one fixed response.
final class RawResponder: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    static let response = "HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nhello\n"

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: Self.response)), promise: nil)
    }
}

/// Answers each decoded request with "hello".
final class HTTPResponder: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        var head = HTTPResponseHead(version: .http1_1, status: .ok)
        head.headers.add(name: "content-length", value: "6")
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "hello\n")))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
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
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
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
