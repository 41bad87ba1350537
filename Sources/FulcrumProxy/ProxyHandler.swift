import FulcrumBalancing
import NIOCore
import NIOHTTP1

/// The client side of the proxy: the last handler of a frontend connection.
///
/// For each request it routes (ACLs and rules), picks a server with the backend's algorithm,
/// takes a keep-alive connection from this loop's pool (or opens one), and then streams the
/// request to the server and the response back, part by part, with backpressure both ways.
/// HTTP/1.1 is sequential per connection, so at most one exchange is active, and its state
/// lives in this handler rather than in a per-request object. Pipelined requests that arrive
/// while one is being answered are queued here (and reading pauses until they are served);
/// NIO's `HTTPServerPipelineHandler` would do the same but pauses reading after *every*
/// request, which costs two `epoll_ctl` calls per request for the common, non-pipelined client.
final class ProxyHandler: ChannelDuplexHandler, BackendResponseSink {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum Phase {
        /// Waiting for a request head (or discarding the rest of an answered request's body).
        case idle
        /// A server was chosen; waiting for a connection to it.
        case connecting
        /// Connected: streaming the request and the response.
        case forwarding
        /// The connection is closing; nothing more is sent.
        case closed
    }

    /// The longest request body kept for a retry on another server.
    private static let retainedBodyLimit = 64 * 1024

    private let loop: LoopContext
    private let frontendName: String
    private let connectionGuard: ClientConnectionGuard
    private var context: ChannelHandlerContext?
    private var client = ClientInfo(peer: nil, isSecure: false)

    /// The snapshot and frontend the current request started with.
    private var snapshot: RuntimeSnapshot
    private var frontend: RuntimeFrontend

    // State of the current exchange.
    private var phase = Phase.idle
    private var request: HTTPRequestHead?
    private var clientVersion = HTTPVersion.http1_1
    private var clientKeepAlive = true
    /// Set by a graceful shutdown: finish the current request, then close.
    private var quiescing = false
    /// Requests (and parse errors) that arrived while an earlier request was still being answered.
    private var pipelined: [PipelinedEvent] = []
    /// HTTP/1.0 (or 0.9) clients know neither chunked encoding nor interim responses.
    private var clientIsHTTP10: Bool { clientVersion.major < 1 || clientVersion.major == 1 && clientVersion.minor == 0 }
    private var backend: LoopBackend?
    private var serverIndex = -1
    private var connection: BackendConnection?
    private var tried = ServerIndexSet()
    private var retriesLeft = 0
    private var reconnectedStale = false
    /// Identifies the current connection attempt, so a late connect result can be recognised.
    private var attempt = 0
    /// Body parts received but not yet sent (while connecting), or sent and kept for a retry.
    private var bodyParts: [ByteBuffer] = []
    private var bodyPartsSent = 0
    private var bodyRetained = true
    private var retainedBytes = 0
    private var requestBodyBytes = 0
    private var requestEnded = false
    private var requestTrailers: HTTPHeaders?
    private var responseStarted = false
    private var responseStatus: UInt = 0
    private var responseBytes = 0
    private var backendFlushPending = false
    private var readPending = false
    private var exchangeStart = NIODeadline.uptimeNanoseconds(0)
    private var upstreamStart = NIODeadline.uptimeNanoseconds(0)
    private var upstreamNanoseconds: Int64 = -1

    init(loop: LoopContext, frontendName: String, connectionGuard: ClientConnectionGuard) {
        self.loop = loop
        self.frontendName = frontendName
        self.connectionGuard = connectionGuard
        self.snapshot = loop.snapshot
        self.frontend = loop.snapshot.frontends.first { $0.name == frontendName }!
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The peer address is read once per connection: per request it would be a syscall.
        client = ClientInfo(peer: context.channel.remoteAddress, isSecure: false)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    private enum PipelinedEvent {
        case part(HTTPServerRequestPart)
        case error(HTTPParserError)
    }

    // MARK: Client → proxy

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inClientRead = true
        let part = unwrapInboundIn(data)
        if !pipelined.isEmpty {
            pipelined.append(.part(part))
            return
        }
        if case .head = part, phase == .connecting || phase == .forwarding {
            // A pipelined request: it waits for the current response.
            pipelined.append(.part(part))
            return
        }
        deliver(part, context: context)
    }

