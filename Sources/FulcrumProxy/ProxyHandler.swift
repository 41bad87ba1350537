internal import Foundation
import FulcrumBalancing
import FulcrumConfig
import FulcrumShield
import NIOCore
import NIOHTTP1

/// The client side of the proxy: the last handler of a frontend connection (HTTP/1.1) or of
/// one HTTP/2 stream.
///
/// For each request it routes (ACLs and rules), picks a server with the backend's algorithm,
/// takes a keep-alive connection from this loop's pool (or opens one), and then streams the
/// request to the server and the response back, part by part, with backpressure both ways.
///
/// HTTP/1.1 is sequential per connection, so at most one exchange is active, and its state
/// lives in this handler (`Exchange`, reset as a whole per request) rather than in a
/// per-request object. Pipelined requests that arrive while one is being answered are queued
/// here (and reading pauses until they are served); NIO's `HTTPServerPipelineHandler` would do
/// the same but pauses reading after *every* request, which costs two `epoll_ctl` calls per
/// request for the common, non-pipelined client.
///
/// On an HTTP/2 stream (behind `HTTP2FramePayloadToHTTP1ServerCodec`) the request arrives as
/// the same parts, and the response leaves as `HTTPServerResponsePart`s instead of bytes; the
/// stream carries one exchange and ends with it.
final class ProxyHandler: ChannelDuplexHandler, RemovableChannelHandler, BackendResponseSink, DeferredFlushTarget {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = ByteBuffer
    /// Responses are written as bytes (`HTTPWireFormat`), not through an HTTP encoder (on an
    /// HTTP/2 stream, as `HTTPServerResponsePart`s: see `writeHTTP2`).
    typealias OutboundOut = ByteBuffer

    /// What the client speaks on this channel.
    enum ClientProtocol {
        /// An HTTP/1.x connection, whose timeouts `ClientConnectionGuard` enforces.
        case http1(ClientConnectionGuard)
        /// One HTTP/2 stream (the connection's timeouts are the HTTP/2 handlers').
        case http2
    }

    private enum Phase {
        /// Waiting for a request head (or discarding the rest of an answered request's body).
        case idle
        /// A server was chosen; waiting for a connection to it.
        case connecting
        /// Connected: streaming the request and the response.
        case forwarding
        /// The connection is closing, or became a tunnel; nothing more is sent from here.
        case closed
        /// A tarpit rule holds the request: nothing is read until it is answered.
        case holding
        /// The request claims to be a listed crawler: waiting for DNS to say whether the
        /// address is the crawler's (body parts that arrive meanwhile are kept, as when
        /// connecting).
        case checkingCrawler
    }

    /// Everything about the current request and its response. Reset as a whole when a request
    /// head arrives and when its response has been sent.
    private struct Exchange {
        /// The request as the client sent it (routing, logging, retry decisions).
        var request: HTTPRequestHead?
        /// Whether the request announced a body (a non-zero Content-Length, or chunked).
        var requestHasBody = false
        /// The request body is chunked: the decoder de-chunked it, so it is chunked again.
        var requestChunked = false
        /// The client's response body is chunked: body parts get chunk framing.
        var responseChunked = false
        var backend: LoopBackend?
        var serverIndex = -1
        var tried = ServerIndexSet()
        var retriesLeft = 0
        var reconnectedStale = false
        /// Body parts received but not yet sent (while connecting), or sent and kept for a retry.
        var bodyParts: [ByteBuffer] = []
        var bodyRetained = true
        var retainedBytes = 0
        var requestBodyBytes = 0
        var requestEnded = false
        var requestTrailers: HTTPHeaders?
        var responseStarted = false
        /// The request asks for a WebSocket upgrade: a `101` from the server starts a tunnel.
        var isWebSocketUpgrade = false
        /// The server answered `101`: the tunnel starts when that response ends.
        var tunnelPending = false
        var responseStatus: UInt = 0
        var responseBytes = 0
        var start = NIODeadline.uptimeNanoseconds(0)
        var upstreamStart = NIODeadline.uptimeNanoseconds(0)
        var upstreamNanoseconds: Int64 = -1
        /// What the shield decided, for the access log.
        var shield: String?
    }

    private enum PipelinedEvent {
        case part(HTTPServerRequestPart)
        case error(HTTPParserError)
    }

    /// The longest request body kept for a retry on another server.
    private static let retainedBodyLimit = 64 * 1024

    private let loop: LoopContext
    private var frontendName: String
    /// HTTP/1.x only.
    private let connectionGuard: ClientConnectionGuard?
    private let isHTTP2: Bool
    /// The connection came over TLS (`X-Forwarded-Proto: https`).
    private let isSecure: Bool
    private var context: ChannelHandlerContext?
    private var client = ClientInfo(peer: nil, isSecure: false)

    /// The snapshot and frontend the current request started with (`nil` frontend: it was
    /// removed by a reload; requests then get 503).
    private var snapshot: RuntimeSnapshot
    private var frontend: RuntimeFrontend?
    /// This loop's limiters for the frontend's rate limits and anti-bot rate, looked up when
    /// the frontend is (not per request).
    private var limiters = FrontendLimiters()

    private var phase = Phase.idle
    private var exchange = Exchange()
    private var connection: BackendConnection?
    /// The server whose in-flight count this exchange holds; cleared when it is given back, so
    /// the count can be neither leaked nor decremented twice.
    private var countedServer: BalancedServer?
    /// Identifies the current connection attempt, so a late connect result can be recognised.
    private var attempt = 0
    private var clientVersion = HTTPVersion.http1_1
    private var clientKeepAlive = true
    /// Set by a graceful shutdown or a client half-close: finish the current request, then close.
    private var closeWhenDone = false
    /// Requests (and parse errors) that arrived while an earlier request was still being answered.
    private var pipelined: [PipelinedEvent] = []
    private var readPending = false
    /// Answers a request a tarpit rule holds.
    private var tarpitTimer: Scheduled<Void>?
    /// Response bytes were handed to the client channel since its last flush.
    private var clientFlushPending = false
    var isFlushQueued = false
    /// The current request's head as the server receives it, serialized once (and re-sent
    /// as is on a retry). Kept across requests so its storage is reused.
    private var forwardedHead = ByteBuffer()
    /// Response bytes for the client not yet handed to the channel. Heads, small body parts
    /// and chunk framing gather here, so a typical response reaches the socket as one buffer.
    private var output = ByteBuffer()
    /// Body parts up to this size are copied into `output`; larger ones are written as they are.
    private static let coalescingLimit = 4096

