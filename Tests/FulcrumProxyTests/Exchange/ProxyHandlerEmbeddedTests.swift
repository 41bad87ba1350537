import FulcrumConfig
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTP2
import Testing

@testable import FulcrumProxy

/// The client-side handlers driven through `EmbeddedChannel`, as swift-nio tests its own
/// HTTP handlers: bytes in, bytes out, no socket. Only answers made here are covered (a
/// server connection needs a real loop: the end-to-end suites cover forwarding).
@Suite("Client handlers on an embedded channel")
struct ProxyHandlerEmbeddedTests {
    static let yaml = """
        global:
          workers: 1
          log: { level: warning, access: off }
        frontends:
          - name: web
            listen: ["127.0.0.1:8080"]
            timeouts: { client_idle: 5s, header_read: 2s }
            acls:
              admin: { path_prefix: /admin }
              moved: { path: /old }
            rules:
              - { deny: 403, if: admin }
              - { redirect: { to: "https://{host}/new{query}" }, if: moved }
            default_backend: app
        backends:
          - name: app
            servers:
              - { name: w1, address: "127.0.0.1:9" }
        """

    /// An HTTP/1.1 client pipeline as `ClientPipeline` builds it: the guard, NIO's request
    /// decoder and the proxy handler, on an embedded loop.
    static func http1Channel() throws -> (EmbeddedChannel, ClientConnectionGuard) {
        // (The guard's timers follow the real clock, not the embedded loop's: the end-to-end
        // suites test them.)
        let channel = EmbeddedChannel()
        let snapshot = try RuntimeSnapshot(config: try ConfigLoader.load(yaml: yaml))
        let loop = LoopContext(
            eventLoop: channel.embeddedEventLoop,
            snapshot: snapshot,
            accessLog: nil,
            crawlerVerifier: CrawlerVerifier(),
            logger: Logger(label: "embedded-test")
        )
        let connectionGuard = ClientConnectionGuard(clientIdleTimeout: .seconds(5), headerReadTimeout: .seconds(2))
        let proxy = ProxyHandler(
            loop: loop,
            frontendName: "web",
            isSecure: false,
            writer: HTTP1ResponseWriter(allocator: channel.allocator),
            connectionGuard: connectionGuard,
            clientIdle: .seconds(5),
            client: ClientInfo(peer: channel.remoteAddress, isSecure: false)
        )
        connectionGuard.proxy = proxy
        try channel.pipeline.syncOperations.addHandlers([
            connectionGuard,
            ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)),
            proxy,
        ])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        return (channel, connectionGuard)
    }

    /// Everything written to the client so far, as text (the deferred flush runs first).
    static func written(_ channel: EmbeddedChannel) throws -> String {
        channel.embeddedEventLoop.run()
        var text = ""
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            text += buffer.readString(length: buffer.readableBytes) ?? ""
        }
        return text
    }

    @Test("a denied request is answered with the frontend's error page; the connection stays open")
    func deny() throws {
        let (channel, _) = try Self.http1Channel()
        try channel.writeInbound(ByteBuffer(string: "GET /admin/users HTTP/1.1\r\nHost: shop.test\r\n\r\n"))
        let response = try Self.written(channel)
        #expect(response.hasPrefix("HTTP/1.1 403 Forbidden\r\n"))
        #expect(!response.lowercased().contains("connection: close"))
        #expect(channel.isActive)
        _ = try channel.finish()
    }

    @Test("pipelined requests are answered in order, in one write each round")
    func pipelined() throws {
        let (channel, _) = try Self.http1Channel()
        try channel.writeInbound(
            ByteBuffer(
                string:
                    "GET /admin HTTP/1.1\r\nHost: a\r\n\r\nGET /old?x=1 HTTP/1.1\r\nHost: shop.test\r\n\r\n"
            )
        )
        let responses = try Self.written(channel)
        let first = try #require(responses.range(of: "HTTP/1.1 403"))
        let second = try #require(responses.range(of: "HTTP/1.1 302"))
        #expect(first.lowerBound < second.lowerBound)
        #expect(responses.contains("location: https://shop.test/new?x=1\r\n"))
        _ = try channel.finish()
    }

    @Test("a malformed request gets 400 and the connection closes")
    func malformed() throws {
        let (channel, _) = try Self.http1Channel()
        try? channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"))
        let response = try Self.written(channel)
        #expect(response.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(response.lowercased().contains("connection: close"))
        #expect(!channel.isActive)
    }

    @Test("a graceful shutdown closes an idle connection at once")
    func quiesce() throws {
        let (channel, _) = try Self.http1Channel()
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
    }

    @Test("on an HTTP/2 stream, the answer leaves as the stream's frames and ends the stream")
    func http2Stream() throws {
        let channel = EmbeddedChannel()
        let snapshot = try RuntimeSnapshot(config: try ConfigLoader.load(yaml: Self.yaml))
        let loop = LoopContext(
            eventLoop: channel.embeddedEventLoop,
            snapshot: snapshot,
            accessLog: nil,
            crawlerVerifier: CrawlerVerifier(),
            logger: Logger(label: "embedded-test")
        )
        let stream = HTTP2StreamID(3)
        try channel.pipeline.syncOperations.addHandler(
            ProxyHandler(
                loop: loop,
                frontendName: "web",
                isSecure: true,
                writer: HTTP2StreamWriter(streamID: stream, strictTransportSecurity: "max-age=60"),
                connectionGuard: nil,
                clientIdle: .seconds(60),
                client: ClientInfo(peer: channel.remoteAddress, isSecure: true)
            )
        )
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8443)).wait()
        let head = HTTPRequestHead(version: HTTPVersion(major: 2, minor: 0), method: .GET, uri: "/admin", headers: ["host": "a"])
        try channel.writeInbound(HTTPServerRequestPart.head(head))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        channel.embeddedEventLoop.run()
        let headers = try channel.readOutbound(as: HTTP2Frame.self)
        #expect(headers?.streamID == stream)
        guard case .headers(let block)? = headers?.payload else {
            Issue.record("no HEADERS frame")
            return
        }
        #expect(block.headers.first(name: ":status") == "403")
        #expect(block.headers.first(name: "strict-transport-security") == "max-age=60")
        #expect(!block.endStream)
        // The body's frame ends the stream: no empty DATA frame after it.
        guard case .data(let body)? = try channel.readOutbound(as: HTTP2Frame.self)?.payload else {
            Issue.record("no body")
            return
        }
        #expect(body.data.readableBytes > 0 && body.endStream)
        #expect(try channel.readOutbound(as: HTTP2Frame.self) == nil)  // ended normally, not reset
        #expect(channel.isActive)
        _ = try channel.finish()
    }
}
