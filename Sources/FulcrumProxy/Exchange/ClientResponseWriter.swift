import NIOCore
import NIOHTTP1

/// Writes an exchange's response to the client, in the client's protocol.
///
/// `ProxyHandler` is generic over it: `HTTP1ResponseWriter` frames responses as HTTP/1.1
/// bytes on a connection; `HTTP2ResponseWriter` hands response parts to an HTTP/2 stream's
/// codec. Protocol differences live here and in `ExchangeStateMachine.ClientChannel`, never
/// in flags the handler tests.
protocol ClientResponseWriter {
    /// How exchanges share the channel this writer writes to.
    static var clientChannel: ExchangeStateMachine.ClientChannel { get }

    init(allocator: ByteBufferAllocator)

    /// Something was handed to the channel since its last flush.
    var hasUnflushedWrites: Bool { get }

    /// An interim (1xx) response; it goes out without waiting for the end of the read.
    mutating func writeInterim(_ head: HTTPResponseHead, context: ChannelHandlerContext)

    /// The server's final response head (or the `101` of a WebSocket handshake). Returns false
    /// when the client's framing of the body needs the connection to close after it.
    mutating func writeResponseHead(
        _ head: HTTPResponseHead,
        request: HTTPRequestHead,
        keepAlive: Bool,
        upgrade: Bool,
        context: ChannelHandlerContext
    ) -> Bool

    mutating func writeResponseBody(_ body: ByteBuffer, context: ChannelHandlerContext)

    /// The end of a read from the server: hand what was gathered to the channel.
    mutating func readComplete(context: ChannelHandlerContext)

    /// A response made here, head and whole body; `finish` follows.
    mutating func writeLocalResponse(
        _ head: HTTPResponseHead,
        body: ByteBuffer,
        request: HTTPRequestHead?,
        keepAlive: Bool,
        context: ChannelHandlerContext
    )

    /// Ends the response (with the server's trailers, where the protocol carries them). With
    /// `closeClient`, the channel closes once it is written.
    mutating func finish(_ trailers: HTTPHeaders?, closeClient: Bool, context: ChannelHandlerContext)

    /// Flushes the channel if something was written since the last flush.
    mutating func flush(context: ChannelHandlerContext)
}
