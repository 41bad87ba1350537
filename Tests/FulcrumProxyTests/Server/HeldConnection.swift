import NIOCore
import NIOPosix

/// A raw client connection a test keeps open: to fill a connection cap or the descriptor
/// table, and to see whether, and when, the proxy answers on it.
final class HeldConnection: Sendable {
    private let channel: any Channel
    private let received: CollectingHandler.Box

    private init(channel: any Channel, received: CollectingHandler.Box) {
        self.channel = channel
        self.received = received
    }

    /// Connects: the kernel completes the handshake even while the proxy is not accepting, so
    /// this returns once the connection is in the listener's backlog. `source`: the local
    /// address to connect from (another loopback address, say), if not the system's choice.
    static func open(port: Int, from source: String? = nil) async throws -> HeldConnection {
        let received = CollectingHandler.Box()
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        if let source {
            bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: source, port: 0))
        }
        let channel =
            try await bootstrap
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(CollectingHandler(box: received))
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .get()
        return HeldConnection(channel: channel, received: received)
    }

    /// Sends a GET for `path`; with `closing`, asks the server to close after answering.
    func sendRequest(_ path: String = "/work", closing: Bool = false) async throws {
        let connection = closing ? "Connection: close\r\n" : ""
        try await channel.writeAndFlush(ByteBuffer(string: "GET \(path) HTTP/1.1\r\nHost: test\r\n\(connection)\r\n")).get()
    }

    /// Sends `text` as it is.
    func send(raw text: String) async throws {
        try await send(bytes: ByteBuffer(string: text))
    }

    /// Sends `bytes` as they are.
    func send(bytes: ByteBuffer) async throws {
        try await channel.writeAndFlush(bytes).get()
    }

    /// What the proxy sent so far.
    var text: String { received.text }

    /// Whether the server has closed the connection.
    var closedByServer: Bool { received.closed }

    /// Whether a response's status line arrives within `timeout`.
    func waitForResponse(timeout: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if text.hasPrefix("HTTP/1.1 ") { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return text.hasPrefix("HTTP/1.1 ")
    }

    /// Closes the sending side only (a TCP half-close): the peer reads the end of input.
    func closeOutput() async throws {
        try await channel.close(mode: .output).get()
    }

    func close() async {
        try? await channel.close().get()
    }
}