    private func deliver(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            receivedHead(head, context: context)
        case .body(let body):
            receivedBody(body, context: context)
        case .end(let trailers):
            receivedEnd(trailers)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inClientRead = false
        if backendFlushPending, let connection {
            backendFlushPending = false
            connection.flush()
        }
        context.fireChannelReadComplete()
    }

    /// Holds reads while no server connection can take more bytes: while connecting (so the
    /// body buffered meanwhile stays small) and while the server connection is not writable.
    func read(context: ChannelHandlerContext) {
        if !pipelined.isEmpty {
            readPending = true
            return
        }
        switch phase {
        case .connecting:
            readPending = true
        case .forwarding where !(connection?.isWritable ?? true):
            readPending = true
        default:
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
        phase = .closed
        abandonExchange()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            quiescing = true
            clientKeepAlive = false
            if phase == .idle, pipelined.isEmpty {
                phase = .closed
                context.close(promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let parserError = error as? HTTPParserError,
           !pipelined.isEmpty || requestEnded && (phase == .connecting || phase == .forwarding) {
            // The error is in a pipelined request: answer it in turn.
            pipelined.append(.error(parserError))
            return
        }
        handleError(error)
    }

    private func handleError(_ error: Error) {
        if let parserError = error as? HTTPParserError {
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
            if responseStarted || phase == .forwarding && connection != nil {
                closeClient()
            } else {
                abandonExchange()
                respondLocally(status: status, detail: detail)
            }
        } else {
            closeClient()
        }
    }

    // MARK: Request handling

    private func receivedHead(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        guard phase == .idle else { return }
        connectionGuard.requestHeadReceived()
        exchangeStart = .now()
        if loop.snapshot !== snapshot {
            snapshot = loop.snapshot
            if let current = snapshot.frontends.first(where: { $0.name == frontendName }) { frontend = current }
        }
        clientVersion = head.version
        clientKeepAlive = head.isKeepAlive && !quiescing
        requestEnded = false
        requestTrailers = nil
        requestBodyBytes = 0
        responseStarted = false
        responseStatus = 0
        responseBytes = 0
        upstreamNanoseconds = -1
        tried = ServerIndexSet()
        reconnectedStale = false
        bodyParts.removeAll(keepingCapacity: true)
        bodyPartsSent = 0
        bodyRetained = true
        retainedBytes = 0

        var forwarded = head
        let framing = ForwardingHeaders.prepareRequest(&forwarded, client: client)
        request = forwarded

        if let limit = frontend.maxBodyBytes, framing.hasContentLength,
           let length = forwarded.headers.first(name: "content-length").flatMap(Int.init), length > limit {
            respondLocally(status: .payloadTooLarge, detail: "The request body is larger than this server accepts.")
            return
        }

        switch frontend.router.route(head, client: client) {
        case .backend(let index)?:
            let backend = loop.backends[index]
            self.backend = backend
            retriesLeft = backend.runtime.retries
            startAttempt()
        case .deny(let status)?:
            respondLocally(
                status: HTTPResponseStatus(statusCode: status),
                detail: "This request is not allowed."
            )
        case nil:
            respondLocally(status: .serviceUnavailable, detail: "No backend is configured for this request.")
        }
    }

    private func receivedBody(_ body: ByteBuffer, context: ChannelHandlerContext) {
        requestBodyBytes += body.readableBytes
        if let limit = frontend.maxBodyBytes, requestBodyBytes > limit {
            clientKeepAlive = false
            if responseStarted || phase == .idle {
                closeClient()
            } else {
                abandonExchange()
                respondLocally(status: .payloadTooLarge, detail: "The request body is larger than this server accepts.")
            }
            return
        }
        switch phase {
        case .connecting:
            bodyParts.append(body)
            retainedBytes += body.readableBytes
        case .forwarding:
            connection?.write(.body(.byteBuffer(body)))
            backendFlushPending = true
            retain(body)
        case .idle, .closed:
            break  // the rest of a request that was already answered
        }
    }

    private func receivedEnd(_ trailers: HTTPHeaders?) {
        switch phase {
        case .connecting:
            requestEnded = true
            requestTrailers = trailers
        case .forwarding:
            requestEnded = true
            requestTrailers = trailers
            connection?.write(.end(trailers))
            backendFlushPending = true
        case .idle, .closed:
            requestEnded = true
        }
    }

    /// Keeps a sent body part for a retry while the whole body so far fits the limit.
    private func retain(_ body: ByteBuffer) {
        guard bodyRetained else { return }
        retainedBytes += body.readableBytes
        if retainedBytes > Self.retainedBodyLimit {
            bodyRetained = false
            bodyParts.removeAll()
        } else {
            bodyParts.append(body)
            bodyPartsSent = bodyParts.count
        }
    }

    // MARK: Choosing a server and connecting

    /// True while a client read is being handled (its `channelReadComplete` will follow).
    private var inClientRead = false

    private func startAttempt(sameServer: Bool = false) {
        guard let backend else { return }
        let index: Int
        if sameServer {
            index = serverIndex
        } else {
            guard let picked = backend.algorithm.pick(from: backend.runtime.servers, excluding: tried) else {
                respondLocally(status: .serviceUnavailable, detail: "No server is available to handle this request.")
                return
            }
            index = picked
        }
        tried.insert(index)
        serverIndex = index
        backend.runtime.servers[index].requestStarted()
        upstreamStart = .now()
        let pool = backend.pools[index]
        if !sameServer, let idle = pool.takeIdle() {
            attach(idle, flushNow: !inClientRead)
            return
        }
        phase = .connecting
        attempt &+= 1
        let thisAttempt = attempt
        pool.connect().assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let connection):
                guard phase == .connecting, attempt == thisAttempt else {
                    // The client went away or was answered meanwhile; keep the connection.
                    pool.release(connection)
                    return
                }
                attach(connection, flushNow: true)
            case .failure(let error):
                guard phase == .connecting, attempt == thisAttempt else { return }
                backend.runtime.servers[index].requestFinished()
                connectFailed(error)
            }
        }
    }

