import NIOCore
import NIOEmbedded
import Testing

@testable import FulcrumProxy

/// The two ends of a WebSocket tunnel on embedded channels that share one loop.
@Suite("Tunnel ends on embedded channels")
struct TunnelHandlerEmbeddedTests {
    static func pair() throws -> (client: EmbeddedChannel, server: EmbeddedChannel, ended: () -> TunnelHandler.Totals?) {
        let loop = EmbeddedEventLoop()
        let client = EmbeddedChannel(loop: loop)
        let server = EmbeddedChannel(loop: loop)
        var ended: TunnelHandler.Totals?
        let (clientEnd, serverEnd) = TunnelHandler.pair(idleTimeout: .seconds(60)) { ended = $0 }
        try client.pipeline.syncOperations.addHandler(clientEnd)
        try server.pipeline.syncOperations.addHandler(serverEnd)
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        clientEnd.start()
        return (client, server, { ended })
    }

    @Test("bytes cross both ways, as they are")
    func relays() throws {
        let (client, server, _) = try Self.pair()
        try client.writeInbound(ByteBuffer(string: "ping"))
        #expect(try server.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) } == "ping")
        try server.writeInbound(ByteBuffer(string: "pong"))
        #expect(try client.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) } == "pong")
        _ = try? client.finish()
        _ = try? server.finish()
    }

    @Test("one side closing closes the other, and the tunnel ends once, with the bytes each way")
    func closes() throws {
        let (client, server, ended) = try Self.pair()
        try client.writeInbound(ByteBuffer(string: "ping"))
        try server.writeInbound(ByteBuffer(string: "pong!"))
        #expect(ended() == nil)
        try client.close().wait()
        client.embeddedEventLoop.run()
        #expect(!server.isActive)
        #expect(ended()?.fromClient == 4)
        #expect(ended()?.fromServer == 5)
    }
}