    init(loop: LoopContext, frontendName: String, isSecure: Bool, protocol clientProtocol: ClientProtocol) {
        self.loop = loop
        self.isSecure = isSecure
        self.frontendName = frontendName
        switch clientProtocol {
        case .http1(let connectionGuard):
            self.connectionGuard = connectionGuard
            self.isHTTP2 = false
        case .http2:
            self.connectionGuard = nil
            self.isHTTP2 = true
        }
        self.snapshot = loop.snapshot
        self.frontend = loop.snapshot.frontends.first { $0.name == frontendName }
        self.limiters = frontend.map { loop.rateLimiters(for: $0) } ?? FrontendLimiters()
    }

    /// HTTP/1.0 (or 0.9) clients know neither chunked encoding nor interim responses.
    private var clientIsHTTP10: Bool {
        clientVersion.major < 1 || clientVersion.major == 1 && clientVersion.minor == 0
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        forwardedHead = context.channel.allocator.buffer(capacity: 512)
        output = context.channel.allocator.buffer(capacity: 1024)
        // The peer address is read once per connection: per request it would be a syscall.
        client = ClientInfo(peer: context.channel.remoteAddress, isSecure: isSecure)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Client → proxy

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if !pipelined.isEmpty {
            pipelined.append(.part(part))
            return
        }
        if case .head = part, phase == .connecting || phase == .forwarding || phase == .holding || phase == .checkingCrawler {
            // A pipelined request: it waits for the current response.
            pipelined.append(.part(part))
            return
        }
        deliver(part)
    }

