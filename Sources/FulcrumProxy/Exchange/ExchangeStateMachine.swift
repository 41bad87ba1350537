import FulcrumBalancing
import NIOCore
import NIOHTTP1

/// The life of a client connection's exchanges (or of one HTTP/2 stream's), as a value.
///
/// It takes events — request parts from the client, what the screen and the server pick
/// decided, connection results, response parts and failures from the server — and returns the
/// `Action` to carry out. It does no I/O and holds no channel, pool or timer, so every
/// transition is tested without a socket (`ExchangeStateMachineTests`). `ProxyHandler` owns
/// one, feeds it events and runs its actions: the shape of async-http-client's
/// `HTTP1ConnectionStateMachine` and `HTTP1ClientChannelHandler`.
///
/// HTTP/1.1 is sequential per connection, so at most one exchange is active. Pipelined
/// requests that arrive while one is answered wait in `pipelined` (and reading stops until
/// they are served); NIO's `HTTPServerPipelineHandler` would do the same but pauses reading
/// after *every* request, which costs two `epoll_ctl` calls per request for the common,
/// non-pipelined client.
struct ExchangeStateMachine {
    enum State {
        /// Waiting for a request head.
        case idle
        /// A head arrived and is being screened and routed.
        case admitting
        /// A tarpit or a crawler check holds the request; nothing is read.
        case holding(Hold)
        /// A server was chosen (or is being chosen); waiting for a connection to it.
        case connecting(Upstream)
        /// Connected: the request and the response stream.
        case forwarding(Upstream, Response)
        /// A `101` was relayed and its message ended; the tunnel is being set up.
        case upgrading
        /// Closing, closed, or a tunnel: nothing more is sent from here.
        case closed
    }

    /// The longest request body kept for a retry on another server.
    static let retainedBodyLimit = 64 * 1024
    /// How long a request claiming to be a listed crawler waits for DNS; past it, the claim
    /// counts as unconfirmed for that request (the lookup goes on, and its answer is cached).
    static let crawlerCheckTimeout = TimeAmount.seconds(2)

    /// Set only by the machine's own methods (its extensions live in other files).
    var state = State.idle
    /// The request of the current exchange, from its head to its end (`admitting` through
    /// `forwarding`). It lives beside the state rather than in each case's payload: it is the
    /// same request through all four, and copying it out of and back into an enum payload on
    /// every event (the head's storage, its headers, the kept body) measured at several per
    /// cent of the CPU per request.
    var request: Request?
    let channel: ClientChannel
    /// Whether the client channel carries on after the current exchange.
    var keepAlive = true
    /// A graceful shutdown or a client half-close: finish the current exchange, then close.
    var closeWhenDone = false
    var pipelined = CircularBuffer<PipelinedEvent>()
    /// The HTTP version of the last request head (HTTP/1.0 clients know neither chunked
    /// bodies nor interim responses).
    var clientVersion = HTTPVersion.http1_1
    /// Identifies each hold and connection attempt, so a late timer or connect result is
    /// recognised.
    var attempts = 0

    init(channel: ClientChannel) {
        self.channel = channel
    }

    /// The current request asks for a WebSocket upgrade (a `101` then starts a tunnel).
    var isWebSocketUpgrade: Bool {
        request?.framing.isWebSocket ?? false
    }

    var clientIsHTTP10: Bool {
        clientVersion.major < 1 || clientVersion.major == 1 && clientVersion.minor == 0
    }

    // MARK: Client events

    /// A request part from the client.
    mutating func channelRead(_ part: HTTPServerRequestPart) -> Action {
        if !pipelined.isEmpty {
            pipelined.append(.part(part))
            return .wait
        }
        if case .head = part {
            switch state {
            case .connecting, .forwarding, .holding:
                // A pipelined request: it waits for the current response.
                pipelined.append(.part(part))
                return .wait
            case .idle, .admitting, .upgrading, .closed:
                break
            }
        }
        return deliver(part)
    }

    private mutating func deliver(_ part: HTTPServerRequestPart) -> Action {
        switch part {
        case .head(let head): receivedHead(head)
        case .body(let body): receivedBody(body)
        case .end(let trailers): receivedEnd(trailers)
        }
    }

    private mutating func receivedHead(_ head: HTTPRequestHead) -> Action {
        guard case .idle = state else { return .wait }
        clientVersion = head.version
        switch channel {
        case .connection: keepAlive = head.isKeepAlive && !closeWhenDone
        case .stream: keepAlive = true
        }
        request = Request(head: head)
        state = .admitting
        return .admit(head)
    }

    private mutating func receivedBody(_ body: ByteBuffer) -> Action {
        switch state {
        case .admitting:
            // Not reached: screening is synchronous. Kept for completeness.
            request?.buffer(body)
            return .wait
        case .holding(let hold):
            request?.bodyBytes += body.readableBytes
            if hold.keepsRequest { request?.buffer(body) }
            return bodyLimitExceeded ? refuseOversizedBody(responseStarted: false) : .wait
        case .connecting:
            request?.bodyBytes += body.readableBytes
            request?.buffer(body)
            return bodyLimitExceeded ? refuseOversizedBody(responseStarted: false) : .wait
        case .forwarding(_, let response):
            request?.bodyBytes += body.readableBytes
            if bodyLimitExceeded {
                return refuseOversizedBody(responseStarted: response.started)
            }
            request?.retain(body)
            return .forwardBody(body)
        case .idle, .upgrading, .closed:
            // The rest of a request that was already answered (its connection closes).
            return .wait
        }
    }