    private func connectFailed(_ error: Error) {
        guard let backend else { return }
        if retriesLeft > 0, tried.count < backend.runtime.servers.count {
            retriesLeft -= 1
            startAttempt()
        } else {
            let server = backend.runtime.servers[serverIndex].name
            respondLocally(
                status: .serviceUnavailable,
                detail: "No server could be reached (last tried \(server): \(Self.describe(error)))."
            )
        }
    }

    /// Sends the request so far on `connection`. `flushNow` is false when called while handling a
    /// client read: `channelReadComplete` flushes then, together with any body in the same read.
    private func attach(_ connection: BackendConnection, flushNow: Bool) {
        guard let request, let backend else { return }
        self.connection = connection
        phase = .forwarding
        connection.begin(sink: self, responseTimeout: backend.runtime.responseTimeout)
        connection.write(.head(request))
        for part in bodyParts {
            connection.write(.body(.byteBuffer(part)))
        }
        bodyPartsSent = bodyParts.count
        if requestEnded {
            connection.write(.end(requestTrailers))
        }
        if flushNow {
            connection.flush()
            backendFlushPending = false
        } else {
            backendFlushPending = true
        }
        resumeClientReads()
    }

    private func resumeClientReads() {
        if readPending, let context {
            readPending = false
            context.read()
        }
    }

