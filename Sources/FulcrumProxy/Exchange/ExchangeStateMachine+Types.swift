import FulcrumBalancing
import NIOCore
import NIOHTTP1

extension ExchangeStateMachine {
    /// How exchanges share the client channel.
    enum ClientChannel {
        /// An HTTP/1.x connection: exchanges follow one another, keep-alive is negotiated per
        /// request, a request may upgrade the connection to a tunnel, and a graceful shutdown
        /// or a client half-close ends it after the current exchange.
        case connection
        /// One HTTP/2 stream: it carries one exchange and ends with it. Ending it normally is
        /// its "keep-alive"; closing it early resets it.
        case stream
    }

    /// What the exchange does next. The handler carries it out (`ProxyHandler.run`).
    enum Action {
        /// Nothing to do until the next event.
        case wait
        /// A request head is ready to be screened and routed; the handler answers with
        /// `admitted(_:)`.
        case admit(HTTPRequestHead)
        /// Screen again, the address's crawler check or a shared limit's decision done; the
        /// handler answers with `rescreened(_:)`.
        case rescreen(HTTPRequestHead)
        /// Pick a server of the exchange's backend other than these, then `connect(to:)`
        /// (or `noServerAvailable()`).
        case pickServer(excluding: ServerIndexSet)
        /// Open a new connection to the same server: the pooled one had been closed by it.
        case reconnect(serverIndex: Int)
        /// Hold the request (reading nothing) and call `tarpitElapsed(attempt:)` after `delay`.
        case scheduleTarpit(TimeAmount, attempt: Int)
        /// Look the client's address up and call `crawlerChecked(attempt:)` (at most
        /// `crawlerCheckTimeout` later).
        case lookUpCrawler(address: [UInt8], attempt: Int)
        /// Ask the store about shared rate limit `limitIndex` for `key`, and call
        /// `sharedLimitChecked(attempt:)` once it answers or fails (within its timeout).
        case checkSharedLimit(limitIndex: Int, key: String, attempt: Int)
        /// Connected: send the serialized head, the body parts that arrived meanwhile and, if
        /// the request ended, its end.
        case sendRequest(HTTPRequestHead, body: [ByteBuffer], end: RequestEnd?)
        /// A late connection (the exchange moved on): give it back to its pool.
        case releaseConnection
        /// Send a body part of the request to the server.
        case forwardBody(ByteBuffer)
        /// End the request to the server.
        case forwardEnd(HTTPHeaders?)
        /// Relay an interim (1xx) response to the client.
        case forwardInterim(HTTPResponseHead)
        /// Relay the final response head. `upgrade`: a 101 that turns the connection into a
        /// tunnel when its message ends. The server's metrics record the response.
        case forwardResponseHead(HTTPResponseHead, request: HTTPRequestHead, keepAlive: Bool, upgrade: Bool)
        /// Relay a body part of the response.
        case forwardResponseBody(ByteBuffer)
        /// The response ended: give the server connection back to its pool (unless
        /// `reuseConnection` is false: then close it) and end the response to the client.
        case finishResponse(HTTPHeaders?, reuseConnection: Bool, closeClient: Bool, summary: Summary)
        /// The upgrade's 101 was relayed: turn both connections into a tunnel (on the next tick,
        /// then `tunnelReady()`).
        case startTunnel(summary: Summary)
        /// The server sent what no request asked for (a 101 without an upgrade): close the
        /// server connection; the failure then reaches `serverFailed`.
        case closeServerConnection
        /// Answer the request from here, after giving back any server connection. Closes the
        /// client channel afterwards when `closeClient` is set.
        /// (Indirect: it is the largest case and a rare one. Stored inline, it made every
        /// action as large as itself, and each one costlier to move.)
        indirect case respond(LocalResponse, request: HTTPRequestHead?, closeClient: Bool, summary: Summary)
        /// Close the client channel now (what was written still goes out first).
        case closeClient
    }

    /// The end of a request: its trailers, if any.
    struct RequestEnd {
        var trailers: HTTPHeaders?
    }

    /// What the access log and traffic counters need of an exchange that ended.
    struct Summary {
        var request: HTTPRequestHead?
        var requestBodyBytes: Int
    }

