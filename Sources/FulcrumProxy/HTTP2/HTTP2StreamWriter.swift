import NIOCore
import NIOHTTP1
import NIOHTTP2

/// Writes one HTTP/2 stream's response as frames on its connection, and keeps the stream's
/// flow-control accounts: the window its request body used (`read` gives it back), and the
/// response bytes handed to `NIOHTTP2Handler` but not yet sent, which it holds back while the
/// client's window is closed (`isClientWritable`).
///
/// The context it is given is the connection's `HTTP2StreamsHandler`'s: its frames go down
/// the connection's pipeline, to the HTTP/2 handler that encodes them.
///
/// It holds the response's latest HEADERS or DATA frame back until the next one, the end of the
/// server's read, or the end of the response, so that the frame that ends the stream is
/// usually the last one the response has anyway: a typical response is a HEADERS and a DATA
/// frame with END_STREAM, not an empty DATA frame besides (which cost NIOHTTP2 a frame's state
/// machine, encoding and window event: 13 % of a request's instructions).
final class HTTP2StreamWriter: ClientResponseWriter {
    var clientChannel: ExchangeStateMachine.ClientChannel { .stream }

    /// Response bytes a stream may have waiting for the client's window before the server's
    /// reads pause (NIOHTTP2's stream channels pause at 8 KiB; a proxy's reads are 16 KiB or
    /// more, so one read's worth fits), and below which they resume.
    static let outboundHighWatermark = 64 * 1024
    static let outboundLowWatermark = 16 * 1024
    /// Window given back once this much of it was used: half the stream's initial window
    /// (65,535 bytes), as NIOHTTP2's own streams do, so a body costs a WINDOW_UPDATE per 32 KiB
    /// and not one per DATA frame.
    static let windowUpdateThreshold = 32 * 1024

    let streamID: HTTP2StreamID
    let strictTransportSecurity: String?
    private(set) var hasUnflushedWrites = false

    /// The client ended its request: its window needs nothing back.
    var requestEnded = false
    /// The stream was closed or reset: nothing more is written to it.
    var isClosed = false
    /// Request body bytes delivered to the exchange whose window was not given back yet.
    private(set) var windowToReturn = 0
    /// Response body bytes handed to the HTTP/2 handler and not yet encoded for the socket.
    private(set) var bufferedBytes = 0
    /// The response's latest frame, not yet written.
    private var held: HTTP2Frame.FramePayload?
    /// The connection's handler, which flushes once for all the streams that wrote in a tick
    /// (nil when the stream is gone, or on its own in a test: then flushes go straight on).
    var connection: HTTP2StreamsHandler?

    init(streamID: HTTP2StreamID, strictTransportSecurity: String?) {
        self.streamID = streamID
        self.strictTransportSecurity = strictTransportSecurity
    }

    // MARK: Flow control, kept by `HTTP2StreamsHandler`

    /// A DATA frame of the request arrived (its flow-controlled size, padding included).
    func received(flowControlled bytes: Int) {
        windowToReturn += bytes
    }

    /// A DATA frame of the response left for the socket. Returns true when that brings the
    /// stream below its low watermark from above it: the server's reads may resume.
    func sent(bytes: Int) -> Bool {
        let wasAbove = bufferedBytes >= Self.outboundLowWatermark
        bufferedBytes -= bytes
        return wasAbove && bufferedBytes < Self.outboundLowWatermark
    }

    // MARK: ClientResponseWriter

    func writeInterim(_ head: HTTPResponseHead, context: ChannelHandlerContext) {
        writeHeld(context: context)
        write(.headers(.init(headers: HTTP2Heads.responseBlock(head, strictTransportSecurity: nil))), context: context)
        flush(context: context)
    }

    func writeResponseHead(
        _ head: HTTPResponseHead,
        request: HTTPRequestHead,
        keepAlive: Bool,
        upgrade: Bool,
        context: ChannelHandlerContext
    ) -> Bool {
        let block = HTTP2Heads.responseBlock(head, strictTransportSecurity: strictTransportSecurity)
        hold(.headers(.init(headers: block)), context: context)
        return true
    }

