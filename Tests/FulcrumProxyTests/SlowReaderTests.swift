import FulcrumWorker
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Clients slow to read a response. While the response waits for the client, the server is not
/// waited for: the backend's response timeout does not run, and the frontend's `client_idle`
/// bounds how long the client may take no byte (HAProxy's `timeout client`, nginx's
/// `send_timeout`). Found by `bench/soak.sh`.
@Suite("Slow readers")
struct SlowReaderTests {
    /// More than the socket buffers between the worker and the client hold (a few MB each on
    /// loopback), so the proxy has to stop reading from the server while the client pauses.
    private static let bodySize = 64 << 20

    @Test("a client that pauses for longer than the response timeout still gets the whole body")
    func pauseLongerThanTheResponseTimeout() async throws {
        let (received, closed) = try await Self.pausedDownload(response: "1s", clientIdle: "30s", pause: .milliseconds(2500))
        #expect(closed)
        // The head, then every byte of the body.
        #expect(received > Self.bodySize)
        #expect(received < Self.bodySize + 1000)
    }

    @Test("a client that takes no response byte for client_idle is disconnected")
    func clientIdleBoundsAClientThatDoesNotRead() async throws {
        let (received, closed) = try await Self.pausedDownload(response: "30s", clientIdle: "2s", pause: .seconds(5))
        #expect(closed)
        // What the socket buffers held when the proxy gave up, not the whole body.
        #expect(received < Self.bodySize)
    }

    /// Requests the body through a proxy with these timeouts, reads nothing for `pause`, then
    /// reads until the proxy closes (at most 60 s).
    private static func pausedDownload(
        response: String,
        clientIdle: String,
        pause: Duration
    ) async throws -> (received: Int, closed: Bool) {
        let yaml = { (ports: [Int]) in
            simpleConfig(
                ports,
                backendTimeouts: "{ connect: 1s, response: \(response) }",
                frontendExtra: "    timeouts: { client_idle: \(clientIdle) }"
            )
        }
        return try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: yaml) { harness in
            let reader = try await PausedReader.request(port: harness.port, path: "/bytes?n=\(bodySize)")
            try await Task.sleep(for: pause)
            return try await reader.readUntilClosed(timeout: .seconds(60))
        }
    }
}

/// A client that sends a request and reads nothing until told to: its receive buffer fills, and
/// the proxy's socket to it stops being writable.
private struct PausedReader {
    let channel: any Channel
    let counter: ByteCounter

    static func request(port: Int, path: String) async throws -> PausedReader {
        let counter = ByteCounter()
        let head = "GET \(path) HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.autoRead, value: false)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(CountingHandler(counter: counter, request: head))
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .get()
        return PausedReader(channel: channel, counter: counter)
    }

    /// Reads from now on; returns the bytes received in all and whether the server closed
    /// within `timeout`.
    func readUntilClosed(timeout: Duration) async throws -> (received: Int, closed: Bool) {
        // The proxy may have closed already, and NIO noticed: then there is nothing to read.
        try? await channel.setOption(.autoRead, value: true).get()
        channel.read()
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, !counter.closed {
            try await Task.sleep(for: .milliseconds(20))
        }
        let result = (counter.bytes, counter.closed)
        try? await channel.close().get()
        return result
    }
}

private final class ByteCounter: Sendable {
    private let state = NIOLockedValueBox((bytes: 0, closed: false))
    var bytes: Int { state.withLockedValue { $0.bytes } }
    var closed: Bool { state.withLockedValue { $0.closed } }
    func add(_ count: Int) { state.withLockedValue { $0.bytes += count } }
    func close() { state.withLockedValue { $0.closed = true } }
}

private final class CountingHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    let counter: ByteCounter
    let request: String
    init(counter: ByteCounter, request: String) {
        self.counter = counter
        self.request = request
    }

    /// Sends the request as soon as the connection is up, on the event loop: on a loaded machine
    /// a hop back to the test's task could come after the proxy's `client_idle` has run out.
    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(NIOAny(ByteBuffer(string: request)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        counter.add(unwrapInboundIn(data).readableBytes)
    }

    func channelInactive(context: ChannelHandlerContext) {
        counter.close()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
