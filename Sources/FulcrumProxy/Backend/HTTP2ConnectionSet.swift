import FulcrumConfig
import NIOCore
import NIOHTTP2
import NIOPosix
import NIOSSL

/// The HTTP/2 connections one event loop keeps to one server (`protocol: h2` or `h2c`), and
/// the exchanges waiting for a stream on them.
///
/// An exchange gets a stream on the open connection with the fewest streams that has room
/// (`HTTP2ServerConnection.hasCapacity`). When none has, another connection is made, up to
/// the backend's `http2.max_connections`; a connection being made is counted on for
/// `max_concurrent_streams` of the waiting exchanges, so a burst does not open one connection
/// per request (Envoy's HTTP/2 pool does the same). Beyond that, exchanges wait, in order,
/// for a stream to end. A connection with no stream closes after the backend's idle timeout.
///
/// To a `send_proxy` server a connection names one client connection, so only that client's
/// exchanges share it (as `BackendConnectionPool` does for HTTP/1.1).
final class HTTP2ConnectionSet {
    private struct Waiter {
        let proxyHeader: ByteBuffer?
        let promise: EventLoopPromise<HTTP2UpstreamStream>
    }

    private let eventLoop: any EventLoop
    private var connections: [HTTP2ServerConnection] = []
    /// Connections being made, per PROXY protocol header.
    private var connecting: [ByteBuffer?: Int] = [:]
    private var waiters: [Waiter] = []
    private var idleClosings: [ObjectIdentifier: Scheduled<Void>] = [:]
    private var isRetired = false
    var settings: Settings
    /// Connections open now, and ever opened.
    var openConnections: Int { connections.count }
    private(set) var connectionsOpened = 0

    /// What a connection to the server needs (a reload may change it).
    struct Settings {
        var address: SocketAddress
        var tls: BackendTLS?
        /// `:authority` for requests that had no `Host`.
        var authority: String
        var connectTimeout: TimeAmount
        var idleTimeout: TimeAmount
        var limits: HTTP2UpstreamLimits
    }

    init(eventLoop: any EventLoop, settings: Settings) {
        self.eventLoop = eventLoop
        self.settings = settings
    }

    /// A stream for one exchange now, on a connection that began with `proxyHeader`, if one
    /// has room and no exchange waits before this one.
    func takeStream(proxyHeader: ByteBuffer?) -> HTTP2UpstreamStream? {
        guard waiters.isEmpty, let connection = leastBusy(proxyHeader: proxyHeader, withRoom: true) else { return nil }
        return start(on: connection)
    }

    /// A stream once one is free, or a connection made. Completes on the loop; fails when no
    /// connection could be made.
    func waitForStream(proxyHeader: ByteBuffer?) -> EventLoopFuture<HTTP2UpstreamStream> {
        let promise = eventLoop.makePromise(of: HTTP2UpstreamStream.self)
        waiters.append(Waiter(proxyHeader: proxyHeader, promise: promise))
        dispatch()
        return promise.futureResult
    }

    private func leastBusy(proxyHeader: ByteBuffer?, withRoom: Bool) -> HTTP2ServerConnection? {
        var best: HTTP2ServerConnection?
        for connection in connections where connection.proxyHeader == proxyHeader {
            guard withRoom ? connection.hasCapacity : !connection.isClosing else { continue }
            if best == nil || connection.openStreams < best!.openStreams { best = connection }
        }
        return best
    }

    private func start(on connection: HTTP2ServerConnection) -> HTTP2UpstreamStream {
        idleClosings.removeValue(forKey: ObjectIdentifier(connection))?.cancel()
        return connection.openStream()
    }

    /// Gives waiting exchanges streams where there is room, and makes connections for those
    /// the connections being made will not take.
    private func dispatch() {
        // (Called whenever a stream ends: usually nobody waits, and nothing is built.)
        guard !waiters.isEmpty else { return }
        var unserved: [ByteBuffer?: Int] = [:]
        var stillWaiting: [Waiter] = []
        for waiter in waiters {
            if let connection = leastBusy(proxyHeader: waiter.proxyHeader, withRoom: true) {
                waiter.promise.succeed(start(on: connection))
                continue
            }
            let count = unserved[waiter.proxyHeader, default: 0] + 1
            unserved[waiter.proxyHeader] = count
            let beingMade = connecting[waiter.proxyHeader, default: 0]
            let open = connections.filter { $0.proxyHeader == waiter.proxyHeader && !$0.isClosing }.count
            if !isRetired, count > beingMade * settings.limits.maxConcurrentStreams, open + beingMade < settings.limits.maxConnections {
                connect(proxyHeader: waiter.proxyHeader)
            }
            stillWaiting.append(waiter)
        }
        waiters = stillWaiting
    }