    // MARK: Server → client (BackendResponseSink)

    func backendResponseHead(_ head: HTTPResponseHead, from connection: BackendConnection) {
        guard let context else { return }
        var head = head
        let code = head.status.code
        if code < 200 {
            if code != 101, !clientIsHTTP10 {
                // Interim responses (100 Continue, 103 Early Hints) pass through.
                responseStarted = true
                context.writeAndFlush(wrapOutboundOut(.head(head)), promise: nil)
                return
            }
            if code != 101 { return }
            // No upgrade was requested (Upgrade is stripped), so a 101 is a protocol error.
            connection.close()
            return
        }
        responseStarted = true
        responseStatus = code
        upstreamNanoseconds = Int64(NIODeadline.now().uptimeNanoseconds &- upstreamStart.uptimeNanoseconds)
        bodyParts.removeAll()
        bodyRetained = false
        if !head.isKeepAlive { connection.isReusable = false }
        let framing = ForwardingHeaders.prepareResponse(&head)
        let bodyless = request?.method == .HEAD || code == 204 || code == 304
        if bodyless {
            // The encoder would otherwise terminate a chunked body that is never sent.
            if framing.isChunked { head.headers.remove(name: "transfer-encoding") }
        } else if clientIsHTTP10 {
            // HTTP/1.0 has no chunked encoding: send the body as is and end it by closing.
            if framing.isChunked {
                head.headers.remove(name: "transfer-encoding")
                clientKeepAlive = false
            } else if !framing.hasContentLength {
                clientKeepAlive = false
            }
        } else if !framing.hasContentLength, !framing.isChunked {
            // The server ends this body by closing; re-frame it so the client connection survives.
            head.headers.add(name: "transfer-encoding", value: "chunked")
        }
        head.version = .http1_1
        if !clientKeepAlive {
            head.headers.add(name: "connection", value: "close")
        } else if clientIsHTTP10 {
            head.headers.add(name: "connection", value: "keep-alive")
        }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
    }

    func backendResponseBody(_ body: ByteBuffer) {
        responseBytes += body.readableBytes
        context?.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
    }

    func backendResponseEnd(_ trailers: HTTPHeaders?, from connection: BackendConnection) {
        guard let context, let backend else { return }
        if !requestEnded {
            // The server answered before the whole request arrived: the rest of the request
            // cannot be sent on this connection, nor told apart from a next request.
            connection.isReusable = false
            clientKeepAlive = false
        }
        self.connection = nil
        connection.sink = nil
        backend.runtime.servers[serverIndex].requestFinished()
        backend.pools[serverIndex].release(connection)
        finishResponse(trailers, context: context)
    }

    func backendReadComplete() {
        guard let context else { return }
        context.flush()
        if !context.channel.isWritable {
            connection?.pauseReads()
        }
    }

    func backendWritabilityChanged(isWritable: Bool) {
        if isWritable { resumeClientReads() }
    }

    func backendFailed(_ failure: BackendFailure, connection: BackendConnection) {
        guard connection === self.connection, let backend else { return }
        self.connection = nil
        backend.runtime.servers[serverIndex].requestFinished()
        if responseStarted {
            // Part of the response is already with the client: all we can do is stop.
            closeClient()
            return
        }
        switch failure {
        case .responseTimeout:
            respondLocally(status: .gatewayTimeout, detail: "The server did not answer in time.")
        case .connectionClosed:
            let replayable = (request?.method.isIdempotent ?? false) && bodyRetained
            if replayable, connection.requestsSent > 1, !reconnectedStale {
                // A pooled connection the server had already closed: the same server on a fresh
                // connection (HAProxy and nginx do the same for idempotent requests).
                reconnectedStale = true
                startAttempt(sameServer: true)
            } else if replayable, retriesLeft > 0, tried.count < backend.runtime.servers.count {
                retriesLeft -= 1
                startAttempt()
            } else {
                respondLocally(status: .badGateway, detail: "The server closed the connection without a response.")
            }
        }
    }

