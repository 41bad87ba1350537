import FulcrumBalancing
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
final class BackendConnectionPool {
    let eventLoop: any EventLoop
    let server: BalancedServer
    private(set) var address: SocketAddress
    private var tls: BackendTLS?
    private var connectTimeout: TimeAmount
    private var idleTimeout: TimeAmount
    private var idle: [BackendConnection] = []
    /// Connections open now (idle and busy).
    private(set) var openConnections = 0
    /// Connections ever opened by this pool.
    private(set) var connectionsOpened = 0
    /// Idle connections kept per server and loop; more are closed when released.
    let maximumIdle = 512

    init(eventLoop: any EventLoop, server: BalancedServer, address: SocketAddress, tls: BackendTLS?, backend: RuntimeBackend) {
        self.eventLoop = eventLoop
        self.server = server
        self.address = address
        self.tls = tls
        self.connectTimeout = backend.connectTimeout
        self.idleTimeout = backend.idleTimeout
    }

    /// Adopts the settings of a newer snapshot (the server itself is unchanged).
    func update(address: SocketAddress, tls: BackendTLS?, backend: RuntimeBackend) {
        self.address = address
        self.tls = tls
        self.connectTimeout = backend.connectTimeout
        self.idleTimeout = backend.idleTimeout
    }

    /// A pooled connection that is still open, if there is one.
    func takeIdle() -> BackendConnection? {
        while let connection = idle.popLast() {
            if connection.isActive { return connection }
        }
        return nil
    }

    /// Opens a new connection (with TLS, completes its handshake). The future completes on
    /// `eventLoop`; a TLS failure is a `BackendTLSError`.
    func connect() -> EventLoopFuture<BackendConnection> {
        let pool = self
        let tls = self.tls
        let handshake = tls.map { _ in eventLoop.makePromise(of: Void.self) }
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
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
            .flatMap { channel in
                guard let handshake else { return channel.eventLoop.makeSucceededFuture(channel) }
                return handshake.futureResult.map { channel }.flatMapErrorThrowing { error in
                    channel.close(promise: nil)
                    throw error
                }
            }
            .assumeIsolated()
            .flatMapThrowing { channel in
                let connection = try channel.pipeline.syncOperations.handler(type: BackendConnection.self)
                connection.pool = pool
                pool.openConnections += 1
                pool.connectionsOpened += 1
                return connection
            }
            .nonisolated()
    }

    /// Set when a reload removed the server: connections close as their exchanges end.
    private var isRetired = false

    /// Takes a connection back after an exchange; keeps it if it can serve another request.
    func release(_ connection: BackendConnection) {
        if !isRetired, connection.isReusable, connection.isActive, idle.count < maximumIdle {
            connection.becomeIdle(timeout: idleTimeout)
            idle.append(connection)
        } else {
            connection.sink = nil
            connection.close()
        }
    }

    /// Called by a connection when its channel closed.
    func connectionClosed(_ connection: BackendConnection) {
        openConnections -= 1
        if let index = idle.firstIndex(where: { $0 === connection }) {
            idle.remove(at: index)
        }
    }

    /// Closes every idle connection (busy ones close when their exchange ends).
    func closeIdleConnections() {
        let connections = idle
        idle.removeAll()
        for connection in connections { connection.close() }
    }

    /// The server left the configuration: closes the idle connections now and the busy ones
    /// when their exchanges end.
    func retire() {
        isRetired = true
        closeIdleConnections()
    }
}
