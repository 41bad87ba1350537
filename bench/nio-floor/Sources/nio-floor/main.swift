// nio-floor PORT raw|http|parked
//
// A SwiftNIO server on 127.0.0.1:PORT, one event loop, that answers every request with
// "200 hello". `raw` has one handler and no HTTP codec: it answers each read (bench/idle.py
// sends one small request per read), so what an idle connection costs is NIO's channel,
// pipeline and receive buffer alone. `http` adds NIO's HTTP/1 server pipeline (decoder,
// encoder, pipelining handler) in front of a trivial responder: NIO's HTTP server floor.
// `parked` answers as `raw` does, but keeps idle connections out of NIO (ParkingLot.swift).
import NIOCore
import NIOHTTP1
import NIOPosix

let arguments = CommandLine.arguments
guard arguments.count == 3, let port = Int(arguments[1]), ["raw", "http", "parked"].contains(arguments[2]) else {
    print("usage: nio-floor PORT raw|http|parked")
    exit(2)
}
let useHTTPCodec = arguments[2] == "http"

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

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
#if os(Linux)
if arguments[2] == "parked" {
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
            if useHTTPCodec {
                try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                try channel.pipeline.syncOperations.addHandler(HTTPResponder())
            } else {
                try channel.pipeline.syncOperations.addHandler(RawResponder())
            }
        }
    }
    .bind(host: "127.0.0.1", port: port)
    .wait()
print("nio-floor \(arguments[2]) listening on 127.0.0.1:\(port)")
try channel.closeFuture.wait()
