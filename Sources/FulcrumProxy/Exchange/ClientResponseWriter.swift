import NIOCore
import NIOHTTP1

/// Writes an exchange's response to the client, in the client's protocol.
///
/// `ProxyHandler` holds one: `HTTP1ResponseWriter` frames responses as HTTP/1.1 bytes on a
/// connection; `HTTP2StreamWriter` writes an HTTP/2 stream's frames on its connection. The
/// writer is also how the handler reads from and closes its side of the client: a connection
/// reads and closes; a stream grants flow-control window and resets. Protocol differences live
/// here and in `ExchangeStateMachine.ClientChannel`, never in flags the handler tests.
///
/// Writers are classes: the handler calls them through the existential, and each mutates its
/// own buffer in place. (A generic handler over a writer value ran unspecialized: measured
/// at ~15 % more CPU per request, much of it copies of the output buffer.)
protocol ClientResponseWriter: AnyObject {
    /// How exchanges share the channel this writer writes to.
    var clientChannel: ExchangeStateMachine.ClientChannel { get }

    /// What `tls.hsts` adds to every final response (HTTP/1: the whole header line; HTTP/2:
    /// the value); nil on plain listeners and without `hsts`.
    var strictTransportSecurity: String? { get }

    /// Something was handed to the channel since its last flush.
    var hasUnflushedWrites: Bool { get }

    /// An interim (1xx) response; it goes out without waiting for the end of the read.
    func writeInterim(_ head: HTTPResponseHead, context: ChannelHandlerContext)

    /// The server's final response head (or the `101` of a WebSocket handshake). Returns false
    /// when the client's framing of the body needs the connection to close after it.
    func writeResponseHead(
        _ head: HTTPResponseHead,
        request: HTTPRequestHead,
        keepAlive: Bool,
        upgrade: Bool,
        context: ChannelHandlerContext
    ) -> Bool

    func writeResponseBody(_ body: ByteBuffer, context: ChannelHandlerContext)

    /// The end of a read from the server: hand what was gathered to the channel.
    func readComplete(context: ChannelHandlerContext)

    /// A response made here, head and whole body; `finish` follows.
    func writeLocalResponse(
        _ head: HTTPResponseHead,
        body: ByteBuffer,
        request: HTTPRequestHead?,
        keepAlive: Bool,
        context: ChannelHandlerContext
    )

    /// Ends the response (with the server's trailers, where the protocol carries them). With
    /// `closeClient`, the channel closes once it is written.
    func finish(_ trailers: HTTPHeaders?, closeClient: Bool, context: ChannelHandlerContext)

    /// Flushes the channel if something was written since the last flush.
    func flush(context: ChannelHandlerContext)

    /// The exchange is ready for more of the request (a connection: read; a stream: give the
    /// client back the window its body used).
    func read(context: ChannelHandlerContext)

    /// The client can take more of the response now (its connection, and for a stream, the
    /// stream's own window); when not, the server's reads pause.
    func isClientWritable(context: ChannelHandlerContext) -> Bool

    /// Ends the client's side at once: a connection closes, a stream is reset.
    func close(context: ChannelHandlerContext)
}
