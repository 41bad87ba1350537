import Crypto
import Foundation
import FulcrumBalancing
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import Testing
import X509

/// WebSocket through the proxy: a real echo server behind it, a real WebSocket client in
/// front, over plain TCP and over TLS on both hops.
@Suite("WebSocket tunnels", .serialized)
struct WebSocketTests {
    @Test("ws: messages of mixed sizes (up to 1 MB) come back intact and in order; the tunnel counts as in flight")
    func echoOverPlainTCP() async throws {
        let server = try await WebSocketEchoServer.start()
        defer { Task { try? await server.close() } }
        try await withProxy(workers: [], yaml: { _ in simpleConfig([server.port]) }) { harness async throws in
            let client = try await WebSocketTestClient.connect(port: harness.port)
            try await client.echoMessages(1_000)
            #expect(try await harness.proxy.stats()[0].servers[0].inFlight == 1)
            try await client.close()
            try await waitUntil(timeout: .seconds(15)) {
                try await harness.proxy.stats()[0].servers[0].inFlight == 0
            }
        }
    }

    @Test("wss → wss: TLS to the client and to the server, same echo")
    func echoOverTLSBothWays() async throws {
        try await echo(clientTLS: true, serverTLS: true, messages: 1_000)
    }

    @Test("ws → wss and wss → ws", arguments: [(false, true), (true, false)])
    func echoWithTLSOnOneSide(clientTLS: Bool, serverTLS: Bool) async throws {
        try await echo(clientTLS: clientTLS, serverTLS: serverTLS, messages: 20)
    }

    /// An echo through the proxy with TLS on either hop, with certificates made for the test.
    private func echo(clientTLS: Bool, serverTLS: Bool, messages: Int) async throws {
        let authority = try TestCertificateAuthority()
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try pemFile(try authority.issue(commonName: "localhost", names: ["localhost"]))
            .write(to: directory.appendingPathComponent("localhost.pem"), atomically: true, encoding: .utf8)
        let caFile = directory.appendingPathComponent("ca.pem")
        try authority.certificate.serializeAsPEM().pemString.write(to: caFile, atomically: true, encoding: .utf8)
        let server = try await WebSocketEchoServer.start(
            tls: serverTLS ? try authority.issue(commonName: "ws", names: ["ws.internal"]) : nil
        )
        defer { Task { try? await server.close() } }
        var yaml = simpleConfig([server.port], frontendExtra: clientTLS ? "    tls: { certificates: \"\(directory.path)\" }" : "")
        if serverTLS {
            yaml = yaml.replacingOccurrences(
                of: "address: \"127.0.0.1:\(server.port)\" }",
                with: "address: \"127.0.0.1:\(server.port)\", tls: { ca: \"\(caFile.path)\", sni: ws.internal } }"
            )
        }
        try await withProxy(workers: [], yaml: { [yaml] _ in yaml }) { harness async throws in
            let client = try await WebSocketTestClient.connect(port: harness.port, trusting: clientTLS ? authority : nil)
            try await client.echoMessages(messages)
            try await client.close()
        }
    }

    @Test("closing either side closes the other")
    func closePropagates() async throws {
        let server = try await WebSocketEchoServer.start()
        defer { Task { try? await server.close() } }
        try await withProxy(workers: [], yaml: { _ in simpleConfig([server.port]) }) { harness async throws in
            // The server closes: the client's connection ends.
            let first = try await WebSocketTestClient.connect(port: harness.port)
            try await first.echoMessages(3)
            try await first.send(text: "close-now")
            try await waitUntil(timeout: .seconds(15)) { !first.isActive }

            // The client goes away: the server's connection ends.
            let closedBefore = server.closedConnections
            let second = try await WebSocketTestClient.connect(port: harness.port)
            try await second.echoMessages(3)
            try await second.close()
            try await waitUntil(timeout: .seconds(15)) { server.closedConnections > closedBefore }
        }
    }

