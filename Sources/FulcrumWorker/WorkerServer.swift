import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix

/// A small HTTP/1.1 server that plays a backend for the load balancer: in tests, in the demo, in the
/// benchmark and in the algorithm lab.
///
/// Every response carries `X-Worker: <name>`, so a client can tell which worker answered. Endpoints:
///
/// | Endpoint | Response |
/// |---|---|
/// | `GET /health` | `200 ok`, or `503 unhealthy` while ``WorkerBehaviour/healthy`` is `false` |
/// | `/work` (any method) | `200` after the behaviour's delay ± jitter, or `500` with probability ``WorkerBehaviour/errorRate``; `?delay_ms=N` replaces delay and jitter for this request. With a ``WorkerBehaviour/capacity``, requests beyond it first wait for a free slot |
/// | `/echo` (any method) | `200` JSON describing the request (`worker`, `method`, `path`, `version`, `headers`, `body`, `body_bytes`, `trailers`); `?status=N` answers with status `N` instead; `?trailers=1` ends the response with trailers (`x-echo-trailer: done`, `x-body-bytes`), chunked over HTTP/1.1; `?set_cookie=NAME` sets the cookie `NAME=<worker>-session` (a session of the worker's own); bodies over 16 MiB get `413` |
/// | `POST /grpc.health.v1.Health/Check` | gRPC's health check (over HTTP/2): SERVING, or NOT_SERVING while ``WorkerBehaviour/healthy`` is `false`, with `grpc-status: 0` |
/// | `GET /control` | the current ``WorkerBehaviour`` as JSON |
/// | `POST /control` | applies a partial ``WorkerBehaviour`` (`{"delay_ms": 50}`), answers the new behaviour; `400` on bad JSON or values |
/// | `POST /sink` | consumes the body without buffering it, answers `{"bytes": N, "checksum": "<FNV-1a 64 hex>"}` |
/// | `GET /bytes?n=N&seed=S` | `N` bytes of ``patternByte(index:seed:)``, streamed with backpressure |
///
/// Anything else is a `404`. Keep-alive, `Connection: close`, pipelining and HTTP/1.0 are supported;
/// started with `http2: true`, it speaks HTTP/2 by prior knowledge (h2c) instead, each stream
/// served as one request.
///
/// ```swift
/// let worker = try await WorkerServer.start(name: "w1", group: MultiThreadedEventLoopGroup.singleton)
/// // … send requests to http://127.0.0.1:\(worker.port)/work …
/// try await worker.shutdown()
/// ```
package final class WorkerServer: Sendable {
    /// The worker's name, sent back in the `X-Worker` header.
    package let name: String
    /// The port the worker listens on; the one the OS picked if started with port 0.
    package let port: Int

    private let state: WorkerState
    private let serverChannel: any Channel

    private init(state: WorkerState, serverChannel: any Channel, port: Int) {
        self.name = state.name
        self.state = state
        self.serverChannel = serverChannel
        self.port = port
    }

    /// Binds `host:port` and starts serving.
    ///
    /// - Parameters:
    ///   - name: Sent back in the `X-Worker` header of every response.
    ///   - host: The address to listen on.
    ///   - port: The port to listen on; `0` lets the OS pick a free one (see ``port``).
    ///   - behaviour: The initial behaviour; change it later with ``update(_:)`` or `POST /control`.
    ///   - http2: Speak HTTP/2 by prior knowledge (h2c) instead of HTTP/1.1.
    ///   - group: The event loops the listener and its connections run on. Owned by the caller,
    ///     and must outlive the worker.
    package static func start(
        name: String,
        host: String = "127.0.0.1",
        port: Int = 0,
        behaviour: WorkerBehaviour = WorkerBehaviour(),
        http2: Bool = false,
        group: any EventLoopGroup
    ) async throws -> WorkerServer {
        let state = WorkerState(name: name, behaviour: behaviour)

        let serverChannel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                state.connectionsAccepted.add(1, ordering: .relaxed)
                guard state.register(channel) else {
                    // Accepted while shutting down.
                    return channel.close()
                }
                return channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    guard http2 else {
                        try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
                        try pipeline.addHandler(WorkerHTTPHandler(worker: state))
                        return
                    }
                    _ = try pipeline.configureHTTP2Pipeline(
                        mode: .server,
                        connectionConfiguration: .init(),
                        streamConfiguration: .init()
                    ) { stream in
                        stream.eventLoop.makeCompletedFuture {
                            try stream.pipeline.syncOperations.addHandlers([
                                HTTP2FramePayloadToHTTP1ServerCodec(),
                                WorkerHTTPHandler(worker: state),
                            ])
                        }
                    }
                }
            }
            .bind(host: host, port: port)
            .get()

        guard let boundPort = serverChannel.localAddress?.port else {
            // Only possible if the socket was closed under our feet.
            try? await serverChannel.close()
            throw ChannelError.ioOnClosedChannel
        }
        return WorkerServer(state: state, serverChannel: serverChannel, port: boundPort)
    }

    /// The current behaviour.
    package var behaviour: WorkerBehaviour {
        self.state.behaviour
    }

    /// Replaces the behaviour, with the same effect as `POST /control`. Requests already working in
    /// `/work` keep the delay they were given; those still queued for a slot get the new one.
    /// A higher (or unlimited) ``WorkerBehaviour/capacity`` starts queued requests at once; a lower
    /// one lets the requests at work finish and starts no new one until fewer are working.
    package func update(_ behaviour: WorkerBehaviour) {
        self.state.setBehaviour(behaviour)
    }

    /// The `/work` requests holding a slot of the capacity (working, or granted a slot and about to
    /// start), and those queued for one. Counted whether or not the capacity is limited.
    package var workInProgress: (working: Int, waiting: Int) {
        self.state.admission.counts
    }

    /// The number of responses begun so far, all endpoints and status codes included.
    package var requestsServed: Int {
        self.state.requestsServed.load(ordering: .relaxed)
    }

    /// The number of TCP connections accepted so far.
    package var connectionsAccepted: Int {
        self.state.connectionsAccepted.load(ordering: .relaxed)
    }

    /// The number of `/bytes` body bytes handed to connections so far (queued, not necessarily sent).
    var streamedBodyBytes: Int {
        self.state.streamedBodyBytes.load(ordering: .relaxed)
    }

    /// Closes the listener, then every open connection (abandoning requests in progress), and
    /// returns once all of them are closed. Calling it again does nothing.
    package func shutdown() async throws {
        // Refuse new connections before taking the list of open ones; see `WorkerState.beginShutdown`.
        let connections = self.state.beginShutdown()
        do {
            try await self.serverChannel.close()
        } catch ChannelError.alreadyClosed {
            // Shut down before.
        }

        for connection in connections {
            connection.close(promise: nil)
        }
        for connection in connections {
            // Closing can only fail if the connection closed by itself meanwhile; either way it's closed.
            try? await connection.closeFuture.get()
        }
    }

    /// The byte at `index` of the body of `GET /bytes?n=…&seed=seed`:
    /// `UInt8(truncatingIfNeeded: index &* 31 &+ seed)`.
    ///
    /// The pattern repeats every 256 bytes, which lets the worker stream any length from one
    /// pre-computed chunk; 31 is odd, so each 256-byte period holds every byte value once.
    @inlinable
    package static func patternByte(index: Int, seed: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: index &* 31 &+ seed)
    }
}