    func writeResponseBody(_ body: ByteBuffer, context: ChannelHandlerContext) {
        bufferedBytes += body.readableBytes
        hold(.data(.init(data: .byteBuffer(body))), context: context)
    }

    /// The end of a read from the server: what it brought goes on.
    func readComplete(context: ChannelHandlerContext) {
        writeHeld(context: context)
    }

    func writeLocalResponse(
        _ head: HTTPResponseHead,
        body: ByteBuffer,
        request: HTTPRequestHead?,
        keepAlive: Bool,
        context: ChannelHandlerContext
    ) {
        let block = HTTP2Heads.responseBlock(head, strictTransportSecurity: strictTransportSecurity)
        hold(.headers(.init(headers: block)), context: context)
        // (No body at all, as a gRPC status has: the HEADERS frame ends the stream.)
        if request?.method != .HEAD, body.readableBytes > 0 {
            writeResponseBody(body, context: context)
        }
    }

    /// Ends the stream: with the server's trailers (HTTP/2 carries them), or on the frame held
    /// back, or else an empty DATA frame. Closing the stream early resets it (RST_STREAM),
    /// which tells the client to stop sending a request body that was not read to its end.
    func finish(_ trailers: HTTPHeaders?, closeClient: Bool, context: ChannelHandlerContext) {
        if let trailers {
            writeHeld(context: context)
            write(.headers(.init(headers: HTTP2Heads.trailersBlock(trailers), endStream: true)), context: context)
        } else if let last = held {
            held = nil
            write(Self.endingStream(last), context: context)
        } else {
            write(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true)), context: context)
        }
        if closeClient {
            close(context: context)
        } else {
            flush(context: context)
        }
    }

    func flush(context: ChannelHandlerContext) {
        writeHeld(context: context)
        guard hasUnflushedWrites else { return }
        hasUnflushedWrites = false
        if let connection {
            connection.flushSoon()
        } else {
            context.flush()
        }
    }

    /// Gives the client back the window its request body used, once half the window is used.
    func read(context: ChannelHandlerContext) {
        guard windowToReturn >= Self.windowUpdateThreshold, !requestEnded, !isClosed else { return }
        let increment = windowToReturn
        windowToReturn = 0
        write(.windowUpdate(windowSizeIncrement: increment), context: context)
        flush(context: context)
    }

    func isClientWritable(context: ChannelHandlerContext) -> Bool {
        bufferedBytes < Self.outboundHighWatermark && context.channel.isWritable
    }

    /// Resets the stream, once what was written to it is on its way: NIOHTTP2 drops a stream's
    /// unflushed frames when it is reset, so they are flushed now, not with the connection's
    /// next flush.
    func close(context: ChannelHandlerContext) {
        guard !isClosed else { return }
        writeHeld(context: context)
        if hasUnflushedWrites {
            hasUnflushedWrites = false
            context.flush()
        }
        isClosed = true
        context.writeAndFlush(NIOAny(HTTP2Frame(streamID: streamID, payload: .rstStream(.cancel))), promise: nil)
    }

    /// Writes the frame held back, and holds `payload` instead.
    private func hold(_ payload: HTTP2Frame.FramePayload, context: ChannelHandlerContext) {
        writeHeld(context: context)
        guard !isClosed else { return }
        held = payload
        hasUnflushedWrites = true
    }

    private func writeHeld(context: ChannelHandlerContext) {
        if let payload = held {
            held = nil
            write(payload, context: context)
        }
    }

    private static func endingStream(_ payload: HTTP2Frame.FramePayload) -> HTTP2Frame.FramePayload {
        switch payload {
        case .headers(var headers):
            headers.endStream = true
            return .headers(headers)
        case .data(var data):
            data.endStream = true
            return .data(data)
        default:
            return payload
        }
    }

    private func write(_ payload: HTTP2Frame.FramePayload, context: ChannelHandlerContext) {
        guard !isClosed else { return }
        context.write(NIOAny(HTTP2Frame(streamID: streamID, payload: payload)), promise: nil)
        hasUnflushedWrites = true
    }
}
