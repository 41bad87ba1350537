import FulcrumBalancing
import FulcrumConfig
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Keep-alive connections to one server, owned by one event loop.
///
/// Every client connection and all the backend connections it uses live on the same loop,
/// so the pool needs no locks: it is only ever touched from `eventLoop`. Idle connections are
/// reused most-recently-used first (warm connections stay warm; the rest age out through
/// their idle timeout).
///
/// To a server that takes a PROXY protocol header (`send_proxy`), a connection names one
/// client connection, so only that client's exchanges reuse it, as HAProxy keeps such
/// connections private to their session and Envoy keys its pools by the downstream addresses.
///
/// A server that speaks HTTP/2 (`protocol: h2` or `h2c`) has its `http2` connection set
/// instead: exchanges take streams on shared connections, and nothing goes idle here.
final class BackendConnectionPool {
    let eventLoop: any EventLoop
    let server: BalancedServer
    private(set) var address: SocketAddress
    private var tls: BackendTLS?
    private var connectTimeout: TimeAmount
    private var idleTimeout: TimeAmount
    /// The PROXY protocol version connections begin with (`send_proxy`); nil: none.
    private(set) var sendProxy: ProxyProtocolVersion?
    private var idle: [BackendConnection] = []
    /// The HTTP/2 connections, for a server that speaks HTTP/2.
    private(set) var http2: HTTP2ConnectionSet?
    private var upstreamProtocol: UpstreamProtocol
    private var openHTTP1Connections = 0
    private var http1ConnectionsOpened = 0
    /// Connections open now (idle and busy).
    var openConnections: Int { openHTTP1Connections + (http2?.openConnections ?? 0) }
    /// Connections ever opened by this pool.
    var connectionsOpened: Int { http1ConnectionsOpened + retiredHTTP2Opened + (http2?.connectionsOpened ?? 0) }
    /// HTTP/2 connections opened by sets a reload replaced.
    private var retiredHTTP2Opened = 0
    /// Idle connections kept per server and loop; more are closed when released.
    let maximumIdle = 512

    /// `index`: the server's place in `backend`.
    init(eventLoop: any EventLoop, server: BalancedServer, address: SocketAddress, tls: BackendTLS?, index: Int, backend: RuntimeBackend) {
        self.eventLoop = eventLoop
        self.server = server
        self.address = address
        self.tls = tls
        self.connectTimeout = backend.connectTimeout
        self.idleTimeout = backend.idleTimeout
        self.sendProxy = backend.sendProxy[index]
        self.upstreamProtocol = backend.protocols[index]
        if upstreamProtocol.isHTTP2 {
            http2 = HTTP2ConnectionSet(eventLoop: eventLoop, settings: Self.http2Settings(address: address, tls: tls, index: index, backend: backend))
        }
    }

    private static func http2Settings(address: SocketAddress, tls: BackendTLS?, index: Int, backend: RuntimeBackend) -> HTTP2ConnectionSet.Settings {
        HTTP2ConnectionSet.Settings(
            address: address,
            tls: tls,
            authority: backend.addressDescriptions[index],
            connectTimeout: backend.connectTimeout,
            idleTimeout: backend.idleTimeout,
            limits: backend.http2Limits(server: index)
        )
    }

    /// Adopts the settings of a newer snapshot (the server itself is unchanged).
    func update(address: SocketAddress, tls: BackendTLS?, index: Int, backend: RuntimeBackend) {
        self.address = address
        self.tls = tls
        self.connectTimeout = backend.connectTimeout
        self.idleTimeout = backend.idleTimeout
        if sendProxy != backend.sendProxy[index] {
            // Pooled connections began with the old header, or none.
            sendProxy = backend.sendProxy[index]
            closeIdleConnections()
        }
        let settings = Self.http2Settings(address: address, tls: tls, index: index, backend: backend)
        if upstreamProtocol != backend.protocols[index] {
            // The server speaks another protocol now: what is open finishes, nothing is reused.
            upstreamProtocol = backend.protocols[index]
            closeIdleConnections()
            if let http2 {
                http2.retire()
                retiredHTTP2Opened += http2.connectionsOpened
            }
            http2 = upstreamProtocol.isHTTP2 ? HTTP2ConnectionSet(eventLoop: eventLoop, settings: settings) : nil
        } else if let http2 {
            // (New connections use the new settings; open ones go on, as HTTP/1.1's pooled
            // connections do.)
            http2.settings = settings
        }
    }