    // MARK: Local responses and the end of an exchange

    /// Answers the current request with an error page (deny, 5xx from the proxy, parse errors).
    private func respondLocally(status: HTTPResponseStatus, detail: String) {
        guard let context, phase != .closed else { return }
        if responseStarted {
            closeClient()
            return
        }
        responseStarted = true
        responseStatus = status.code
        phase = .idle
        if !requestEnded {
            // The unread rest of the request body cannot be told apart from a next request.
            clientKeepAlive = false
        }
        var (head, body) = frontend.errorPages.response(
            status: status,
            detail: detail,
            request: request,
            allocator: context.channel.allocator
        )
        if !clientKeepAlive {
            head.headers.add(name: "connection", value: "close")
        }
        responseBytes = body.readableBytes
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if request?.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        finishResponse(nil, context: context)
    }

    private func finishResponse(_ trailers: HTTPHeaders?, context: ChannelHandlerContext) {
        phase = .idle
        logAccess()
        request = nil
        backend = nil
        bodyParts.removeAll()
        if clientKeepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
            connectionGuard.responseCompleted()
            servePipelined(context: context)
            resumeClientReads()
        } else {
            phase = .closed
            context.writeAndFlush(wrapOutboundOut(.end(trailers))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }

    /// Serves queued pipelined requests, in order, until one of them is waiting for a server.
    private func servePipelined(context: ChannelHandlerContext) {
        while !pipelined.isEmpty, phase != .closed {
            if case .part(.head) = pipelined[0], phase != .idle { return }
            switch pipelined.removeFirst() {
            case .part(let part):
                deliver(part, context: context)
            case .error(let error):
                handleError(error)
            }
        }
    }

    /// The client went away or the exchange cannot continue: give back what it holds.
    private func abandonExchange() {
        attempt &+= 1
        if let connection, let backend {
            self.connection = nil
            connection.sink = nil
            connection.close()
            backend.runtime.servers[serverIndex].requestFinished()
        } else if phase == .connecting, let backend {
            backend.runtime.servers[serverIndex].requestFinished()
        }
        if phase != .closed { phase = .idle }
        bodyParts.removeAll()
    }

    private func closeClient() {
        abandonExchange()
        phase = .closed
        context?.close(promise: nil)
    }

    /// The 408 page the connection guard sends when a request head did not arrive within
    /// `header_read`; the connection closes after it.
    func headerTimeoutResponse(allocator: ByteBufferAllocator) -> ByteBuffer {
        phase = .closed
        responseStatus = HTTPResponseStatus.requestTimeout.code
        return frontend.errorPages.serializedResponse(
            status: .requestTimeout,
            detail: "The request headers did not arrive in time.",
            allocator: allocator
        )
    }

    // MARK: Access log

    private func logAccess() {
        guard let accessLog = loop.accessLog else { return }
        let duration = NIODeadline.now().uptimeNanoseconds &- exchangeStart.uptimeNanoseconds
        let serverName = serverIndex >= 0 && backend.map { serverIndex < $0.runtime.servers.count } == true
            ? backend!.runtime.servers[serverIndex].name : nil
        accessLog.append(AccessLogEntry(
            client: client.addressText,
            frontend: frontendName,
            backend: backend?.runtime.name,
            server: serverName,
            request: request,
            protocolVersion: clientVersion,
            status: responseStatus,
            bytesIn: requestBodyBytes,
            bytesOut: responseBytes,
            durationNanoseconds: Int64(duration),
            upstreamNanoseconds: upstreamNanoseconds
        ), format: snapshot.config.global.log.access)
    }

    private static func describe(_ error: Error) -> String {
        if error is ChannelError, case ChannelError.connectTimeout = error as! ChannelError {
            return "connect timeout"
        }
        if let ioError = error as? IOError {
            return ioError.description
        }
        return "\(error)"
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
