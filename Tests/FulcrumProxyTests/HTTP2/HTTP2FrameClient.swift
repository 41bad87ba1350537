import NIOConcurrencyHelpers
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix

/// An h2c client that works in frames, on NIO's HTTP/2 handler without a multiplexer: the test
/// writes each frame and reads what came back per stream. For what a well-behaved client never
/// does: keeping its window shut, resetting a stream mid-response, sending a malformed block.
///
/// Its connection window is kept open as DATA arrives; stream windows only by `grant`.
final class HTTP2FrameClient: Sendable {
    struct StreamLog: Sendable {
        var status: String?
        var body = 0
        var ended = false
        var reset: HTTP2ErrorCode?
        /// Each HEADERS and DATA frame: "HEADERS" or "DATA 12", with " END" when it ended the stream.
        var frames: [String] = []
        /// The fields of every HEADERS frame, in order.
        var fields: [(name: String, value: String)] = []

        /// The last value of the field `name` received.
        func field(_ name: String) -> String? { fields.last { $0.name == name }?.value }
    }

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTP2Frame
        typealias OutboundOut = HTTP2Frame
        let streams = NIOLockedValueBox<[HTTP2StreamID: StreamLog]>([:])
        let goAways = NIOLockedValueBox(0)

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = unwrapInboundIn(data)
            if case .goAway = frame.payload { goAways.withLockedValue { $0 += 1 } }
            streams.withLockedValue { streams in
                var log = streams[frame.streamID] ?? StreamLog()
                switch frame.payload {
                case .headers(let headers):
                    log.status = log.status ?? headers.headers.first(name: ":status")
                    log.ended = log.ended || headers.endStream
                    log.frames.append("HEADERS" + (headers.endStream ? " END" : ""))
                    log.fields += headers.headers.map { ($0.name, $0.value) }
                case .data(let data):
                    log.body += data.data.readableBytes
                    log.ended = log.ended || data.endStream
                    log.frames.append("DATA \(data.data.readableBytes)" + (data.endStream ? " END" : ""))
                case .rstStream(let code):
                    log.reset = code
                default:
                    return
                }
                streams[frame.streamID] = log
            }
            if case .data(let data) = frame.payload, data.data.readableBytes > 0 {
                let update = HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: data.data.readableBytes))
                context.writeAndFlush(wrapOutboundOut(update), promise: nil)
            }
        }
    }

    let channel: any Channel
    private let collector: Collector

    private init(channel: any Channel, collector: Collector) {
        self.channel = channel
        self.collector = collector
    }

    /// Connects with prior knowledge, announcing `initialWindow` as every stream's window. The
    /// client's own blocks are not validated, so malformed ones reach the server.
    static func connect(port: Int, initialWindow: Int = 65_535) async throws -> HTTP2FrameClient {
        let collector = Collector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port)
            .get()
        try await channel.eventLoop.submit {
            var configuration = NIOHTTP2Handler.ConnectionConfiguration()
            configuration.initialSettings = [HTTP2Setting(parameter: .initialWindowSize, value: initialWindow)]
            configuration.headerBlockValidation = .disabled
            try channel.pipeline.syncOperations.addHandler(
                NIOHTTP2Handler(mode: .client, frameDelegate: nil, connectionConfiguration: configuration)
            )
            try channel.pipeline.syncOperations.addHandler(collector)
        }.get()
        return HTTP2FrameClient(channel: channel, collector: collector)
    }

    /// Opens stream `id` with a request for `path` (or the block given), ending it.
    func send(_ id: Int, _ path: String, method: String = "GET", block: [(String, String)]? = nil) {
        let fields =
            block ?? [(":method", method), (":scheme", "http"), (":authority", "localhost"), (":path", path)]
        write(HTTP2Frame(streamID: HTTP2StreamID(id), payload: .headers(.init(headers: HPACKHeaders(fields), endStream: true))))
    }

    /// Opens the window of stream `id` by `bytes`.
    func grant(_ id: Int, _ bytes: Int) {
        write(HTTP2Frame(streamID: HTTP2StreamID(id), payload: .windowUpdate(windowSizeIncrement: bytes)))
    }

    /// Resets stream `id`.
    func reset(_ id: Int) {
        write(HTTP2Frame(streamID: HTTP2StreamID(id), payload: .rstStream(.cancel)))
    }

    /// GOAWAY frames the server sent.
    var goAways: Int { collector.goAways.withLockedValue { $0 } }

    func log(_ id: Int) -> StreamLog {
        collector.streams.withLockedValue { $0[HTTP2StreamID(id)] ?? StreamLog() }
    }

    func close() async throws {
        try await channel.close()
    }

    private func write(_ frame: HTTP2Frame) {
        channel.writeAndFlush(frame, promise: nil)
    }
}