    @Test("a tunnel with traffic stays open; one idle for timeouts.tunnel is closed on both sides")
    func idleTunnelCloses() async throws {
        let server = try await WebSocketEchoServer.start()
        defer { Task { try? await server.close() } }
        let yaml = simpleConfig([server.port], backendTimeouts: "{ connect: 1s, response: 5s, tunnel: 400ms }")
        try await withProxy(workers: [], yaml: { _ in yaml }) { harness async throws in
            let client = try await WebSocketTestClient.connect(port: harness.port)
            // A message every 150 ms for twice the timeout keeps it open.
            for _ in 0..<6 {
                try await client.echoMessages(1, sizes: [10])
                try await Task.sleep(for: .milliseconds(150))
            }
            #expect(client.isActive)
            let closedBefore = server.closedConnections
            try await waitUntil(timeout: .seconds(15)) { !client.isActive }
            try await waitUntil(timeout: .seconds(15)) { server.closedConnections > closedBefore }
            try await waitUntil(timeout: .seconds(15)) {
                try await harness.proxy.stats()[0].servers[0].inFlight == 0
            }
        }
    }

    @Test("a server that refuses the upgrade has its answer passed on as a normal response")
    func refusedUpgrade() async throws {
        let server = try await WebSocketEchoServer.start(refuse: true)
        defer { Task { try? await server.close() } }
        try await withProxy(workers: [], yaml: { _ in simpleConfig([server.port]) }) { harness async throws in
            let request =
                "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            let (response, closed) = try await RawClient.exchange(port: harness.port, chunks: [request])
            #expect(response.hasPrefix("HTTP/1.1 426 Upgrade Required\r\n"), "\(response)")
            #expect(response.hasSuffix("\r\n\r\nno upgrade\n"), "\(response)")
            // An upgrade request ends its connection whatever the answer.
            #expect(closed)
        }
    }
}

/// A WebSocket echo server: every text or binary message comes back as is; the text
/// `close-now` makes it close the connection.
final class WebSocketEchoServer: Sendable {
    let port: Int
    private let channel: any Channel
    private let closed: NIOLockedValueBox<Int>

    /// Connections that have closed so far.
    var closedConnections: Int { closed.withLockedValue { $0 } }

    private init(channel: any Channel, closed: NIOLockedValueBox<Int>) {
        self.channel = channel
        self.port = channel.localAddress!.port!
        self.closed = closed
    }

    static func start(
        tls issued: (certificate: X509.Certificate, key: P256.Signing.PrivateKey)? = nil,
        refuse: Bool = false
    ) async throws -> WebSocketEchoServer {
        let context = try issued.map { issued in
            try NIOSSLContext(
                configuration: .makeServerConfiguration(
                    certificateChain: [.certificate(try NIOSSLCertificate(bytes: try issued.certificate.serializeAsPEM().derBytes, format: .der))],
                    privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(issued.key.derRepresentation), format: .der))
                )
            )
        }
        let closed = NIOLockedValueBox(0)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // Without it, Nagle and delayed ACKs cost every small echo 40 ms.
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let context {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    }
                    try channel.pipeline.syncOperations.addHandler(CloseCounter(closed: closed))
                    if refuse {
                        // A plain HTTP server that answers every request, upgrade or not, with 426.
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(RefusingResponder())
                        return
                    }
                    let upgrader = NIOWebSocketServerUpgrader(
                        maxFrameSize: WebSocketTestsLimits.maxFrame,
                        shouldUpgrade: { channel, _ in channel.eventLoop.makeSucceededFuture(HTTPHeaders()) },
                        upgradePipelineHandler: { channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(EchoHandler())
                            }
                        }
                    )
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in })
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return WebSocketEchoServer(channel: channel, closed: closed)
    }

    func close() async throws {
        try await channel.close()
    }

    private final class CloseCounter: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let closed: NIOLockedValueBox<Int>
        init(closed: NIOLockedValueBox<Int>) { self.closed = closed }
        func channelInactive(context: ChannelHandlerContext) {
            closed.withLockedValue { $0 += 1 }
            context.fireChannelInactive()
        }
    }

    private final class RefusingResponder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Length", value: "11")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .upgradeRequired, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "no upgrade\n")))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    private final class EchoHandler: ChannelInboundHandler {
        typealias InboundIn = WebSocketFrame
        typealias OutboundOut = WebSocketFrame

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = unwrapInboundIn(data)
            switch frame.opcode {
            // (Only a 9-byte frame can be the command: decoding every random text payload as a
            // String would cost the debug build seconds.)
            case .text where frame.length == 9 && String(buffer: frame.unmaskedData) == "close-now":
                context.close(promise: nil)
            case .text, .binary:
                context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: frame.opcode, data: frame.unmaskedData)), promise: nil)
            case .connectionClose:
                context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: ByteBuffer())))
                    .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            default:
                break
            }
        }
    }
}

