import FulcrumBalancing
import FulcrumConfig
import NIOCore
import NIOHTTP1

/// What screening and routing decided about a request (`RequestAdmission`, `ShieldScreener`).
enum RequestDecision {
    /// Forward it to a server of the routed backend.
    case forward(retries: Int, serverCount: Int)
    /// Answer it from here.
    case respond(LocalResponse)
    /// Hold it, reading nothing more, then answer `status` and close.
    case tarpit(TimeAmount, status: HTTPResponseStatus)
    /// It claims to be a listed crawler whose address is not known yet: look it up, then screen
    /// it again.
    case verifyCrawler(address: [UInt8])
    /// Shared rate limit `limitIndex` applies: ask the store, then screen it again from there.
    case checkSharedLimit(limitIndex: Int, key: String)
}

extension ExchangeStateMachine {
    // MARK: Screening and routing

    /// What the screen and the routing made of the request `admit` handed out.
    mutating func admitted(_ decision: RequestDecision, framing: RequestFraming, maxBodyBytes: Int?) -> Action {
        guard case .admitting = state, let method = request?.head.method else { return .wait }
        var framing = framing
        // Only a GET over HTTP/1.1 can open a WebSocket (RFC 6455 §4.1); WebSocket over
        // HTTP/2 (RFC 8441) is not offered.
        framing.isWebSocket = framing.isWebSocket && method == .GET && !clientIsHTTP10 && channel == .connection
        if framing.isUpgrade {
            // The decoder stops parsing after an upgrade request, so this connection cannot
            // carry another one. A WebSocket upgrade is forwarded as one (and may become a
            // tunnel); any other is forwarded without its Upgrade header.
            keepAlive = false
        }
        request?.framing = framing
        request?.maxBodyBytes = maxBodyBytes
        return carryOut(decision)
    }

    /// Admission rewrote the request's target (`RequestRules`): what follows — a screen
    /// again, the server's response framing, the access log — sees the head as forwarded.
    mutating func targetRewritten(_ head: HTTPRequestHead) {
        guard case .admitting = state else { return }
        request?.head = head
    }

    /// What screening made of a request again, once the crawler check that held it is done.
    mutating func rescreened(_ decision: RequestDecision) -> Action {
        guard case .admitting = state else { return .wait }
        return carryOut(decision)
    }

    private mutating func carryOut(_ decision: RequestDecision) -> Action {
        switch decision {
        case .forward(let retries, let serverCount):
            state = .connecting(Upstream(serverCount: serverCount, retriesLeft: retries))
            return .pickServer(excluding: ServerIndexSet())
        case .respond(let response):
            return respond(response)
        case .tarpit(let delay, let status):
            keepAlive = false
            attempts &+= 1
            state = .holding(.tarpit(status, attempt: attempts))
            return .scheduleTarpit(delay, attempt: attempts)
        case .verifyCrawler(let address):
            attempts &+= 1
            state = .holding(.crawlerCheck(attempt: attempts))
            return .lookUpCrawler(address: address, attempt: attempts)
        case .checkSharedLimit(let index, let key):
            attempts &+= 1
            state = .holding(.sharedLimit(attempt: attempts))
            return .checkSharedLimit(limitIndex: index, key: key, attempt: attempts)
        }
    }

    /// A tarpit's time is up.
    mutating func tarpitElapsed(attempt: Int) -> Action {
        guard case .holding(.tarpit(let status, attempt)) = state else { return .wait }
        return respond(LocalResponse(status, "Too many requests, or not allowed."))
    }

    /// The crawler check is done (or timed out): screen the request again.
    mutating func crawlerChecked(attempt: Int) -> Action {
        guard case .holding(.crawlerCheck(attempt)) = state, let head = request?.head else { return .wait }
        state = .admitting
        return .rescreen(head)
    }

    /// The store answered about a shared limit (or failed to, in time): screen it again.
    mutating func sharedLimitChecked(attempt: Int) -> Action {
        guard case .holding(.sharedLimit(attempt)) = state, let head = request?.head else { return .wait }
        state = .admitting
        return .rescreen(head)
    }

    // MARK: Choosing a server and connecting

    /// The handler picked server `serverIndex` (or `reconnect` named it) and is connecting:
    /// returns the attempt to quote in `connected` or `connectFailed`.
    mutating func connecting(to serverIndex: Int) -> Int {
        guard case .connecting(var upstream) = state else { return -1 }
        attempts &+= 1
        upstream.tried.insert(serverIndex)
        upstream.serverIndex = serverIndex
        upstream.attempt = attempts
        state = .connecting(upstream)
        return attempts
    }

    /// Whether `attempt` is the connection attempt the exchange waits for.
    func isConnecting(attempt: Int) -> Bool {
        if case .connecting(let upstream) = state { return upstream.attempt == attempt }
        return false
    }

