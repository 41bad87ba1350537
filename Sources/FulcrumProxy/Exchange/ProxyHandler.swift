import FulcrumBalancing
import NIOCore
import NIOHTTP1

/// The client side of the proxy: the last handler of a frontend connection (HTTP/1.1), or one
/// HTTP/2 stream's exchange, which `HTTP2StreamsHandler` drives on its connection's context.
///
/// It decides nothing itself. `ExchangeStateMachine` decides what each event means;
/// `RequestAdmission` and `ShieldScreener` decide what becomes of a request; the handler feeds
/// them events and carries out what they return (`run`): it picks servers with the backend's
/// algorithm, takes connections from this loop's pools, writes requests to servers, and writes
/// responses to the client through its writer (HTTP/1.x bytes or HTTP/2 stream parts).
///
/// Its stored state is internal rather than private because its extensions in
/// `ProxyHandler+Admission.swift` and `ProxyHandler+Upstream.swift` share it.
final class ProxyHandler: ChannelDuplexHandler, RemovableChannelHandler, BackendResponseSink,
    DeferredFlushTarget, HeaderTimeoutResponder
{
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let loop: LoopContext
    var frontendName: String
    /// HTTP/1.x only: the connection's timeouts.
    let connectionGuard: ClientConnectionGuard?
    /// The frontend's `client_idle`: also how long the client may take no response byte.
    let clientIdle: TimeAmount
    /// The connection came over TLS (`X-Forwarded-Proto: https`).
    let isSecure: Bool
    var context: ChannelHandlerContext?
    /// The client connection's address, read once per connection (an HTTP/2 connection's
    /// streams share it): per request it would be a syscall, and formatting it costs.
    let peer: ClientInfo
    /// The current request's client: the peer, or whom a trusted proxy named
    /// (`ForwardingPolicy`). ACLs, the shield, hashing and the access log see it.
    var client: ClientInfo
    /// `client` came from a forwarding policy (so it may not be `peer`).
    var clientMayBeNamed = false

    /// The snapshot and frontend the current request started with (`nil` frontend: it was
    /// removed by a reload; requests then get 503), and the frontend's shield on this loop.
    var snapshot: RuntimeSnapshot
    var frontend: RuntimeFrontend?
    var screener: ShieldScreener?

    var machine: ExchangeStateMachine
    let writer: any ClientResponseWriter
    var record = ExchangeRecord()

    /// The current exchange's backend, its server and connection, and the server whose
    /// in-flight count it holds (cleared when given back, so the count can be neither leaked
    /// nor decremented twice).
    var backend: LoopBackend?
    var serverIndex: Int?
    var connection: (any UpstreamConnection)?
    var countedServer: BalancedServer?
    /// The request body was chunked: the decoder de-chunked it, so it is chunked again.
    var requestChunked = false
    /// The current request's head as the server receives it, serialized once (and re-sent
    /// as is on a retry). Kept across requests so its storage is reused.
    var forwardedHead = ByteBuffer()
    /// A gRPC call's deadline (`grpc-timeout`), which caps the backend's response timeout.
    var callTimeout: TimeAmount?
    /// The request's key for `algorithm: hash` (nil: another algorithm, or no key).
    var requestHashKey: UInt64?
    /// The server the request's sticky cookie names (nil: no cookie, or no `sticky`).
    var stickyServer: Int?
    var readPending = false
    var tarpitTimer: Scheduled<Void>?
    /// While the request waits in its backend's queue: its timeout, and when its wait ends.
    var queueTimer: Scheduled<Void>?
    var queueDeadline: NIODeadline?
    var queueEnteredAt: NIODeadline?
    /// The exchange was just woken from the queue: it picks now, ahead of those still waiting.
    var isDequeued = false
    /// The forward-confirmed name of the client's address, once its crawler check is done.
    var crawlerHostname: String?
    /// The store's answer about a shared rate limit, for the screen that goes on from it.
    var sharedLimitAnswer: ShieldScreener.SharedLimitAnswer?
    var isFlushQueued = false

    init(
        loop: LoopContext,
        frontendName: String,
        isSecure: Bool,
        writer: any ClientResponseWriter,
        connectionGuard: ClientConnectionGuard?,
        clientIdle: TimeAmount,
        client: ClientInfo
    ) {
        self.peer = client
        self.client = client
        self.loop = loop
        self.clientIdle = clientIdle
        self.isSecure = isSecure
        self.frontendName = frontendName
        self.connectionGuard = connectionGuard
        self.snapshot = loop.snapshot
        self.writer = writer
        self.machine = ExchangeStateMachine(channel: writer.clientChannel)
        selectFrontend()
    }

    func selectFrontend() {
        frontend = snapshot.frontends.first { $0.name == frontendName }
        screener = frontend.flatMap { frontend in
            frontend.shield.map { ShieldScreener(shield: $0, router: frontend.router) }
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        attach(to: context)
    }

    /// Binds the handler to the context it writes through: its own, or for an HTTP/2 stream,
    /// the connection's `HTTP2StreamsHandler`'s.
    func attach(to context: ChannelHandlerContext) {
        self.context = context
        forwardedHead = context.channel.allocator.buffer(capacity: 512)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Channel events

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received(unwrapInboundIn(data))
    }

    /// A part of the client's request: from the decoder before this handler, or for an HTTP/2
    /// stream, from `HTTP2StreamsHandler` directly (wrapping a head in `NIOAny` would box it,
    /// and unwrapping it is a dynamic cast).
    func received(_ part: HTTPServerRequestPart) {
        runInlined(machine.channelRead(part))
    }

    func read(context: ChannelHandlerContext) {
        if clientMayRead {
            writer.read(context: context)
        } else {
            readPending = true
        }
    }

    func resumeClientReads() {
        if readPending, clientMayRead, let context {
            readPending = false
            writer.read(context: context)
        }
    }

    /// The machine's read policy, with the server connection's writability. (The machine does
    /// not take the writability as an autoclosure: a closure that captures the handler makes
    /// Swift copy the whole machine for the call, which measured at 1 % of the instructions
    /// per request.)
    private var clientMayRead: Bool {
        switch machine.readPolicy {
        case .read: true
        case .wait: false
        case .readWhileServerWritable: connection?.isWritable ?? true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            clientBecameWritable()
        }
        context.fireChannelWritabilityChanged()
    }

    /// The client can take more of the response: the server's reads resume.
    func clientBecameWritable() {
        connection?.resumeReads()
    }

    func channelInactive(context: ChannelHandlerContext) {
        clientClosed()
        context.fireChannelInactive()
    }

    /// The client's connection (or stream) is gone: whatever the exchange holds is given back.
    func clientClosed() {
        tarpitTimer?.cancel()
        tarpitTimer = nil
        machine.channelInactive()
        abandonExchange()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent || event as? ChannelEvent == .inputClosed, let action = machine.inputClosed() {
            run(action)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let parserError = error as? HTTPParserError {
            run(machine.errorCaught(.unparsable(parserError)))
        } else if let malformed = error as? MalformedRequest {
            run(machine.errorCaught(malformed))
        } else {
            run(machine.channelFailed())
        }
    }

    /// The 408 page the connection guard sends when a request head did not arrive within
    /// `header_read`; the connection closes after it.
    func headerTimeoutResponse(allocator: ByteBufferAllocator) -> ByteBuffer {
        machine.headerTimedOut()
        return (frontend?.errorPages ?? ErrorPages.builtIn).serializedResponse(
            status: .requestTimeout,
            detail: "The request headers did not arrive in time.",
            strictTransportSecurity: writer.strictTransportSecurity,
            allocator: allocator
        )
    }

    // MARK: Carrying out actions

    /// Carries out an action of the machine's.
    @inline(never)
    func run(_ action: consuming ExchangeStateMachine.Action) {
        runInlined(action)
    }

    /// `run`, inlined into the events every request passes through (a client read, admission,
    /// attaching a connection, the response's parts): there the compiler sees which actions
    /// the machine can return, and neither builds nor unpacks them. That measured at 0.6 % of
    /// the instructions per request; inlined everywhere, it grew the code by 300 KB. The action
    /// is `consuming` and the switch consumes it, so its payloads (heads, buffers) move into
    /// the bindings instead of being copied and released again.
    @inline(__always)
    func runInlined(_ action: consuming ExchangeStateMachine.Action) {
        guard let context else { return }
        switch consume action {
        case .wait, .releaseConnection:
            break
        case .admit(let head):
            admit(head)
        case .rescreen(let head):
            rescreen(head)
            resumeClientReads()
            servePipelined()
        case .pickServer(let tried):
            pickServer(excluding: tried)
        case .reconnect(let index):
            connect(to: index, reuseIdle: false)
        case .scheduleTarpit(let delay, let attempt):
            tarpitTimer = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
                tarpitTimer = nil
                run(machine.tarpitElapsed(attempt: attempt))
            }
        case .lookUpCrawler(let address, let attempt):
            lookUpCrawler(address, attempt: attempt, context: context)
        case .checkSharedLimit(let index, let key, let attempt):
            checkSharedLimit(index, key: key, attempt: attempt)
        case .sendRequest(let head, let body, let end):
            sendRequest(head, body: body, end: end)
        case .forwardBody(let body):
            connection?.writeBody(body, chunked: requestChunked)
            connection?.requestProgressed()
            serverWritten()
        case .forwardEnd(let trailers):
            connection?.writeEnd(ForwardingHeaders.forwardedTrailers(trailers), chunked: requestChunked)
            serverWritten()
        case .forwardInterim(let head):
            writer.writeInterim(head, context: context)
            flushSoon()
        case .forwardResponseHead(let head, let request, let keepAlive, let upgrade):
            record.status = head.status.code
            recordOutcome(.response(status: head.status.code))
            if !head.isKeepAlive || upgrade { connection?.isReusable = false }
            if !writer.writeResponseHead(head, request: request, keepAlive: keepAlive, upgrade: upgrade, context: context) {
                machine.closeAfterResponse()
            }
        case .forwardResponseBody(let body):
            record.responseBytes += body.readableBytes
            writer.writeResponseBody(body, context: context)
        case .finishResponse(let trailers, let reuseConnection, let closeClient, let summary):
            if let connection {
                self.connection = nil
                connection.sink = nil
                if !reuseConnection { connection.isReusable = false }
                stopCounting()
                connection.release()
            }
            finish(trailers, closeClient: closeClient, summary: summary, context: context)
        case .startTunnel(let summary):
            // On the next tick: this call comes from inside the response decoder, which the
            // tunnel replaces. Both decoders hold back any bytes that arrive meanwhile.
            context.eventLoop.assumeIsolated().execute { [self] in
                guard let connection, machine.tunnelReady(), let context = self.context else { return }
                startTunnel(with: connection, summary: summary, context: context)
            }
        case .closeServerConnection:
            connection?.close()
        case .respond(let response, let request, let closeClient, let summary):
            abandonExchange()
            respond(response, request: request, closeClient: closeClient, summary: summary, context: context)
        case .closeClient:
            abandonExchange()
            writer.flush(context: context)
            writer.close(context: context)
        }
    }

    /// Serves queued pipelined requests, in order, until one of them is waiting for a server.
    func servePipelined() {
        while let action = machine.servePipelined() {
            run(action)
        }
    }

    // MARK: The end of an exchange

    /// Answers the current request with a response made here.
    func respond(
        _ response: LocalResponse,
        request: HTTPRequestHead?,
        closeClient: Bool,
        summary: ExchangeStateMachine.Summary,
        context: ChannelHandlerContext
    ) {
        let (head, body): (HTTPResponseHead, ByteBuffer)
        if let request, GRPCLocalResponse.isGRPC(request) {
            // A gRPC client reads a gRPC status, not a page (the access log and the metrics
            // keep the HTTP status it stands for).
            (head, body) = (GRPCLocalResponse.head(for: response, request: request), ByteBuffer())
        } else {
            (head, body) = response.rendered(
                pages: frontend?.errorPages ?? ErrorPages.builtIn,
                request: request,
                allocator: context.channel.allocator
            )
        }
        record.status = response.status.code
        record.responseBytes = body.readableBytes
        writer.writeLocalResponse(head, body: body, request: request, keepAlive: !closeClient, context: context)
        finish(nil, closeClient: closeClient, summary: summary, context: context)
    }

    func finish(_ trailers: HTTPHeaders?, closeClient: Bool, summary: ExchangeStateMachine.Summary, context: ChannelHandlerContext) {
        writer.finish(trailers, closeClient: closeClient, context: context)
        exchangeEnded(summary)
        // Idle timer from now on: it also bounds a client that never reads the response.
        connectionGuard?.responseCompleted()
        if !closeClient {
            flushSoon()
            servePipelined()
            resumeClientReads()
        }
    }

    func exchangeEnded(_ summary: ExchangeStateMachine.Summary) {
        record.exchangeEnded(
            summary,
            client: client,
            frontend: frontendName,
            backend: backend,
            serverIndex: serverIndex,
            clientVersion: machine.clientVersion,
            loop: loop
        )
        record = ExchangeRecord()
        backend = nil
        serverIndex = nil
    }

    /// Turns the client connection and the server's into a byte tunnel (`TunnelHandler`) once
    /// the server's `101` was relayed: both HTTP decoders leave their pipelines (handing on
    /// whatever bytes they held back after the upgrade), as does this handler; the server
    /// connection never returns to its pool. The tunnel keeps the server's in-flight count
    /// until it closes, so least-connections sees it as the open connection it is.
    func startTunnel(with connection: any UpstreamConnection, summary: ExchangeStateMachine.Summary, context: ChannelHandlerContext) {
        guard let backend else { return }
        writer.readComplete(context: context)
        writer.flush(context: context)
        exchangeEnded(summary)
        self.connection = nil
        let server = countedServer
        countedServer = nil
        let (clientEnd, serverEnd) = TunnelHandler.pair(idleTimeout: backend.runtime.tunnelTimeout) { _ in
            server?.requestFinished()
        }
        do {
            let clientPipeline = context.pipeline.syncOperations
            let requestDecoder = try clientPipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try clientPipeline.addHandler(clientEnd, position: .last)
            try connection.becomeTunnel(serverEnd)
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

    /// The client went away or the exchange cannot continue: give back what it holds.
    func abandonExchange() {
        stopCounting()
        if let connection {
            self.connection = nil
            connection.sink = nil
            connection.close()
        }
    }

    // MARK: Flushing

    /// Flushes the client channel once the loop has handled its current I/O events
    /// (`DeferredFlushes`), so responses that the servers' replies in one pass completed go
    /// out in a row.
    func flushSoon() {
        if writer.hasUnflushedWrites {
            loop.flushes.flushSoon(self)
        }
    }

    func flushDeferred() {
        if let context {
            writer.flush(context: context)
        }
    }
}