enum WebSocketTestsLimits {
    static let maxFrame = 1 << 21
}

/// A WebSocket client (NIO's upgrader, masked frames) that sends messages and checks the echoes.
/// Used by one task at a time (it keeps the one iterator its inbound stream allows).
final class WebSocketTestClient: @unchecked Sendable {
    private let channel: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>
    private let raw: any Channel
    private var inbound: NIOAsyncChannelInboundStream<WebSocketFrame>.AsyncIterator

    private init(channel: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, raw: any Channel) {
        self.channel = channel
        self.raw = raw
        self.inbound = channel.inbound.makeAsyncIterator()
    }

    var isActive: Bool { raw.isActive }

    private enum Upgrade: Sendable {
        case websocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, any Channel)
        case refused
    }

    static func connect(port: Int, trusting authority: TestCertificateAuthority? = nil) async throws -> WebSocketTestClient {
        let tlsContext = try authority.map { authority in
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.trustRoots = .certificates([try authority.nioCertificate])
            return try NIOSSLContext(configuration: configuration)
        }
        let upgrade: EventLoopFuture<Upgrade> = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tlsContext, serverHostname: "localhost"))
                    }
                    let upgrader = NIOTypedWebSocketClientUpgrader<Upgrade>(
                        maxFrameSize: WebSocketTestsLimits.maxFrame,
                        upgradePipelineHandler: { channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                .websocket(try NIOAsyncChannel(wrappingChannelSynchronously: channel), channel)
                            }
                        }
                    )
                    var headers = HTTPHeaders()
                    headers.add(name: "Host", value: "localhost")
                    headers.add(name: "Content-Length", value: "0")
                    let configuration = NIOTypedHTTPClientUpgradeConfiguration<Upgrade>(
                        upgradeRequestHead: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/ws", headers: headers),
                        upgraders: [upgrader],
                        notUpgradingCompletionHandler: { channel in channel.eventLoop.makeSucceededFuture(.refused) }
                    )
                    return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(
                        configuration: .init(upgradeConfiguration: configuration)
                    )
                }
            }
        switch try await upgrade.get() {
        case .websocket(let channel, let raw):
            return WebSocketTestClient(channel: channel, raw: raw)
        case .refused:
            throw ChannelError.operationUnsupported
        }
    }

    /// Sends `count` messages of mixed sizes (1 B … 1 MB), each checked against its echo.
    /// With `sizes`, the messages cycle through those sizes instead.
    func echoMessages(_ count: Int, sizes chosen: [Int]? = nil) async throws {
        let sizes = [1, 125, 126, 1000, 65_535, 65_536, 10_000, 300_000, 1_000_000]
        // One pseudo-random pattern; each message is a slice of it at its own offset.
        let pattern = Self.randomPattern
        for index in 0..<count {
            // Small and medium messages, one of 300 kB halfway and one of 1 MB last.
            let size =
                chosen.map { $0[index % $0.count] }
                ?? (index == count - 1 ? sizes[8] : index == count / 2 ? sizes[7] : sizes[index % 7])
            let payload = pattern.getSlice(at: index % 256, length: size)!
            let opcode: WebSocketOpcode = index % 2 == 0 ? .binary : .text
            let frame = WebSocketFrame(fin: true, opcode: opcode, maskKey: .random(), data: payload)
            try await channel.outbound.write(frame)
            guard let echo = try await inbound.next() else {
                Issue.record("the connection ended after \(index) messages")
                return
            }
            #expect(echo.opcode == opcode)
            #expect(echo.unmaskedData == payload, "message \(index) (\(size) bytes) came back different")
        }
    }

    /// One pseudo-random megabyte (+256), made once, eight bytes at a time (byte by byte costs
    /// the debug build a second).
    private static let randomPattern: ByteBuffer = {
        var generator = SystemRandomNumberGenerator()
        var buffer = ByteBuffer()
        buffer.reserveCapacity(1_000_256)
        for _ in 0..<(1_000_256 / 8) {
            buffer.writeInteger(generator.next() as UInt64)
        }
        return buffer
    }()

    func send(text: String) async throws {
        try await channel.outbound.write(WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: ByteBuffer(string: text)))
    }

    func close() async throws {
        try await raw.close()
    }
}
