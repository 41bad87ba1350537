import NIOCore
import NIOHTTP1

/// Writes responses to an HTTP/2 stream, as `HTTPServerResponsePart`s for the stream's
/// `HTTP2FramePayloadToHTTP1ServerCodec`.
///
/// The codec's normalization drops the server's connection-specific headers (Connection and
/// what it names, Keep-Alive, Transfer-Encoding, Upgrade), and a body needs no re-framing:
/// its DATA frames end with the stream.
final class HTTP2ResponseWriter: ClientResponseWriter {
    var clientChannel: ExchangeStateMachine.ClientChannel { .stream }

    private(set) var hasUnflushedWrites = false
    /// The frontend's `tls.hsts` value, set on every final response (replacing the server's).
    let strictTransportSecurity: String?

    init(strictTransportSecurity: String? = nil) {
        self.strictTransportSecurity = strictTransportSecurity
    }

    func writeInterim(_ head: HTTPResponseHead, context: ChannelHandlerContext) {
        write(.head(head), context: context)
        flush(context: context)
    }

    func writeResponseHead(
        _ head: HTTPResponseHead,
        request: HTTPRequestHead,
        keepAlive: Bool,
        upgrade: Bool,
        context: ChannelHandlerContext
    ) -> Bool {
        write(.head(withStrictTransportSecurity(head)), context: context)
        return true
    }

    func writeResponseBody(_ body: ByteBuffer, context: ChannelHandlerContext) {
        write(.body(.byteBuffer(body)), context: context)
    }

    func readComplete(context: ChannelHandlerContext) {}

    func writeLocalResponse(
        _ head: HTTPResponseHead,
        body: ByteBuffer,
        request: HTTPRequestHead?,
        keepAlive: Bool,
        context: ChannelHandlerContext
    ) {
        write(.head(withStrictTransportSecurity(head)), context: context)
        if request?.method != .HEAD {
            write(.body(.byteBuffer(body)), context: context)
        }
    }

    /// Ends the stream's response (with the server's trailers, if any: HTTP/2 carries them).
    /// Closing the stream early resets it (RST_STREAM), which tells the client to stop sending
    /// a request body that was not read to its end.
    func finish(_ trailers: HTTPHeaders?, closeClient: Bool, context: ChannelHandlerContext) {
        write(.end(trailers), context: context)
        flush(context: context)
        if closeClient {
            context.close(promise: nil)
        }
    }

    func flush(context: ChannelHandlerContext) {
        if hasUnflushedWrites {
            hasUnflushedWrites = false
            context.flush()
        }
    }

    private func withStrictTransportSecurity(_ head: HTTPResponseHead) -> HTTPResponseHead {
        guard let strictTransportSecurity else { return head }
        var head = head
        head.headers.replaceOrAdd(name: "strict-transport-security", value: strictTransportSecurity)
        return head
    }

    private func write(_ part: HTTPServerResponsePart, context: ChannelHandlerContext) {
        context.write(NIOAny(part), promise: nil)
        hasUnflushedWrites = true
    }
}