    /// A pooled connection that is still open, if there is one; to a `send_proxy` server,
    /// one that began with `proxyHeader`.
    func takeIdle(proxyHeader: ByteBuffer? = nil) -> BackendConnection? {
        guard let proxyHeader else {
            while let connection = idle.popLast() {
                if connection.isActive { return connection }
            }
            return nil
        }
        while let index = idle.lastIndex(where: { $0.proxyHeader == proxyHeader }) {
            let connection = idle.remove(at: index)
            if connection.isActive { return connection }
        }
        return nil
    }

    /// Opens a new connection (with TLS, completes its handshake), which begins with
    /// `proxyHeader` if there is one. The future completes on `eventLoop`; a TLS failure is a
    /// `BackendTLSError`.
    func connect(proxyHeader: ByteBuffer? = nil) -> EventLoopFuture<BackendConnection> {
        let pool = self
        let tls = self.tls
        let handshake = tls.map { _ in eventLoop.makePromise(of: Void.self) }
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let proxyHeader {
                        // First: the header precedes the TLS handshake.
                        try channel.pipeline.syncOperations.addHandler(ProxyProtocolSender(header: proxyHeader))
                    }
                    if let tls, let handshake {
                        try channel.pipeline.syncOperations.addHandlers([
                            try NIOSSLClientHandler(context: tls.context, serverHostname: tls.serverName),
                            TLSHandshakeWatcher(handshake: handshake),
                        ])
                    }
                    let decoder = HTTPResponseDecoder(
                        leftOverBytesStrategy: .forwardBytes,
                        informationalResponseStrategy: .forward
                    )
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(ResponseDecoder(decoder: decoder)),
                        BackendConnection(decoder: decoder),
                    ])
                }
            }
            .connect(to: address)
            .completingHandshake(handshake)
            .assumeIsolated()
            .flatMapThrowing { channel in
                let connection = try channel.pipeline.syncOperations.handler(type: BackendConnection.self)
                connection.pool = pool
                connection.proxyHeader = proxyHeader
                pool.openHTTP1Connections += 1
                pool.http1ConnectionsOpened += 1
                return connection
            }
            .nonisolated()
    }

    /// Set when a reload removed the server: connections close as their exchanges end.
    private var isRetired = false

    /// Takes a connection back after an exchange; keeps it if it can serve another request.
    func release(_ connection: BackendConnection) {
        // (A connection opened before a reload changed `send_proxy` began otherwise: not kept.)
        if !isRetired, connection.isReusable, connection.isActive, idle.count < maximumIdle,
            (connection.proxyHeader == nil) == (sendProxy == nil)
        {
            connection.becomeIdle(timeout: idleTimeout)
            idle.append(connection)
        } else {
            connection.sink = nil
            connection.close()
        }
    }

    /// Called by a connection when its channel closed.
    func connectionClosed(_ connection: BackendConnection) {
        openHTTP1Connections -= 1
        if let index = idle.firstIndex(where: { $0 === connection }) {
            idle.remove(at: index)
        }
    }

    /// Closes every idle connection (busy ones close when their exchange ends).
    func closeIdleConnections() {
        let connections = idle
        idle.removeAll()
        for connection in connections { connection.close() }
        http2?.closeIdleConnections()
    }

    /// The server left the configuration: closes the idle connections now and the busy ones
    /// when their exchanges end.
    func retire() {
        isRetired = true
        closeIdleConnections()
        http2?.retire()
    }
}