    private func connect(proxyHeader: ByteBuffer?) {
        connecting[proxyHeader, default: 0] += 1
        let settings = settings
        let handshake = settings.tls.map { _ in eventLoop.makePromise(of: Void.self) }
        ClientBootstrap(group: eventLoop)
            .connectTimeout(settings.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    let connection = HTTP2ServerConnection(
                        eventLoop: channel.eventLoop,
                        isSecure: settings.tls != nil,
                        authority: settings.authority,
                        maxStreams: settings.limits.maxConcurrentStreams,
                        proxyHeader: proxyHeader
                    )
                    if let proxyHeader {
                        try pipeline.addHandler(ProxyProtocolSender(header: proxyHeader))
                    }
                    if let tls = settings.tls, let handshake {
                        try pipeline.addHandlers([
                            try NIOSSLClientHandler(context: tls.context, serverHostname: tls.serverName),
                            TLSHandshakeWatcher(handshake: handshake, requiresHTTP2: true),
                        ])
                    }
                    // No multiplexer: the streams run on the connection (HTTP2ServerConnection).
                    try pipeline.addHandler(
                        NIOHTTP2Handler(mode: .client, frameDelegate: connection, connectionConfiguration: Self.exchangeConfiguration)
                    )
                    try pipeline.addHandler(connection)
                }
            }
            .connect(to: settings.address)
            .completingHandshake(handshake)
            .assumeIsolated()
            .whenComplete { [self] result in
                switch result {
                case .success(let channel):
                    // On the next tick: NIO completes a connect before it tells the pipeline
                    // the channel is active, and NIOHTTP2Handler sends the connection preface
                    // only then; a stream's HEADERS must come after it.
                    eventLoop.assumeIsolated().execute { [self] in
                        connecting[proxyHeader, default: 1] -= 1
                        do {
                            try adopt(channel, proxyHeader: proxyHeader)
                        } catch {
                            channel.close(promise: nil)
                            connectFailed(error, proxyHeader: proxyHeader)
                        }
                    }
                case .failure(let error):
                    connecting[proxyHeader, default: 1] -= 1
                    connectFailed(error, proxyHeader: proxyHeader)
                }
            }
    }

    private func adopt(_ channel: any Channel, proxyHeader: ByteBuffer?) throws {
        let connection = try channel.pipeline.syncOperations.handler(type: HTTP2ServerConnection.self)
        connectionsOpened += 1
        connections.append(connection)
        connection.onCapacityChange = { [unowned self] connection in capacityChanged(connection) }
        channel.closeFuture.assumeIsolated().whenComplete { [self] _ in
            connection.closing()
            forget(connection)
        }
        dispatch()
    }

    /// A connection could not be made: the exchanges waiting for it fail, unless another
    /// connection can still take them.
    private func connectFailed(_ error: any Error, proxyHeader: ByteBuffer?) {
        let others = connecting[proxyHeader, default: 0] > 0 || leastBusy(proxyHeader: proxyHeader, withRoom: false) != nil
        guard !others else {
            dispatch()
            return
        }
        let failed = waiters.filter { $0.proxyHeader == proxyHeader }
        waiters.removeAll { $0.proxyHeader == proxyHeader }
        for waiter in failed { waiter.promise.fail(error) }
    }

    private func capacityChanged(_ connection: HTTP2ServerConnection) {
        let key = ObjectIdentifier(connection)
        if connection.openStreams == 0 {
            if connection.isClosing || isRetired {
                connection.close()
            } else if idleClosings[key] == nil {
                idleClosings[key] = eventLoop.assumeIsolated().scheduleTask(in: settings.idleTimeout) { [self] in
                    idleClosings[key] = nil
                    if connection.openStreams == 0 { connection.close() }
                }
            }
        }
        dispatch()
    }

    private func forget(_ connection: HTTP2ServerConnection) {
        idleClosings.removeValue(forKey: ObjectIdentifier(connection))?.cancel()
        connections.removeAll { $0 === connection }
        dispatch()
    }

    /// Closes the connections that carry no stream (shutdown, or the server's settings
    /// changed); the others close as their streams end.
    func closeIdleConnections() {
        for connection in connections {
            if connection.openStreams == 0 {
                connection.close()
            } else {
                connection.closing()
            }
        }
    }

    /// The server left the configuration: no new connections, and those open close as their
    /// streams end.
    func retire() {
        isRetired = true
        closeIdleConnections()
    }

    // MARK: Settings

    /// Push is off, and the stream windows are larger than the protocol's 64 KiB default, so
    /// one round trip can carry more of a response; a client slow to read still holds up only
    /// its own stream.
    static let connectionConfiguration: NIOHTTP2Handler.ConnectionConfiguration = {
        var configuration = NIOHTTP2Handler.ConnectionConfiguration()
        configuration.initialSettings = [
            HTTP2Setting(parameter: .enablePush, value: 0),
            HTTP2Setting(parameter: .maxHeaderListSize, value: 1 << 16),
            HTTP2Setting(parameter: .initialWindowSize, value: streamWindow),
        ]
        return configuration
    }()

    /// The exchanges' connections: as `connectionConfiguration`, with NIOHTTP2's check of
    /// header blocks off. The blocks sent are built from heads llhttp parsed, and those
    /// received are checked as they are converted (`HTTP2Heads.responseHead`), as the client
    /// side does; NIOHTTP2's check costs about 10,000 instructions a block.
    static let exchangeConfiguration: NIOHTTP2Handler.ConnectionConfiguration = {
        var configuration = connectionConfiguration
        configuration.headerBlockValidation = .disabled
        return configuration
    }()

    static let streamConfiguration: NIOHTTP2Handler.StreamConfiguration = {
        var configuration = NIOHTTP2Handler.StreamConfiguration()
        configuration.targetWindowSize = Int(streamWindow)
        return configuration
    }()

    static let streamWindow: Int = 1 << 18
}