    private func deliver(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head): receivedHead(head)
        case .body(let body): receivedBody(body)
        case .end(let trailers): receivedEnd(trailers)
        }
    }

    /// Whether to read more from the client now. Not while connecting (so the body buffered
    /// meanwhile stays small), not while the server connection cannot take more bytes, and not
    /// while pipelined requests wait (so a pipelining client cannot queue without limit).
    private var mayReadFromClient: Bool {
        guard pipelined.isEmpty else { return false }
        switch phase {
        case .connecting, .holding, .checkingCrawler: return false
        case .forwarding: return connection?.isWritable ?? true
        case .idle, .closed: return true
        }
    }

    func read(context: ChannelHandlerContext) {
        if mayReadFromClient {
            context.read()
        } else {
            readPending = true
        }
    }

    private func resumeClientReads() {
        if readPending, mayReadFromClient, let context {
            readPending = false
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            connection?.resumeReads()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        tarpitTimer?.cancel()
        tarpitTimer = nil
        abandonExchange()
        phase = .closed
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if !isHTTP2, event is ChannelShouldQuiesceEvent || event as? ChannelEvent == .inputClosed {
            // Graceful shutdown, or the client will send nothing more: answer what is under
            // way, then close. (An HTTP/2 stream ends with its exchange anyway; the
            // connection's GOAWAY is the connection management handler's.)
            closeWhenDone = true
            clientKeepAlive = false
            if phase == .idle, pipelined.isEmpty {
                phase = .closed
                // The last response may still wait for its deferred flush.
                flushClient(context: context)
                context.close(promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let parserError = error as? HTTPParserError,
           !pipelined.isEmpty || exchange.requestEnded && (phase == .connecting || phase == .forwarding || phase == .checkingCrawler) {
            // The error is in a pipelined request: answer it in turn.
            pipelined.append(.error(parserError))
            return
        }
        handleError(error)
    }

    private func handleError(_ error: Error) {
        guard let parserError = error as? HTTPParserError else {
            closeClient()
            return
        }
        let status: HTTPResponseStatus
        let detail: String
        switch parserError {
        case .headerOverflow:
            status = .requestHeaderFieldsTooLarge
            detail = "The request headers are larger than this server accepts."
        case .invalidContentLength, .unexpectedContentLength:
            status = .badRequest
            detail = "The request's Content-Length and Transfer-Encoding are invalid or conflict."
        default:
            status = .badRequest
            detail = "The request could not be parsed (\(parserError))."
        }
        clientKeepAlive = false
        if exchange.responseStarted || phase == .forwarding {
            // Mid-exchange (a broken body): nothing sensible can follow on this connection.
            closeClient()
        } else {
            abandonExchange()
            respondLocally(status: status, detail: detail)
        }
    }

    // MARK: Request handling

    private func receivedHead(_ head: HTTPRequestHead) {
        guard phase == .idle else { return }
        connectionGuard?.requestHeadReceived()
        exchange = Exchange()
        // For the duration histogram and the access log.
        exchange.start = .now()
        clientVersion = head.version
        // An HTTP/2 stream is not kept alive but ends with its response; "keep-alive" there
        // means ending it normally (`false` resets it, e.g. when its body was not read).
        clientKeepAlive = isHTTP2 || head.isKeepAlive && !closeWhenDone

        var scan = ForwardingHeaders.scanRequest(head.headers)
        // Only a GET over HTTP/1.1 can open a WebSocket (RFC 6455 §4.1).
        // (WebSocket over HTTP/2, RFC 8441, is not offered.)
        scan.framing.isWebSocket = scan.framing.isWebSocket && head.method == .GET && !clientIsHTTP10 && !isHTTP2
        let framing = scan.framing
        exchange.isWebSocketUpgrade = framing.isWebSocket
        exchange.request = head
        exchange.requestChunked = framing.isChunked
        exchange.requestHasBody = framing.isChunked || framing.contentLength.map { $0 != 0 } ?? false

        if loop.snapshot !== snapshot {
            snapshot = loop.snapshot
            if let successor = snapshot.renamedFrontends[frontendName] {
                // A reload renamed this connection's frontend, keeping its address.
                frontendName = successor
            }
            frontend = snapshot.frontends.first { $0.name == frontendName }
            limiters = frontend.map { loop.rateLimiters(for: $0) } ?? FrontendLimiters()
        }
        guard let frontend else {
            clientKeepAlive = false
            respondLocally(status: .serviceUnavailable, detail: "This listener's frontend was removed.")
            return
        }
        if head.method == .CONNECT {
            clientKeepAlive = false
            respondLocally(status: .methodNotAllowed, detail: "CONNECT is not supported.")
            return
        }
        if framing.isUpgrade {
            // The decoder stops parsing after an upgrade request, so this connection cannot
            // carry another one. A WebSocket upgrade is forwarded as one (and may become a
            // tunnel); any other is forwarded without its Upgrade header.
            clientKeepAlive = false
        }
        if let port = frontend.redirectToHTTPSPort {
            redirectToHTTPS(head, port: port)
            return
        }
        if let limit = frontend.maxBodyBytes, let length = framing.contentLength, length > limit {
            respondLocally(status: .payloadTooLarge, detail: "The request body is larger than this server accepts.")
            return
        }

        if let shield = frontend.shield, screen(head, shield: shield, router: frontend.router) != .pass {
            return
        }
        forward(head, scan: scan, frontend: frontend)
    }

    /// Routes a request that passed the shield: to a backend, or answered by a rule.
    private func forward(_ head: HTTPRequestHead, scan: ForwardingHeaders.Scan, frontend: RuntimeFrontend) {
        let route = frontend.router.route(head, client: client)
        switch route.decision {
        case .backend(let index)?:
            let backend = loop.backends[index]
            exchange.backend = backend
            forwardedHead.clear()
            if route.headerEdits.isEmpty {
                ForwardingHeaders.writeRequestHead(head, scan: scan, client: client, into: &forwardedHead)
            } else {
                var edited = head
                for edit in route.headerEdits {
                    switch edit {
                    case .set(let name, let value): edited.headers.replaceOrAdd(name: name, value: value)
                    case .delete(let name): edited.headers.remove(name: name)
                    }
                }
                ForwardingHeaders.writeRequestHead(edited, scan: scan, client: client, into: &forwardedHead)
            }
            exchange.retriesLeft = backend.runtime.retries
            backend.retryBudget.recordRequest()
            startAttempt()
        case .deny(let status)?:
            respondLocally(status: HTTPResponseStatus(statusCode: status), detail: "This request is not allowed.")
        case .redirect(let template, let status)?:
            let location = Self.redirectLocation(template, head: head)
            respondLocally(
                status: HTTPResponseStatus(statusCode: status),
                detail: "Moved to \(location)",
                extraHeaders: [("location", location)]
            )
        case .tarpit(let delay)?:
            tarpit(for: delay)
        case nil:
            respondLocally(status: .serviceUnavailable, detail: "No backend is configured for this request.")
        }
    }

    private func receivedBody(_ body: ByteBuffer) {
        exchange.requestBodyBytes += body.readableBytes
        if let limit = frontend?.maxBodyBytes, exchange.requestBodyBytes > limit {
            clientKeepAlive = false
            if exchange.responseStarted || phase == .idle {
                closeClient()
            } else {
                abandonExchange()
                respondLocally(status: .payloadTooLarge, detail: "The request body is larger than this server accepts.")
            }
            return
        }
        switch phase {
        case .connecting, .checkingCrawler:
            exchange.bodyParts.append(body)
            exchange.retainedBytes += body.readableBytes
        case .forwarding:
            connection?.writeBody(body, chunked: exchange.requestChunked)
            connection?.requestProgressed()
            retain(body)
            backendWritten()
        case .idle, .closed, .holding:
            break  // the rest of a request that was already answered (or is held, then refused)
        }
    }

    private func receivedEnd(_ trailers: HTTPHeaders?) {
        exchange.requestEnded = true
        switch phase {
        case .connecting, .checkingCrawler:
            exchange.requestTrailers = trailers
        case .forwarding:
            connection?.writeEnd(trailers, chunked: exchange.requestChunked)
            backendWritten()
        case .idle, .closed, .holding:
            break
        }
    }

    /// Keeps a sent body part for a retry while the whole body so far fits the limit.
    private func retain(_ body: ByteBuffer) {
        guard exchange.bodyRetained else { return }
        exchange.retainedBytes += body.readableBytes
        if exchange.retainedBytes > Self.retainedBodyLimit {
            exchange.bodyRetained = false
            exchange.bodyParts.removeAll()
        } else {
            exchange.bodyParts.append(body)
        }
    }

    /// Something was written to the server connection: it is flushed once the loop has handled
    /// its current I/O events (`DeferredFlushes`), together with whatever else they bring —
    /// the rest of this client read, and other clients' requests to the same server.
    private func backendWritten() {
        if let connection {
            loop.flushes.flushSoon(connection)
        }
    }

    // MARK: Choosing a server and connecting

    private func startAttempt(sameServer: Bool = false) {
        guard let backend = exchange.backend else { return }
        let index: Int
        if sameServer {
            index = exchange.serverIndex
        } else {
            guard let picked = backend.algorithm.pick(from: backend.runtime.servers, excluding: exchange.tried) else {
                respondLocally(status: .serviceUnavailable, detail: "No server is available to handle this request.")
                return
            }
            index = picked
        }
        exchange.tried.insert(index)
        exchange.serverIndex = index
        startCounting(backend.runtime.servers[index])
        exchange.upstreamStart = .now()
        let pool = backend.pools[index]
        if !sameServer, let idle = pool.takeIdle() {
            attach(idle)
            return
        }
        phase = .connecting
        attempt &+= 1
        let thisAttempt = attempt
        pool.connect().assumeIsolated().whenComplete { [self] result in
            let current = phase == .connecting && attempt == thisAttempt
            switch result {
            case .success(let connection):
                if current {
                    attach(connection)
                } else {
                    // The client went away or was answered meanwhile; keep the connection.
                    pool.release(connection)
                }
            case .failure(let error):
                if current {
                    stopCounting()
                    recordOutcome(.connectFailure)
                    connectFailed(error)
                }
            }
        }
    }

    private func connectFailed(_ error: Error) {
        guard let backend = exchange.backend else { return }
        let tlsError = error as? BackendTLSError
        if let tlsError {
            loop.logger.warning(
                "TLS to server failed: \(tlsError)",
                metadata: ["backend": "\(backend.runtime.name)", "server": "\(backend.runtime.servers[exchange.serverIndex].name)"]
            )
        }
        // Not charged to the retry budget: the failed attempt cost no server any work.
        if exchange.retriesLeft > 0, exchange.tried.count < backend.runtime.servers.count {
            exchange.retriesLeft -= 1
            startAttempt()
        } else if tlsError != nil {
            // The server answered but TLS with it failed (an untrusted certificate, say): a
            // bad gateway rather than an unreachable one.
            let server = backend.runtime.servers[exchange.serverIndex].name
            respondLocally(status: .badGateway, detail: "TLS with the server failed (last tried \(server)).")
        } else {
            let server = backend.runtime.servers[exchange.serverIndex].name
            respondLocally(
                status: .serviceUnavailable,
                detail: "No server could be reached (last tried \(server): \(describeNetworkError(error)))."
            )
        }
    }

    /// Sends the request so far on `connection` and makes it the exchange's connection.
    private func attach(_ connection: BackendConnection) {
        guard let request = exchange.request, let backend = exchange.backend else { return }
        self.connection = connection
        phase = .forwarding
        connection.begin(request: request, sink: self, responseTimeout: backend.runtime.responseTimeout)
        connection.write(forwardedHead)
        for part in exchange.bodyParts {
            connection.writeBody(part, chunked: exchange.requestChunked)
        }
        if exchange.requestEnded {
            connection.writeEnd(exchange.requestTrailers, chunked: exchange.requestChunked)
        }
        backendWritten()
        resumeClientReads()
    }

    /// Records how the current server did — the time from choosing it to its response head
    /// (or to the failure) — in its live metrics, for a latency-aware algorithm, and for
    /// passive outlier detection.
    private func recordOutcome(_ outcome: ServerMetrics.Outcome) {
        guard let backend = exchange.backend else { return }
        let index = exchange.serverIndex
        let now = NIODeadline.now().uptimeNanoseconds
        let elapsed = Int64(now &- exchange.upstreamStart.uptimeNanoseconds)
        backend.metrics[index].record(outcome, responseNanoseconds: elapsed, now: now)
        let failed: Bool
        if case .response(let status) = outcome {
            exchange.upstreamNanoseconds = elapsed
            failed = status >= 500
        } else {
            failed = true
        }
        if backend.algorithm.observesResponses {
            backend.algorithm.observe(serverIndex: index, responseNanoseconds: elapsed, failed: failed, now: now)
        }
        if let detector = backend.runtime.outlierDetector {
            if !failed {
                detector.recordSuccess(serverIndex: index)
            } else if let verdict = detector.recordFailure(serverIndex: index, now: now) {
                loop.outlierVerdict(verdict, backend: backend.runtime, serverIndex: index)
            }
        }
    }

    private func startCounting(_ server: BalancedServer) {
        stopCounting()
        countedServer = server
        server.requestStarted()
    }

    private func stopCounting() {
        countedServer?.requestFinished()
        countedServer = nil
    }

    // MARK: Server → client (BackendResponseSink)

    func backendResponseHead(_ head: HTTPResponseHead, from connection: BackendConnection) {
        guard let context else { return }
        if isHTTP2 {
            http2ResponseHead(head, from: connection, context: context)
            return
        }
        let code = head.status.code
        if code < 200 {
            if code != 101, !clientIsHTTP10 {
                // Interim responses (100 Continue, 103 Early Hints) pass through.
                exchange.responseStarted = true
                let scan = ForwardingHeaders.scanResponse(head.headers)
                prepareOutput()
                ForwardingHeaders.writeResponseHead(head, scan: scan, framing: .init(), into: &output)
                sendOutput(context: context)
                flushClientSoon()
                return
            }
            if code != 101 { return }
            guard exchange.isWebSocketUpgrade, !exchange.responseStarted else {
                // No upgrade was forwarded, so a 101 is a protocol error.
                connection.close()
                return
            }
            // The WebSocket handshake succeeded: pass the 101 on; when its (empty) message
            // ends, both connections become a tunnel.
            acceptFinalResponse(head, from: connection)
            exchange.tunnelPending = true
            connection.isReusable = false
            let scan = ForwardingHeaders.scanResponse(head.headers)
            var framing = ForwardingHeaders.ResponseFraming()
            framing.webSocketUpgrade = true
            prepareOutput()
            ForwardingHeaders.writeResponseHead(head, scan: scan, framing: framing, into: &output)
            return
        }
        acceptFinalResponse(head, from: connection)
        let scan = ForwardingHeaders.scanResponse(head.headers)
        var framing = ForwardingHeaders.ResponseFraming()
        let bodyless = exchange.request?.method == .HEAD || code == 204 || code == 304
        if bodyless {
            // No body follows, so there is nothing to chunk; a Transfer-Encoding would only
            // announce one.
            framing.dropTransferEncoding = scan.framing.isChunked && code != 304 && exchange.request?.method != .HEAD
        } else if clientIsHTTP10 {
            // HTTP/1.0 has no chunked encoding: send the body as is and end it by closing.
            if scan.framing.isChunked {
                framing.dropTransferEncoding = true
                clientKeepAlive = false
            } else if scan.framing.contentLength == nil {
                clientKeepAlive = false
            }
        } else if scan.framing.isChunked {
            // The decoder de-chunked the body; it is chunked again on the way out.
            exchange.responseChunked = true
        } else if scan.framing.contentLength == nil {
            // The server ends this body by closing; re-frame it so the client connection survives.
            framing.addChunked = true
            exchange.responseChunked = true
        }
        if !clientKeepAlive {
            framing.connection = "close"
        } else if clientIsHTTP10 {
            framing.connection = "keep-alive"
        }
        prepareOutput()
        ForwardingHeaders.writeResponseHead(head, scan: scan, framing: framing, into: &output)
    }

    /// A final response head arrived: the exchange is answered (and can no longer be retried).
    private func acceptFinalResponse(_ head: HTTPResponseHead, from connection: BackendConnection) {
        exchange.responseStarted = true
        exchange.responseStatus = head.status.code
        recordOutcome(.response(status: head.status.code))
        exchange.bodyParts.removeAll()
        exchange.bodyRetained = false
        if !head.isKeepAlive { connection.isReusable = false }
    }

    func backendResponseBody(_ body: ByteBuffer) {
        guard let context, body.readableBytes > 0 else { return }
        exchange.responseBytes += body.readableBytes
        if isHTTP2 {
            writeHTTP2(.body(.byteBuffer(body)), context: context)
            return
        }
        prepareOutput()
        if exchange.responseChunked { output.writeChunkHeader(size: body.readableBytes) }
        if body.readableBytes <= Self.coalescingLimit {
            output.writeImmutableBuffer(body)
        } else {
            sendOutput(context: context)
            context.write(wrapOutboundOut(body), promise: nil)
            clientFlushPending = true
        }
        if exchange.responseChunked { output.writeStaticString("\r\n") }
    }

    func backendResponseEnd(_ trailers: HTTPHeaders?, from connection: BackendConnection) {
        guard let context, let backend = exchange.backend else { return }
        if exchange.tunnelPending {
            // On the next tick: this call comes from inside the response decoder, which the
            // tunnel replaces. Both decoders hold back any bytes that arrive meanwhile.
            exchange.tunnelPending = false
            context.eventLoop.assumeIsolated().execute { [self] in
                guard connection === self.connection, phase == .forwarding, let context = self.context else { return }
                startTunnel(with: connection, context: context)
            }
            return
        }
        if !exchange.requestEnded {
            // The server answered before the whole request arrived: the rest of the request
            // cannot be sent on this connection, nor told apart from a next request.
            connection.isReusable = false
            clientKeepAlive = false
        }
        self.connection = nil
        connection.sink = nil
        stopCounting()
        backend.pools[exchange.serverIndex].release(connection)
        finishResponse(trailers, context: context)
    }

    func backendReadComplete() {
        guard let context else { return }
        sendOutput(context: context)
        flushClientSoon()
        if !context.channel.isWritable {
            connection?.pauseReads()
        }
    }

    func backendWritabilityChanged(isWritable: Bool) {
        if isWritable { resumeClientReads() }
    }

    func backendFailed(_ failure: BackendFailure, connection: BackendConnection) {
        guard connection === self.connection, let backend = exchange.backend else { return }
        self.connection = nil
        stopCounting()
        // A pooled connection the server had closed in the meantime says nothing about the server.
        if !exchange.responseStarted, failure == .responseTimeout || connection.requestsSent == 1 {
            recordOutcome(failure == .responseTimeout ? .timeout : .noResponse)
        }
        if exchange.responseStarted {
            // Part of the response is already with the client: all we can do is stop.
            closeClient()
            return
        }
        switch failure {
        case .responseTimeout:
            respondLocally(status: .gatewayTimeout, detail: "The server did not answer in time.")
        case .connectionClosed:
            let replayable = (exchange.request?.method.isIdempotent ?? false) && exchange.bodyRetained
            if replayable, connection.requestsSent > 1, !exchange.reconnectedStale {
                // A pooled connection the server had already closed: the same server on a fresh
                // connection (HAProxy and nginx do the same for idempotent requests).
                exchange.reconnectedStale = true
                startAttempt(sameServer: true)
            } else if replayable, exchange.retriesLeft > 0, exchange.tried.count < backend.runtime.servers.count {
                // The server may have done work for this request: the retry is budgeted.
                guard backend.retryBudget.withdrawRetry(now: NIODeadline.now().uptimeNanoseconds) else {
                    respondLocally(
                        status: .badGateway,
                        detail: "The server closed the connection without a response (not retried: the retry budget is spent)."
                    )
                    return
                }
                exchange.retriesLeft -= 1
                startAttempt()
            } else {
                respondLocally(status: .badGateway, detail: "The server closed the connection without a response.")
            }
        }
    }

    // MARK: WebSocket tunnels

    /// Turns the client connection and `connection` into a byte tunnel (`TunnelHandler`) once
    /// the server's `101` was relayed: both HTTP decoders leave their pipelines (handing on
    /// whatever bytes they held back after the upgrade), as does this handler; the server
    /// connection never returns to its pool. The tunnel keeps the server's in-flight count
    /// until it closes, so least-connections sees it as the open connection it is.
    private func startTunnel(with connection: BackendConnection, context: ChannelHandlerContext) {
        guard let backend = exchange.backend else { return }
        sendOutput(context: context)
        flushClient(context: context)
        exchangeEnded()
        self.connection = nil
        connection.detachForTunnel()
        let server = countedServer
        countedServer = nil
        phase = .closed
        let (clientEnd, serverEnd) = TunnelHandler.pair(idleTimeout: backend.runtime.tunnelTimeout) {
            server?.requestFinished()
        }
        do {
            let clientPipeline = context.pipeline.syncOperations
            let requestDecoder = try clientPipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try clientPipeline.addHandler(clientEnd, position: .last)
            try connection.insertTunnel(serverEnd)
            // This handler first, so the request decoder's held-back bytes reach the tunnel.
            clientPipeline.removeHandler(context: context, promise: nil)
            clientPipeline.removeHandler(requestDecoder, promise: nil)
            clientEnd.start()
        } catch {
            server?.requestFinished()
            connection.close()
            context.close(promise: nil)
        }
    }

    // MARK: Local responses and the end of an exchange

    /// Holds the request (reading nothing more from the client), then answers `status` (403)
    /// and closes.
    private func tarpit(for delay: TimeAmount, status: HTTPResponseStatus = .forbidden) {
        guard let context else { return }
        phase = .holding
        clientKeepAlive = false
        tarpitTimer = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            tarpitTimer = nil
            guard phase == .holding else { return }
            respondLocally(status: status, detail: "Too many requests, or not allowed.")
        }
    }

    // MARK: Shield

    /// What the shield made of a request.
    private enum ScreenOutcome {
        /// On to the rules.
        case pass
        /// Answered (limited, blocked, challenged, or the answer to a challenge).
        case answered
        /// Held until DNS says whether the crawler it claims to be is real; then screened on.
        case checkingCrawler
    }

    /// How long a request claiming to be a listed crawler waits for DNS; past it, the claim
    /// counts as unconfirmed for that request (the lookup goes on, and its answer is cached).
    static let crawlerCheckTimeout = TimeAmount.seconds(2)

    /// Rate limits, then the anti-bot shield.
    private func screen(_ head: HTTPRequestHead, shield: FrontendShield, router: Router) -> ScreenOutcome {
        if !shield.limits.isEmpty {
            let now = NIODeadline.now().uptimeNanoseconds
            for (limit, limiter) in zip(shield.limits, limiters.limits) where router.holds(limit.condition, head, client: client) {
                guard let key = limit.key(for: head, client: client),
                      case .limited(let retryAfter) = limiter.check(key: key, now: now) else { continue }
                noteShield("limited", reason: limit.config.name)
                switch limit.config.action {
                case .reject:
                    respondLocally(
                        status: .tooManyRequests,
                        detail: "Too many requests; try again in \(retryAfter) s.",
                        extraHeaders: [("retry-after", "\(retryAfter)")]
                    )
                case .deny:
                    respondLocally(status: .forbidden, detail: "This request is not allowed.")
                case .tarpit:
                    tarpit(for: TimeAmount(limit.config.tarpit), status: .tooManyRequests)
                }
                return .answered
            }
        }
        guard let antibot = shield.antibot, !antibot.allows(client) else { return .pass }
        let userAgent = head.headers.first(name: "user-agent") ?? ""
        // The answer to a challenge, whatever the shield's `if`/`unless` say of its path.
        if antibot.config.mode == .challenge, head.method == .GET, head.path == FrontendShield.verifyPath {
            answerChallenge(head, antibot: antibot, userAgent: userAgent)
            return .answered
        }
        guard router.holds(antibot.condition, head, client: client) else { return .pass }
        if antibot.config.mode == .challenge {
            let prefix = ClientPrefix(address: client.addressText)
            let wallClock = UInt64(max(0, Date().timeIntervalSince1970))
            for header in head.headers[canonicalForm: "cookie"] {
                if let value = ClearanceCookie.value(inCookieHeader: header),
                   antibot.cookie.verify(value, client: prefix, userAgent: userAgent, now: wallClock) == .valid {
                    return .pass
                }
            }
        }
        let claimed = antibot.crawlers(claimedBy: userAgent)
        guard !claimed.isEmpty, let address = client.addressBytes else {
            return screenBots(head, antibot: antibot, userAgent: userAgent, claimed: [], hostname: nil) ? .answered : .pass
        }
        switch loop.crawlerVerifier.cached(address) {
        case .confirmed(let hostname):
            return screenBots(head, antibot: antibot, userAgent: userAgent, claimed: claimed, hostname: hostname) ? .answered : .pass
        case .unconfirmed:
            return screenBots(head, antibot: antibot, userAgent: userAgent, claimed: claimed, hostname: nil) ? .answered : .pass
        case .unknown:
            checkCrawler(address)
            return .checkingCrawler
        }
    }

    /// Holds the request while the address is looked up, then screens it on and, if it
    /// passes, forwards it.
    private func checkCrawler(_ address: [UInt8]) {
        guard let context else { return }
        phase = .checkingCrawler
        attempt &+= 1
        let thisAttempt = attempt
        let timeout = context.eventLoop.assumeIsolated().scheduleTask(in: Self.crawlerCheckTimeout) { [self] in
            crawlerChecked(hostname: nil, attempt: thisAttempt)
        }
        loop.crawlerVerifier.lookUp(address, on: context.eventLoop).assumeIsolated().whenSuccess { [self] hostname in
            timeout.cancel()
            crawlerChecked(hostname: hostname, attempt: thisAttempt)
        }
    }

    private func crawlerChecked(hostname: String?, attempt thisAttempt: Int) {
        // Not when the client left or the request was answered meanwhile (a timeout, say).
        guard phase == .checkingCrawler, attempt == thisAttempt, let head = exchange.request,
              let frontend, let antibot = frontend.shield?.antibot else { return }
        phase = .idle
        let userAgent = head.headers.first(name: "user-agent") ?? ""
        let claimed = antibot.crawlers(claimedBy: userAgent)
        if !screenBots(head, antibot: antibot, userAgent: userAgent, claimed: claimed, hostname: hostname) {
            var scan = ForwardingHeaders.scanRequest(head.headers)
            scan.framing.isWebSocket = exchange.isWebSocketUpgrade
            forward(head, scan: scan, frontend: frontend)
        }
        resumeClientReads()
        servePipelined()
    }

    /// The heuristics, with what is known of the crawler the request claims to be (`claimed`,
    /// and the address's forward-confirmed `hostname`). True when the request was answered.
    private func screenBots(
        _ head: HTTPRequestHead,
        antibot: FrontendShield.Antibot,
        userAgent: String,
        claimed: [VerifiedBot],
        hostname: String?
    ) -> Bool {
        if let bot = FrontendShield.Antibot.crawler(in: claimed, confirmedBy: hostname) {
            noteShield("allowed", reason: bot.name)
            return false
        }
        var overRate = false
        if let limiter = limiters.antibot,
           case .limited = limiter.check(key: client.addressText, now: NIODeadline.now().uptimeNanoseconds) {
            overRate = true
        }
        let score = antibot.heuristics.evaluate(
            userAgent: head.headers.first(name: "user-agent"),
            headers: head.headers,
            httpVersionMajor: isHTTP2 ? 2 : Int(head.version.major),
            httpVersionMinor: isHTTP2 ? 0 : Int(head.version.minor),
            overRate: overRate,
            unverifiedCrawler: !claimed.isEmpty
        )
        guard score.total >= antibot.config.threshold else { return false }
        let reason = score.reasons.isEmpty ? "every-client" : score.reasons.joined(separator: "+")
        switch antibot.config.mode {
        case .off:
            return false
        case .monitor:
            noteShield("flagged", reason: reason)
            loop.logger.info(
                "antibot: suspicious request (score \(score.total)): \(reason)",
                metadata: ["frontend": "\(frontendName)", "client": "\(client.addressText)", "uri": "\(head.uri)"]
            )
            return false
        case .block:
            noteShield("blocked", reason: reason)
            respondLocally(status: .forbidden, detail: "This request looks automated and is not allowed.")
            return true
        case .challenge:
            noteShield("challenged", reason: reason)
            var random = SystemRandomNumberGenerator()
            let challenge = antibot.proofOfWork.issue(
                client: ClientPrefix(address: client.addressText),
                userAgent: userAgent,
                now: UInt64(max(0, Date().timeIntervalSince1970)),
                difficulty: antibot.config.difficulty,
                using: &random
            )
            let page = ChallengePage.html(
                challenge: challenge.value,
                difficulty: challenge.difficulty,
                verifyPath: FrontendShield.verifyPath,
                returnTo: ChallengePage.safeReturnPath(head.uri)
            )
            respondWithPage(status: .forbidden, html: page, extraHeaders: [
                ("content-security-policy", ChallengePage.contentSecurityPolicy),
                ("cache-control", "no-store"),
            ])
            return true
        }
    }

    /// `GET /.fulcrum/verify?challenge=…&solution=…&return_to=…`: a valid answer gets the
    /// clearance cookie and a redirect back; anything else, 403.
    private func answerChallenge(_ head: HTTPRequestHead, antibot: FrontendShield.Antibot, userAgent: String) {
        let prefix = ClientPrefix(address: client.addressText)
        let now = UInt64(max(0, Date().timeIntervalSince1970))
        let query = head.uri.firstIndex(of: "?").map { head.uri[head.uri.index(after: $0)...] } ?? ""
        var fields: [Substring: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { continue }
            let value = String(parts[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            fields[parts[0]] = value
        }
        let verdict = antibot.proofOfWork.check(
            challenge: Substring(fields["challenge"] ?? ""),
            solution: Substring(fields["solution"] ?? ""),
            client: prefix,
            userAgent: userAgent,
            now: now
        )
        guard verdict == .valid else {
            noteShield("refused", reason: "\(verdict)")
            respondLocally(status: .forbidden, detail: "The check did not pass; reload the page to try again.")
            return
        }
        noteShield("passed", reason: "proof_of_work")
        let cookie = antibot.cookie.issue(client: prefix, userAgent: userAgent, now: now, ttl: antibot.cookieTTLSeconds)
        let location = ChallengePage.safeReturnPath(fields["return_to"] ?? "/")
        respondLocally(status: .seeOther, detail: "Checked: \(location)", extraHeaders: [
            ("location", location),
            ("set-cookie", ClearanceCookie.setCookieHeader(value: cookie, ttl: antibot.cookieTTLSeconds, secure: client.isSecure)),
            ("cache-control", "no-store"),
        ])
    }

    private func noteShield(_ decision: String, reason: String) {
        exchange.shield = "\(decision):\(reason)"
        loop.traffic.shieldDecision(ShieldDecision(frontend: frontendName, decision: decision, reason: reason))
    }

    /// A redirect rule's target with `{host}`, `{path}`, `{query}` and `{uri}` filled in.
    static func redirectLocation(_ template: String, head: HTTPRequestHead) -> String {
        guard template.contains("{") else { return template }
        let uri = head.uri.hasPrefix("/") ? head.uri : "/"
        let queryStart = uri.firstIndex(of: "?")
        let path = queryStart.map { String(uri[..<$0]) } ?? uri
        let query = queryStart.map { String(uri[$0...]) } ?? ""
        let host = redirectHost(head) ?? ""
        return template
            .replacingOccurrences(of: "{uri}", with: uri)
            .replacingOccurrences(of: "{path}", with: path)
            .replacingOccurrences(of: "{query}", with: query)
            .replacingOccurrences(of: "{host}", with: host)
    }

    /// The Host header without its port (IPv6 literals kept: "[::1]:8080" → "[::1]"), or nil
    /// when it is missing or holds anything that could break out of a URL's authority.
    static func redirectHost(_ head: HTTPRequestHead) -> String? {
        var host = head.headers.first(name: "host") ?? ""
        if let colon = host.lastIndex(of: ":"), !host[colon...].contains("]") {
            host = String(host[..<colon])
        }
        guard !host.isEmpty, !host.contains(where: { "/@?#".contains($0) || $0.isWhitespace }) else { return nil }
        return host
    }

    /// `redirect_to_https`: a 308 to the same host and path on the HTTPS port (the method and
    /// body are kept by the client, unlike with 301).
    private func redirectToHTTPS(_ head: HTTPRequestHead, port: Int) {
        guard let host = Self.redirectHost(head) else {
            clientKeepAlive = false
            respondLocally(status: .badRequest, detail: "This site is served over HTTPS; the request has no usable Host header.")
            return
        }
        let authority = port == 443 ? host : "\(host):\(port)"
        let path = head.uri.hasPrefix("/") ? head.uri : "/"
        let location = "https://\(authority)\(path)"
        respondLocally(
            status: .permanentRedirect,
            detail: "This site is served over HTTPS: \(location)",
            extraHeaders: [("location", location)]
        )
    }

    /// Answers the current request with an error page (deny, 5xx from the proxy, parse errors).
    private func respondLocally(status: HTTPResponseStatus, detail: String, extraHeaders: [(String, String)] = []) {
        guard let context = beginLocalResponse(status: status) else { return }
        let pages = frontend?.errorPages ?? ErrorPages.builtIn
        var (head, body) = pages.response(
            status: status,
            detail: detail,
            request: exchange.request,
            allocator: context.channel.allocator
        )
        head.headers.add(contentsOf: extraHeaders)
        sendLocalResponse(head, body: &body, context: context)
    }

    /// Answers the current request with a page of Fulcrum's own (the shield's challenge).
    private func respondWithPage(status: HTTPResponseStatus, html: String, extraHeaders: [(String, String)]) {
        guard let context = beginLocalResponse(status: status) else { return }
        var body = context.channel.allocator.buffer(string: html)
        var head = HTTPResponseHead(version: .http1_1, status: status)
        head.headers.add(name: "content-type", value: "text/html; charset=utf-8")
        head.headers.add(name: "content-length", value: "\(body.readableBytes)")
        head.headers.add(contentsOf: extraHeaders)
        sendLocalResponse(head, body: &body, context: context)
    }

    /// Starts answering the current request from here; nil when that cannot be done (the
    /// connection is closing; or a response had started, and the connection is closed).
    private func beginLocalResponse(status: HTTPResponseStatus) -> ChannelHandlerContext? {
        guard let context, phase != .closed else { return nil }
        if exchange.responseStarted {
            closeClient()
            return nil
        }
        exchange.responseStarted = true
        exchange.responseStatus = status.code
        phase = .idle
        if exchange.requestHasBody, !exchange.requestEnded {
            // The unread rest of the request body cannot be told apart from a next request.
            clientKeepAlive = false
        }
        return context
    }

    /// Writes a response Fulcrum made itself (head with its framing, and its whole body).
    private func sendLocalResponse(_ head: HTTPResponseHead, body: inout ByteBuffer, context: ChannelHandlerContext) {
        var head = head
        exchange.responseBytes = body.readableBytes
        if isHTTP2 {
            writeHTTP2(.head(head), context: context)
            if exchange.request?.method != .HEAD {
                writeHTTP2(.body(.byteBuffer(body)), context: context)
            }
            finishResponse(nil, context: context)
            return
        }
        if !clientKeepAlive {
            head.headers.add(name: "connection", value: "close")
        }
        prepareOutput()
        ForwardingHeaders.writeLocalResponseHead(head, into: &output)
        if exchange.request?.method != .HEAD {
            output.writeBuffer(&body)
        }
        finishResponse(nil, context: context)
    }

    private func finishResponse(_ trailers: HTTPHeaders?, context: ChannelHandlerContext) {
        if isHTTP2 {
            finishHTTP2Response(trailers, context: context)
            return
        }
        if exchange.responseChunked {
            prepareOutput()
            output.writeLastChunk(trailers: trailers)
        }
        phase = .idle
        exchangeEnded()
        exchange = Exchange()
        // Idle timer from now on: it also bounds a client that never reads the response.
        connectionGuard?.responseCompleted()
        if clientKeepAlive {
            sendOutput(context: context)
            flushClientSoon()
            servePipelined()
            resumeClientReads()
        } else {
            phase = .closed
            pipelined.removeAll()
            let written = context.eventLoop.makePromise(of: Void.self)
            clientFlushPending = false
            if output.readableBytes > 0 {
                context.writeAndFlush(wrapOutboundOut(output), promise: written)
                output.moveReaderIndex(to: output.writerIndex)
            } else {
                context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: written)
            }
            written.futureResult.assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }

    /// Makes `output` ready for more bytes, reusing its storage when the channel is done with
    /// what was last sent from it.
    private func prepareOutput() {
        if output.readableBytes == 0 { output.clear() }
    }

    /// Hands the gathered response bytes to the channel (the caller flushes).
    private func sendOutput(context: ChannelHandlerContext) {
        guard output.readableBytes > 0 else { return }
        context.write(wrapOutboundOut(output), promise: nil)
        clientFlushPending = true
        // Not `clear()`: the channel still holds these bytes, so that would allocate now;
        // `prepareOutput()` reuses the storage once the write is done.
        output.moveReaderIndex(to: output.writerIndex)
    }

    /// Flushes the client channel now if something was written since the last flush.
    private func flushClient(context: ChannelHandlerContext) {
        if clientFlushPending {
            clientFlushPending = false
            context.flush()
        }
    }

    /// Flushes the client channel once the loop has handled its current I/O events
    /// (`DeferredFlushes`), so responses that the servers' replies in one pass completed go out
    /// in a row. (HTTP/1.1 only: HTTP/2 streams still flush at once.)
    private func flushClientSoon() {
        if clientFlushPending {
            loop.flushes.flushSoon(self)
        }
    }

    func flushDeferred() {
        if let context {
            flushClient(context: context)
        }
    }

    /// Serves queued pipelined requests, in order, until one of them is waiting for a server.
    private func servePipelined() {
        while !pipelined.isEmpty, phase != .closed {
            if case .part(.head) = pipelined[0], phase != .idle { return }
            switch pipelined.removeFirst() {
            case .part(let part): deliver(part)
            case .error(let error): handleError(error)
            }
        }
    }

    /// The client went away or the exchange cannot continue: give back what it holds.
    private func abandonExchange() {
        attempt &+= 1
        stopCounting()
        if let connection {
            self.connection = nil
            connection.sink = nil
            connection.close()
        }
        if phase != .closed { phase = .idle }
        exchange.bodyParts.removeAll()
    }

    private func closeClient() {
        abandonExchange()
        phase = .closed
        guard let context else { return }
        // What was written goes out before the close (a flush may be waiting in `DeferredFlushes`).
        flushClient(context: context)
        context.close(promise: nil)
    }

    /// The 408 page the connection guard sends when a request head did not arrive within
    /// `header_read`; the connection closes after it.
    func headerTimeoutResponse(allocator: ByteBufferAllocator) -> ByteBuffer {
        phase = .closed
        return (frontend?.errorPages ?? ErrorPages.builtIn).serializedResponse(
            status: .requestTimeout,
            detail: "The request headers did not arrive in time.",
            allocator: allocator
        )
    }

    // MARK: HTTP/2 streams

    /// The server's response head, for an HTTP/2 client: its connection-specific headers
    /// (Connection and what it names, Keep-Alive, Transfer-Encoding, Upgrade) are dropped by
    /// the codec's normalization, and the body needs no re-framing (DATA frames end with the
    /// stream).
    private func http2ResponseHead(_ head: HTTPResponseHead, from connection: BackendConnection, context: ChannelHandlerContext) {
        let code = head.status.code
        if code < 200 {
            // Interim responses (100 Continue, 103 Early Hints) pass through; a 101 cannot
            // happen (no upgrade is forwarded from HTTP/2), so it is a protocol error.
            if code == 101 {
                connection.close()
            } else {
                writeHTTP2(.head(head), context: context)
                flushClient(context: context)
            }
            return
        }
        acceptFinalResponse(head, from: connection)
        writeHTTP2(.head(head), context: context)
    }

    /// Ends the stream's response (with the server's trailers, if any: HTTP/2 carries them).
    private func finishHTTP2Response(_ trailers: HTTPHeaders?, context: ChannelHandlerContext) {
        writeHTTP2(.end(trailers), context: context)
        flushClient(context: context)
        phase = clientKeepAlive ? .idle : .closed
        exchangeEnded()
        exchange = Exchange()
        if !clientKeepAlive {
            // The request body was not read to its end: reset the stream (RST_STREAM), which
            // tells the client to stop sending it.
            context.close(promise: nil)
        }
    }

    /// Writes a response part to the stream channel, whose codec turns it into frames.
    private func writeHTTP2(_ part: HTTPServerResponsePart, context: ChannelHandlerContext) {
        context.write(NIOAny(part), promise: nil)
        clientFlushPending = true
    }

    // MARK: Metrics and access log

    /// Counts the exchange that just ended in the loop's traffic counters, and logs it.
    private func exchangeEnded() {
        let duration = NIODeadline.now().uptimeNanoseconds &- exchange.start.uptimeNanoseconds
        let backend = exchange.backend
        let server = backend.flatMap { backend in
            backend.runtime.servers.indices.contains(exchange.serverIndex) ? backend.runtime.servers[exchange.serverIndex].name : nil
        }
        loop.traffic.record(
            TrafficCounters.Key(frontend: frontendName, backend: backend?.runtime.name ?? "", server: server ?? ""),
            status: exchange.responseStatus,
            bytesIn: exchange.requestBodyBytes,
            bytesOut: exchange.responseBytes,
            nanoseconds: Int64(duration)
        )
        guard let accessLog = loop.accessLog else { return }
        accessLog.append(AccessLogEntry(
            client: client.addressText,
            frontend: frontendName,
            backend: backend?.runtime.name,
            server: server,
            request: exchange.request,
            protocolVersion: clientVersion,
            status: exchange.responseStatus,
            bytesIn: exchange.requestBodyBytes,
            bytesOut: exchange.responseBytes,
            durationNanoseconds: Int64(duration),
            upstreamNanoseconds: exchange.upstreamNanoseconds,
            shield: exchange.shield
        ))
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