    /// Every server is down, draining or already tried.
    mutating func noServerAvailable() -> Action {
        respond(LocalResponse(.serviceUnavailable, "No server is available to handle this request."))
    }

    // MARK: The backend's queue

    /// Every server the request may go to is at its limit: it waits in the backend's queue.
    /// Returns the token its wake-up and its timeout quote (a later attempt voids it).
    mutating func queued() -> Int {
        guard case .connecting(var upstream) = state else { return -1 }
        attempts &+= 1
        upstream.attempt = attempts
        state = .connecting(upstream)
        return attempts
    }

    /// A slot freed and the queue woke the request: pick a server again. `.wait` when the
    /// exchange is no longer waiting (its client went away): the slot is not taken then.
    mutating func dequeued(attempt: Int) -> Action {
        guard case .connecting(let upstream) = state, upstream.attempt == attempt else { return .wait }
        return .pickServer(excluding: upstream.tried)
    }

    /// The queue is full.
    mutating func queueFull() -> Action {
        respond(LocalResponse(.serviceUnavailable, "Every server is at its limit and the queue is full: try again shortly."))
    }

    /// The request waited the queue's `timeout` and no server came free.
    mutating func queueTimedOut(attempt: Int, after timeout: Duration) -> Action {
        guard isConnecting(attempt: attempt) else { return .wait }
        return respond(
            LocalResponse(.serviceUnavailable, "Every server is at its limit, and none came free within \(formatDuration(timeout)) in the queue.")
        )
    }

    mutating func connected(attempt: Int) -> Action {
        // The request's fields are read one by one: `let request` would copy all of it.
        guard case .connecting(let upstream) = state, upstream.attempt == attempt, let head = request?.head else {
            // The client went away or was answered meanwhile; keep the connection.
            return .releaseConnection
        }
        state = .forwarding(upstream, Response())
        let end = request?.ended == true ? RequestEnd(trailers: request?.trailers) : nil
        return .sendRequest(head, body: request?.parts ?? [], end: end)
    }

    /// Connecting failed. Not charged to the retry budget: the failed attempt cost no server
    /// any work.
    mutating func connectFailed(attempt: Int, _ failure: ConnectFailure) -> Action {
        guard case .connecting(var upstream) = state, upstream.attempt == attempt else { return .wait }
        if upstream.mayTryAnother {
            upstream.retriesLeft -= 1
            state = .connecting(upstream)
            return .pickServer(excluding: upstream.tried)
        }
        if failure.isTLS {
            // The server answered but TLS with it failed (an untrusted certificate, say).
            return respond(LocalResponse(.badGateway, "TLS with the server failed (last tried \(failure.serverName))."))
        }
        return respond(
            LocalResponse(
                .serviceUnavailable,
                "No server could be reached (last tried \(failure.serverName): \(failure.reason))."
            )
        )
    }

    // MARK: Server events

    mutating func responseHead(_ head: HTTPResponseHead) -> Action {
        guard case .forwarding(let upstream, var response) = state, let requestHead = request?.head else { return .wait }
        let code = head.status.code
        if code < 200, code != 101 {
            // Interim responses (100 Continue, 103 Early Hints) pass through, except to
            // HTTP/1.0 clients, which do not know them.
            if clientIsHTTP10 { return .wait }
            response.started = true
            state = .forwarding(upstream, response)
            return .forwardInterim(head)
        }
        if code == 101, !isWebSocketUpgrade || response.started {
            // No upgrade was forwarded, so a 101 is a protocol error.
            return .closeServerConnection
        }
        // A final response (or the 101 of a WebSocket handshake, whose empty message ends
        // with the tunnel's start): the exchange is answered and can no longer be retried.
        response.started = true
        response.upgrade = code == 101
        request?.forgetBody()
        state = .forwarding(upstream, response)
        return .forwardResponseHead(head, request: requestHead, keepAlive: keepAlive, upgrade: response.upgrade)
    }

    /// The client's framing of the response needs the connection to close after it (an
    /// HTTP/1.0 client and a body of unknown length).
    mutating func closeAfterResponse() {
        keepAlive = false
    }

    func responseBody(_ body: ByteBuffer) -> Action {
        guard case .forwarding = state else { return .wait }
        return .forwardResponseBody(body)
    }

    mutating func responseEnd(_ trailers: HTTPHeaders?) -> Action {
        guard case .forwarding(_, let response) = state else { return .wait }
        // Taken, not copied: the exchange ends here either way.
        guard let request = self.request.take() else { return .wait }
        if response.upgrade {
            state = .upgrading
            return .startTunnel(summary: request.summarized())
        }
        var reuseConnection = true
        if !request.ended {
            // The server answered before the whole request arrived: the rest of the request
            // cannot be sent on this connection, nor told apart from a next request.
            reuseConnection = false
            keepAlive = false
        }
        enterBoundary()
        return .finishResponse(trailers, reuseConnection: reuseConnection, closeClient: !keepAlive, summary: request.summarized())
    }

