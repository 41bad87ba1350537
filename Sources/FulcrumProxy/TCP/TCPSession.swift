import FulcrumBalancing
import NIOCore
import NIOHTTP1
import NIOPosix

/// A client connection to a `mode: tcp` frontend, until it is joined to a server (HAProxy's
/// `mode tcp`): routes it by the frontend's rules (whose ACLs test only `src`), picks a server
/// of the backend with its algorithm, connects, trying other servers while the backend's
/// `retries` last, and then hands both connections to a pair of `TunnelHandler`s, which relay
/// bytes both ways with backpressure, half-close and the backend's `tunnel` idle timeout.
///
/// Until then it reads nothing from the client (what already arrived, the rest of a PROXY
/// protocol header's read, is kept and sent first). On a frontend with `sni` or `alpn` rules
/// it first reads, within `header_read`, the client's TLS ClientHello (`ClientHello`) for its
/// server name and offered protocols; the hello itself is then the first thing the server
/// gets, so TLS passes through untouched. A connection no server takes is closed, with a
/// warning that says why.
///
/// A connection counts as a request of its server (its response time is the connect's), and
/// when it ends, its bytes each way go to the traffic counters and the access log.
final class TCPSession: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer

    private let loop: LoopContext
    private let frontendName: String
    private var client: ClientInfo
    private var context: ChannelHandlerContext?
    /// How long the ClientHello may take, while the session waits for it.
    private var clientHelloTimeout: TimeAmount?
    private var clientHelloDeadline: Scheduled<Void>?
    /// The bytes of the ClientHello so far, while the session waits for it.
    private var helloBytes: ByteBuffer?
    private var backend: LoopBackend?
    private var tried = ServerIndexSet()
    private var retriesLeft = 0
    /// Bytes the client sent before its server connection was made.
    private var early: [ByteBuffer] = []
    private var isStarted = false
    private let opened = NIODeadline.now()

    /// The rules of a TCP frontend test only the client's address; the router still takes a
    /// request head, which this stands in for.
    private static let noRequest = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")

    /// `clientHelloTimeout`: wait this long for the client's TLS ClientHello before routing
    /// (nil: route at once).
    init(loop: LoopContext, frontendName: String, client: ClientInfo, clientHelloTimeout: TimeAmount? = nil) {
        self.loop = loop
        self.frontendName = frontendName
        self.client = client
        self.clientHelloTimeout = clientHelloTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if let clientHelloTimeout {
            clientHelloDeadline = context.eventLoop.assumeIsolated().scheduleTask(in: clientHelloTimeout) { [self] in
                refuse("no TLS ClientHello within \(clientHelloTimeout)")
            }
        } else if context.channel.isActive {
            start()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        clientHelloDeadline?.cancel()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        if clientHelloTimeout == nil { start() }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        early.append(bytes)
        guard clientHelloTimeout != nil else { return }
        helloBytes.setOrWriteImmutableBuffer(bytes)
        switch ClientHello.read(helloBytes!) {
        case .incomplete:
            break
        case .notHello:
            helloRead(nil)
        case .hello(let hello):
            helloRead(hello)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if clientHelloTimeout != nil, event as? ChannelEvent == .inputClosed {
            return refuse("the client ended its output before its TLS ClientHello was complete")
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Nothing is read until the server connection is made (the tunnel reads then), but for
    /// the ClientHello that `sni` and `alpn` rules wait for.
    func read(context: ChannelHandlerContext) {
        if clientHelloTimeout != nil { context.read() }
    }

    /// Routing goes on with what the ClientHello said (nothing, when it was not one).
    private func helloRead(_ hello: ClientHello?) {
        clientHelloTimeout = nil
        clientHelloDeadline?.cancel()
        clientHelloDeadline = nil
        helloBytes = nil
        client.serverName = hello?.serverName
        client.offeredProtocols = hello?.applicationProtocols ?? []
        start()
    }

    // MARK: Choosing a server and connecting

    private func start() {
        guard !isStarted else { return }
        isStarted = true
        let snapshot = loop.snapshot
        let name = snapshot.renamedFrontends[frontendName] ?? frontendName
        guard let frontend = snapshot.frontends.first(where: { $0.name == name }) else {
            return refuse("its frontend was removed")
        }
        guard case .backend(let index)? = frontend.router.route(Self.noRequest, client: client).decision else {
            return refuse("no rule chose a backend")
        }
        let backend = loop.backends[index]
        self.backend = backend
        retriesLeft = backend.runtime.retries
        connectNext()
    }

    private func connectNext() {
        guard let backend, let context else { return }
        // `hash` takes the client's address: a connection has no other key.
        let hashKey = backend.algorithm.usesHashKey ? StableHash.of(client.addressText) : nil
        guard let index = backend.algorithm.pick(from: backend.runtime.servers, excluding: tried, hashKey: hashKey) else {
            return refuse("no server of backend \(backend.runtime.name) is available")
        }
        tried.insert(index)
        let server = backend.runtime.servers[index]
        server.requestStarted()
        let proxyHeader = backend.pools[index].sendProxy.map { client.proxyProtocolHeader($0, connection: context.channel) }
        let started = NIODeadline.now()
        ClientBootstrap(group: context.eventLoop)
            .connectTimeout(backend.runtime.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            // Half-closes pass through: the tunnel closes the other side's output.
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let proxyHeader {
                        try channel.pipeline.syncOperations.addHandler(ProxyProtocolSender(header: proxyHeader))
                    }
                }
            }
            .connect(to: backend.runtime.addresses[index])
            .assumeIsolated()
            .whenComplete { [self] result in
                switch result {
                case .success(let channel):
                    let now = NIODeadline.now().uptimeNanoseconds
                    let connectNanoseconds = Int64(now &- started.uptimeNanoseconds)
                    backend.metrics[index].record(.connected, responseNanoseconds: connectNanoseconds, now: now)
                    backend.runtime.outlierDetector?.recordSuccess(serverIndex: index)
                    join(channel, serverIndex: index, connectNanoseconds: connectNanoseconds)
                case .failure(let error):
                    server.requestFinished()
                    recordConnectFailure(backend: backend, index: index, since: started)
                    // Per attempt, so not a warning: a down server would flood the log. The
                    // client's connection, if no server takes it, is.
                    loop.logger.info(
                        "TCP connect to server failed: \(describeNetworkError(error))",
                        metadata: ["backend": "\(backend.runtime.name)", "server": "\(server.name)"]
                    )
                    guard self.context != nil else { return }
                    if retriesLeft > 0 {
                        retriesLeft -= 1
                        connectNext()
                    } else {
                        refuse("no server of backend \(backend.runtime.name) could be connected to")
                    }
                }
            }
    }

    private func recordConnectFailure(backend: LoopBackend, index: Int, since started: NIODeadline) {
        let now = NIODeadline.now().uptimeNanoseconds
        let elapsed = Int64(now &- started.uptimeNanoseconds)
        backend.metrics[index].record(.connectFailure, responseNanoseconds: elapsed, now: now)
        if let verdict = backend.runtime.outlierDetector?.recordFailure(serverIndex: index, now: now) {
            loop.outlierVerdict(verdict, backend: backend.runtime, serverIndex: index)
        }
    }

    /// Joins the client to `serverChannel`: a tunnel end on each, this handler out, the early
    /// bytes first. (Called from the connect's future, before the server channel is active
    /// and reads: nothing the server sends first can arrive before its tunnel end.)
    private func join(_ serverChannel: any Channel, serverIndex: Int, connectNanoseconds: Int64) {
        guard let context, let backend else { return }
        let server = backend.runtime.servers[serverIndex]
        guard context.channel.isActive else {
            // The client left while connecting.
            serverChannel.close(promise: nil)
            server.requestFinished()
            return
        }
        let (loop, frontendName, client, opened) = (loop, frontendName, client, opened)
        let (clientEnd, serverEnd) = TunnelHandler.pair(idleTimeout: backend.runtime.tunnelTimeout) { totals in
            server.requestFinished()
            Self.connectionEnded(
                totals,
                loop: loop,
                frontend: frontendName,
                backend: backend,
                serverIndex: serverIndex,
                client: client,
                opened: opened,
                connectNanoseconds: connectNanoseconds
            )
        }
        do {
            try serverChannel.pipeline.syncOperations.addHandler(serverEnd)
            try context.pipeline.syncOperations.addHandler(clientEnd, position: .after(self))
        } catch {
            serverChannel.close(promise: nil)
            server.requestFinished()
            return refuse("could not join it to its server: \(error)")
        }
        for bytes in early {
            serverChannel.write(bytes, promise: nil)
        }
        if !early.isEmpty { serverChannel.flush() }
        early = []
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        clientEnd.start()
    }

    /// Counts a connection that went to a server, now closed, and logs it.
    private static func connectionEnded(
        _ totals: TunnelHandler.Totals,
        loop: LoopContext,
        frontend: String,
        backend: LoopBackend,
        serverIndex: Int,
        client: ClientInfo,
        opened: NIODeadline,
        connectNanoseconds: Int64
    ) {
        let cell = backend.trafficCell(serverIndex: serverIndex, frontend: frontend, in: loop.traffic)
        loop.traffic.recordTCPConnection(into: cell, bytesIn: totals.fromClient, bytesOut: totals.fromServer)
        loop.accessLog?.append(
            AccessLogEntry(
                client: client.addressText,
                frontend: frontend,
                backend: backend.runtime.name,
                server: backend.runtime.servers[serverIndex].name,
                request: nil,
                protocolVersion: nil,
                status: 0,
                bytesIn: totals.fromClient,
                bytesOut: totals.fromServer,
                durationNanoseconds: Int64(NIODeadline.now().uptimeNanoseconds &- opened.uptimeNanoseconds),
                upstreamNanoseconds: connectNanoseconds
            )
        )
    }

    private func refuse(_ reason: String) {
        loop.logger.warning(
            "closed a TCP connection: \(reason)",
            metadata: ["frontend": "\(frontendName)", "client": "\(client.addressText)"]
        )
        context?.close(promise: nil)
    }
}
