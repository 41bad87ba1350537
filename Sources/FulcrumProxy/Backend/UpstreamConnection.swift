import NIOCore
import NIOHTTP1

/// Why an exchange with a server ended before its response was complete.
enum BackendFailure: Error, CustomStringConvertible {
    /// The connection closed (reset, EOF, or closed by us after an error).
    case connectionClosed
    /// An HTTP/2 server refused the request's stream (`RST_STREAM` with `REFUSED_STREAM`, or a
    /// `GOAWAY` that leaves it out): by RFC 9113 §8.7 it did no work for it.
    case streamRefused
    /// No response byte arrived within the backend's response timeout.
    case responseTimeout
    /// The client took no response byte for its idle timeout while the response waited for
    /// it: the client's fault, not the server's.
    case clientNotReading

    var description: String {
        switch self {
        case .connectionClosed: "connection to server lost"
        case .streamRefused: "server refused the stream"
        case .responseTimeout: "server did not respond in time"
        case .clientNotReading: "client took no response byte in time"
        }
    }
}

/// Receives what a server connection reports for the exchange currently using it.
///
/// Implemented by the client-side handler; every call happens on the shared event loop, as a
/// direct method call (no futures per request).
protocol BackendResponseSink: AnyObject {
    func backendResponseHead(_ head: HTTPResponseHead, from connection: any UpstreamConnection)
    func backendResponseBody(_ body: ByteBuffer)
    func backendResponseEnd(_ trailers: HTTPHeaders?, from connection: any UpstreamConnection)
    func backendReadComplete()
    func backendWritabilityChanged(isWritable: Bool)
    func backendFailed(_ failure: BackendFailure, connection: any UpstreamConnection)
}

/// The server side of one exchange at a time, as the client-side handler uses it.
///
/// `BackendConnection` (HTTP/1.1, pooled per event loop) is the implementation today; an
/// HTTP/2 stream to a server can satisfy the same interface, and the exchange's state
/// machine, which never sees a connection, does not change with it. Written bytes are
/// flushed through the loop's `DeferredFlushes`.
protocol UpstreamConnection: DeferredFlushTarget {
    /// Requests sent over this connection so far, the current one included (the first one is
    /// never a stale-connection retry).
    var requestsSent: Int { get }
    /// Whether the connection can take more request bytes now (backpressure to the client).
    var isWritable: Bool { get }
    /// False once the server said `Connection: close`, or the exchange ended abnormally.
    var isReusable: Bool { get set }
    /// The exchange using this connection; `nil` once it let go.
    var sink: (any BackendResponseSink)? { get set }

    /// Starts an exchange for `request` (whose serialized head is written next): the response
    /// timeout runs from now.
    func begin(request: HTTPRequestHead, sink: any BackendResponseSink, responseTimeout: TimeAmount)
    /// Writes request bytes as they are (a serialized head).
    func write(_ bytes: ByteBuffer)
    /// Writes a part of the request body, as a chunk when the request is chunked.
    func writeBody(_ body: ByteBuffer, chunked: Bool)
    /// Ends the request body.
    func writeEnd(_ trailers: HTTPHeaders?, chunked: Bool)
    /// Request bytes are still flowing: the response timeout counts from the last of them.
    func requestProgressed()
    /// Stops reading from the server until `resumeReads()` because the client cannot take more.
    /// The server is not waited for meanwhile, so the response timeout stops; the client may
    /// take no byte for at most `clientTimeout` (nginx's `send_timeout`, HAProxy's `timeout
    /// client`), then the exchange fails with `clientNotReading`.
    func pauseReads(clientTimeout: TimeAmount)
    func resumeReads()
    /// Gives the connection back to its pool (which closes it unless it is reusable).
    func release()
    /// Closes the connection; a sink still attached hears `backendFailed`.
    func close()
    /// Turns the connection into the server end of a tunnel (after a relayed `101`).
    func becomeTunnel(_ serverEnd: TunnelHandler) throws
}