    private var bodyLimitExceeded: Bool {
        guard let request, let limit = request.maxBodyBytes else { return false }
        return request.bodyBytes > limit
    }

    private mutating func refuseOversizedBody(responseStarted: Bool) -> Action {
        keepAlive = false
        if responseStarted { return closeClient() }
        return respond(LocalResponse(.payloadTooLarge, "The request body is larger than this server accepts."))
    }

    private mutating func receivedEnd(_ trailers: HTTPHeaders?) -> Action {
        switch state {
        case .admitting, .holding, .connecting:
            request?.ended = true
            request?.trailers = trailers
            return .wait
        case .forwarding:
            request?.ended = true
            return .forwardEnd(trailers)
        case .idle, .upgrading, .closed:
            return .wait
        }
    }

    /// The request decoder failed, or the raw-byte check before it refused a request line.
    mutating func errorCaught(_ error: MalformedRequest) -> Action {
        if !pipelined.isEmpty || requestEnded && isWaitingForResponse {
            // The error is in a pipelined request: answer it in turn.
            pipelined.append(.error(error))
            return .wait
        }
        return parserFailed(error)
    }

    private var requestEnded: Bool {
        request?.ended ?? false
    }

    private var isWaitingForResponse: Bool {
        switch state {
        case .connecting, .forwarding: true
        case .holding(let hold): hold.keepsRequest
        default: false
        }
    }

    private mutating func parserFailed(_ error: MalformedRequest) -> Action {
        keepAlive = false
        let status: HTTPResponseStatus
        let detail: String
        switch error {
        case .requestLineSpacing:
            status = .badRequest
            detail = "The request line must separate its parts with single spaces."
        case .unparsable(.headerOverflow):
            status = .requestHeaderFieldsTooLarge
            detail = "The request headers are larger than this server accepts."
        case .unparsable(.invalidContentLength), .unparsable(.unexpectedContentLength):
            status = .badRequest
            detail = "The request's Content-Length and Transfer-Encoding are invalid or conflict."
        case .unparsable(.invalidChunkSize):
            status = .badRequest
            detail = "A chunk size of the request body is invalid."
        case .unparsable(let error):
            status = .badRequest
            detail = "The request could not be parsed (\(error))."
        }
        // Between requests or in the middle of one (a broken body, an invalid chunk size), the
        // client gets the status before the close, unless a response to it has started: then
        // `respond` closes without one. Either way the connection cannot go on.
        return respond(LocalResponse(status, detail))
    }

    /// The client channel failed otherwise (a TLS error, a reset).
    mutating func channelFailed() -> Action {
        closeClient()
    }

    /// A graceful shutdown began, or the client half-closed: answer what is under way, then
    /// close. Nil on an HTTP/2 stream, which ends with its exchange anyway (the connection's
    /// GOAWAY is the connection management handler's): the event goes on down the pipeline.
    mutating func inputClosed() -> Action? {
        guard case .connection = channel else { return nil }
        closeWhenDone = true
        keepAlive = false
        if case .idle = state, pipelined.isEmpty {
            state = .closed
            return .closeClient
        }
        return .wait
    }

    /// The client channel closed.
    mutating func channelInactive() {
        attempts &+= 1
        state = .closed
        request = nil
        pipelined.removeAll()
    }

    /// The connection guard answers 408 itself (no head arrived in time); nothing else is sent.
    mutating func headerTimedOut() {
        state = .closed
    }

    /// Whether to read more from the client now. Not while connecting (so the body buffered
    /// meanwhile stays small), not while the server connection cannot take more bytes, and not
    /// while pipelined requests wait (so a pipelining client cannot queue without limit).
    enum ReadPolicy {
        case read
        case wait
        /// Forwarding: read while the server connection can take more bytes.
        case readWhileServerWritable
    }

    var readPolicy: ReadPolicy {
        guard pipelined.isEmpty else { return .wait }
        switch state {
        case .connecting, .holding, .admitting, .upgrading: return .wait
        case .forwarding: return .readWhileServerWritable
        case .idle, .closed: return .read
        }
    }

    /// Serves the next queued pipelined event, if the exchange is ready for it.
    mutating func servePipelined() -> Action? {
        guard let next = pipelined.first else { return nil }
        switch state {
        case .closed:
            return nil
        case .idle:
            break
        default:
            // A next request waits for the current one's response; so does a parse error
            // after the current request ended (it is the next request's).
            if case .part(.head) = next { return nil }
            if case .error = next, requestEnded { return nil }
        }
        pipelined.removeFirst()
        switch next {
        case .part(let part): return deliver(part)
        case .error(let error): return parserFailed(error)
        }
    }
}
