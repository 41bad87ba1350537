import NIOCore
import NIOHTTP1

/// Writes responses to an HTTP/1.x connection as bytes (`HTTPWireFormat`), with no HTTP
/// encoder in the pipeline.
///
/// Heads, small body parts and chunk framing gather in `output`, so a typical response
/// reaches the socket as one buffer at the end of the server's read.
final class HTTP1ResponseWriter: ClientResponseWriter {
    var clientChannel: ExchangeStateMachine.ClientChannel { .connection }

    /// Body parts up to this size are copied into `output`; larger ones are written as they are.
    static let coalescingLimit = 4096

    /// Response bytes not yet handed to the channel.
    private var output: ByteBuffer
    /// The client's response body is chunked: body parts get chunk framing.
    private var chunked = false
    private(set) var hasUnflushedWrites = false
    /// The frontend's `strict-transport-security` line, on every final response (TLS only).
    let strictTransportSecurity: String?

    init(allocator: ByteBufferAllocator, strictTransportSecurity: String? = nil) {
        output = allocator.buffer(capacity: 1024)
        self.strictTransportSecurity = strictTransportSecurity
    }

    /// How the client receives a final response: the server's framing, adapted to what the
    /// client's HTTP version knows and to whether the connection stays open.
    struct Framing {
        var head = ForwardingHeaders.ResponseFraming()
        /// Body parts are sent as chunks.
        var chunked = false
        /// The connection stays open after the response.
        var keepAlive: Bool
    }

    static func framing(
        for head: HTTPResponseHead,
        scan: ForwardingHeaders.Scan,
        request: HTTPRequestHead,
        keepAlive: Bool
    ) -> Framing {
        var framing = Framing(keepAlive: keepAlive)
        let code = head.status.code
        let isHTTP10 = request.version.major < 1 || request.version.major == 1 && request.version.minor == 0
        if request.method == .HEAD || code == 204 || code == 304 {
            // No body follows, so there is nothing to chunk; a Transfer-Encoding would only
            // announce one.
            framing.head.dropTransferEncoding = scan.framing.isChunked && code != 304 && request.method != .HEAD
        } else if isHTTP10 {
            // HTTP/1.0 has no chunked encoding: send the body as is and end it by closing.
            if scan.framing.isChunked {
                framing.head.dropTransferEncoding = true
                framing.keepAlive = false
            } else if scan.framing.contentLength == nil {
                framing.keepAlive = false
            }
        } else if scan.framing.isChunked {
            // The decoder de-chunked the body; it is chunked again on the way out.
            framing.chunked = true
        } else if scan.framing.contentLength == nil {
            // The server ends this body by closing; re-frame it so the client connection survives.
            framing.head.addChunked = true
            framing.chunked = true
        }
        if !framing.keepAlive {
            framing.head.connection = "close"
        } else if isHTTP10 {
            framing.head.connection = "keep-alive"
        }
        return framing
    }

    func writeInterim(_ head: HTTPResponseHead, context: ChannelHandlerContext) {
        let scan = ForwardingHeaders.scanResponse(head.headers)
        prepareOutput()
        ForwardingHeaders.writeResponseHead(head, scan: scan, framing: .init(), into: &output)
        readComplete(context: context)
    }

    func writeResponseHead(
        _ head: HTTPResponseHead,
        request: HTTPRequestHead,
        keepAlive: Bool,
        upgrade: Bool,
        context: ChannelHandlerContext
    ) -> Bool {
        let scan = ForwardingHeaders.scanResponse(head.headers)
        prepareOutput()
        if upgrade {
            // The WebSocket handshake succeeded: its (empty) message ends, and a tunnel follows.
            var framing = ForwardingHeaders.ResponseFraming()
            framing.webSocketUpgrade = true
            framing.strictTransportSecurity = strictTransportSecurity
            ForwardingHeaders.writeResponseHead(head, scan: scan, framing: framing, into: &output)
            return keepAlive
        }
        var framing = Self.framing(for: head, scan: scan, request: request, keepAlive: keepAlive)
        framing.head.strictTransportSecurity = strictTransportSecurity
        chunked = framing.chunked
        ForwardingHeaders.writeResponseHead(head, scan: scan, framing: framing.head, into: &output)
        return framing.keepAlive
    }

    func writeResponseBody(_ body: ByteBuffer, context: ChannelHandlerContext) {
        prepareOutput()
        if chunked { output.writeChunkHeader(size: body.readableBytes) }
        if body.readableBytes <= Self.coalescingLimit {
            output.writeImmutableBuffer(body)
        } else {
            readComplete(context: context)
            context.write(NIOAny(body), promise: nil)
            hasUnflushedWrites = true
        }
        if chunked { output.writeStaticString("\r\n") }
    }

    /// Hands the gathered response bytes to the channel (the caller flushes).
    func readComplete(context: ChannelHandlerContext) {
        guard output.readableBytes > 0 else { return }
        context.write(NIOAny(output), promise: nil)
        hasUnflushedWrites = true
        // Not `clear()`: the channel still holds these bytes, so that would allocate now;
        // `prepareOutput()` reuses the storage once the write is done.
        output.moveReaderIndex(to: output.writerIndex)
    }

    func writeLocalResponse(
        _ head: HTTPResponseHead,
        body: ByteBuffer,
        request: HTTPRequestHead?,
        keepAlive: Bool,
        context: ChannelHandlerContext
    ) {
        var head = head
        if !keepAlive {
            head.headers.add(name: "connection", value: "close")
        }
        prepareOutput()
        ForwardingHeaders.writeLocalResponseHead(head, strictTransportSecurity: strictTransportSecurity, into: &output)
        if request?.method != .HEAD {
            output.writeImmutableBuffer(body)
        }
    }

    func finish(_ trailers: HTTPHeaders?, closeClient: Bool, context: ChannelHandlerContext) {
        if chunked {
            chunked = false
            prepareOutput()
            output.writeLastChunk(trailers: trailers)
        }
        guard closeClient else {
            readComplete(context: context)
            return
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        hasUnflushedWrites = false
        context.writeAndFlush(NIOAny(output), promise: written)
        output.moveReaderIndex(to: output.writerIndex)
        written.futureResult.assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    func flush(context: ChannelHandlerContext) {
        if hasUnflushedWrites {
            hasUnflushedWrites = false
            context.flush()
        }
    }

    func read(context: ChannelHandlerContext) {
        context.read()
    }

    func isClientWritable(context: ChannelHandlerContext) -> Bool {
        context.channel.isWritable
    }

    func close(context: ChannelHandlerContext) {
        context.close(promise: nil)
    }

    /// Makes `output` ready for more bytes, reusing its storage when the channel is done with
    /// what was last sent from it.
    private func prepareOutput() {
        if output.readableBytes == 0 { output.clear() }
    }
}