    /// The tunnel is about to start: true unless the client went away meanwhile.
    mutating func tunnelReady() -> Bool {
        guard case .upgrading = state else { return false }
        state = .closed
        return true
    }

    /// The server connection failed before the response ended. Returns the outcome to record
    /// for the server (nil: the failure says nothing about it) and what to do.
    /// - Parameters:
    ///   - requestsSent: requests sent over the failed connection, this one included.
    ///   - withdrawRetry: takes a retry from the backend's budget, or says there is none.
    mutating func serverFailed(
        _ failure: BackendFailure,
        requestsSent: Int,
        withdrawRetry: () -> Bool
    ) -> (outcome: ServerMetrics.Outcome?, action: Action) {
        guard case .forwarding(var upstream, let response) = state, let request else { return (nil, .wait) }
        // A pooled connection the server had closed in the meantime says nothing about the
        // server, nor does a client that stopped reading.
        var outcome: ServerMetrics.Outcome?
        if !response.started, failure == .responseTimeout || (failure == .connectionClosed && requestsSent == 1) {
            outcome = failure == .responseTimeout ? .timeout : .noResponse
        }
        if response.started {
            // Part of the response is already with the client: all that can be done is stop.
            return (outcome, closeClient())
        }
        switch failure {
        case .clientNotReading:
            // Only a response the client is not taking waits for it; nothing left to answer.
            return (outcome, closeClient())
        case .responseTimeout:
            return (outcome, respond(LocalResponse(.gatewayTimeout, "The server did not answer in time.")))
        case .streamRefused:
            // The server did no work for the request (RFC 9113 §8.7), so any request may go
            // to another server, unbudgeted, as after a failed connect (Envoy's
            // `refused-stream`, gRPC's transparent retry) — if its body was kept.
            if request.isReplayable, upstream.mayTryAnother {
                upstream.retriesLeft -= 1
                state = .connecting(upstream)
                return (outcome, .pickServer(excluding: upstream.tried))
            }
            return (outcome, respond(LocalResponse(.badGateway, "The server refused the request's stream.")))
        case .connectionClosed:
            // gRPC's rule: a call may go again while nothing of its response arrived, whatever
            // its method (gRPC calls are POSTs); the server may have done work, so it is
            // budgeted like any such retry.
            let mayRepeat = request.head.method.isIdempotent || GRPCLocalResponse.isGRPC(request.head)
            let replayable = mayRepeat && request.isReplayable
            if replayable, requestsSent > 1, !upstream.reconnectedStale {
                // A pooled connection the server had already closed: the same server on a
                // fresh connection (HAProxy and nginx do the same for idempotent requests).
                upstream.reconnectedStale = true
                state = .connecting(upstream)
                return (outcome, .reconnect(serverIndex: upstream.serverIndex))
            }
            if replayable, upstream.mayTryAnother {
                // The server may have done work for this request: the retry is budgeted.
                guard withdrawRetry() else {
                    return (
                        outcome,
                        respond(
                            LocalResponse(
                                .badGateway,
                                "The server closed the connection without a response (not retried: the retry budget is spent)."
                            )
                        )
                    )
                }
                upstream.retriesLeft -= 1
                state = .connecting(upstream)
                return (outcome, .pickServer(excluding: upstream.tried))
            }
            return (outcome, respond(LocalResponse(.badGateway, "The server closed the connection without a response.")))
        }
    }

    // MARK: Ending exchanges

    /// Answers the current request from here (or, when a response had started, closes).
    mutating func respond(_ localResponse: LocalResponse) -> Action {
        switch state {
        case .closed, .upgrading:
            return .wait
        case .forwarding(_, let response) where response.started:
            return closeClient()
        case .idle, .admitting, .holding, .connecting, .forwarding:
            break
        }
        let current = request.take()
        if let current, current.framing.hasBody, !current.ended {
            // The unread rest of the request body cannot be told apart from a next request.
            keepAlive = false
        }
        if localResponse.closesConnection { keepAlive = false }
        enterBoundary()
        return .respond(
            localResponse,
            request: current?.head,
            closeClient: !keepAlive,
            summary: current?.summarized() ?? Summary(request: nil, requestBodyBytes: 0)
        )
    }

    /// An exchange ended: the channel waits for the next request, or closes.
    private mutating func enterBoundary() {
        attempts &+= 1
        request = nil
        if keepAlive {
            state = .idle
        } else {
            state = .closed
            pipelined.removeAll()
        }
    }

    mutating func closeClient() -> Action {
        attempts &+= 1
        state = .closed
        request = nil
        pipelined.removeAll()
        return .closeClient
    }
}

extension HTTPMethod {
    /// Methods that may be repeated without changing the result (RFC 9110 §9.2.2).
    var isIdempotent: Bool {
        switch self {
        case .GET, .HEAD, .OPTIONS, .TRACE, .PUT, .DELETE: true
        default: false
        }
    }
}