    /// Why a connection attempt failed, as the client's error page explains it.
    struct ConnectFailure {
        /// TLS with the server failed (it answered): a bad gateway, not an unreachable one.
        var isTLS: Bool
        var serverName: String
        var reason: String
    }

    /// How the request is framed, from its headers.
    struct RequestFraming {
        var contentLength: Int?
        var isChunked = false
        var isUpgrade = false
        var isWebSocket = false

        init(contentLength: Int? = nil, isChunked: Bool = false, isUpgrade: Bool = false, isWebSocket: Bool = false) {
            self.contentLength = contentLength
            self.isChunked = isChunked
            self.isUpgrade = isUpgrade
            self.isWebSocket = isWebSocket
        }

        init(_ framing: ForwardingHeaders.Framing) {
            self.init(
                contentLength: framing.contentLength,
                isChunked: framing.isChunked,
                isUpgrade: framing.isUpgrade,
                isWebSocket: framing.isWebSocket
            )
        }

        var hasBody: Bool { isChunked || contentLength.map { $0 != 0 } ?? false }
    }

    /// A request's place in the exchange: what arrived and what is kept of it.
    struct Request {
        var head: HTTPRequestHead
        var framing: RequestFraming
        /// The frontend's `max_body_size`, if any.
        var maxBodyBytes: Int?
        var bodyBytes = 0
        var ended = false
        var trailers: HTTPHeaders?
        /// Body parts received but not yet sent (until connected), then sent parts kept for a
        /// retry while they fit `retainedBodyLimit`.
        var parts: [ByteBuffer] = []
        var partBytes = 0
        var isReplayable = true

        init(head: HTTPRequestHead, framing: RequestFraming = .init(), maxBodyBytes: Int? = nil) {
            self.head = head
            self.framing = framing
            self.maxBodyBytes = maxBodyBytes
        }

        /// Keeps a part that is not sent yet.
        mutating func buffer(_ part: ByteBuffer) {
            parts.append(part)
            partBytes += part.readableBytes
        }

        /// Keeps a sent part for a retry while the whole body so far fits the limit.
        mutating func retain(_ part: ByteBuffer) {
            guard isReplayable else { return }
            partBytes += part.readableBytes
            if partBytes > ExchangeStateMachine.retainedBodyLimit {
                forgetBody()
            } else {
                parts.append(part)
            }
        }

        /// The request can no longer be replayed (its response arrived, or its body outgrew
        /// the limit).
        mutating func forgetBody() {
            isReplayable = false
            parts.removeAll()
        }

        /// What is kept of the request once its exchange ended. Consuming, so that the head
        /// moves into the summary instead of being copied and then released with the request.
        consuming func summarized() -> Summary { Summary(request: head, requestBodyBytes: bodyBytes) }
    }

    /// The server side of an exchange: which servers were tried and what retries remain.
    struct Upstream {
        var serverCount: Int
        var retriesLeft: Int
        var tried = ServerIndexSet()
        var serverIndex = -1
        var attempt = 0
        /// A pooled connection the server had closed was already replaced once.
        var reconnectedStale = false

        var mayTryAnother: Bool { retriesLeft > 0 && tried.count < serverCount }
    }

    /// How far the response got.
    struct Response {
        /// Something of a response (interim or final) reached the client: the exchange can
        /// neither be retried nor answered from here.
        var started = false
        /// The server accepted the upgrade (`101`): a tunnel follows the response.
        var upgrade = false
    }

    /// What holds a request before it is routed.
    enum Hold {
        /// A tarpit: answered when its time is up.
        case tarpit(HTTPResponseStatus, attempt: Int)
        /// The address's crawler check (body parts that arrive meanwhile are kept).
        case crawlerCheck(attempt: Int)
        /// A shared rate limit's decision from the store (body parts are kept, too).
        case sharedLimit(attempt: Int)

        /// Whether the request goes on once the hold ends, so its body is kept meanwhile.
        var keepsRequest: Bool {
            switch self {
            case .tarpit: false
            case .crawlerCheck, .sharedLimit: true
            }
        }
    }

    /// Something the client sent while an earlier request was still being answered.
    enum PipelinedEvent {
        case part(HTTPServerRequestPart)
        case error(MalformedRequest)
    }
}
