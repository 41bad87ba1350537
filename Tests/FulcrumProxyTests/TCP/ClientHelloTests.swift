import NIOCore
import NIOEmbedded
import NIOSSL
import Testing

@testable import FulcrumProxy

/// Reading the server name and the offered protocols from real ClientHellos (BoringSSL's, as
/// NIOSSL sends them), fed whole, in pieces and damaged.
@Suite("ClientHello reader")
struct ClientHelloTests {
    /// The first flight of a NIOSSL client: its ClientHello record.
    static func clientHello(serverName: String?, protocols: [String], maximumVersion: TLSVersion = .tlsv13) throws -> ByteBuffer {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.applicationProtocols = protocols
        configuration.maximumTLSVersion = maximumVersion
        let context = try NIOSSLContext(configuration: configuration)
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: serverName))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
        var hello = channel.allocator.buffer(capacity: 1024)
        while var part = try channel.readOutbound(as: ByteBuffer.self) {
            hello.writeBuffer(&part)
        }
        return hello
    }

    @Test("the server name and the offered protocols, in the client's order; TLS 1.2 and 1.3 alike")
    func readsBoth() throws {
        for version in [TLSVersion.tlsv12, .tlsv13] {
            let bytes = try Self.clientHello(serverName: "db.example.com", protocols: ["h2", "http/1.1"], maximumVersion: version)
            #expect(ClientHello.read(bytes) == .hello(ClientHello(serverName: "db.example.com", applicationProtocols: ["h2", "http/1.1"])))
        }
    }

    @Test("a hello without SNI and ALPN names nothing")
    func readsNeither() throws {
        let bytes = try Self.clientHello(serverName: nil, protocols: [])
        #expect(ClientHello.read(bytes) == .hello(ClientHello()))
    }

    @Test("every prefix of a hello waits for more; the whole hello, and what follows it, is read")
    func inPieces() throws {
        var bytes = try Self.clientHello(serverName: "a.test", protocols: ["mqtt"])
        for length in 0..<bytes.readableBytes {
            #expect(ClientHello.read(bytes.getSlice(at: 0, length: length)!) == .incomplete, "\(length) bytes")
        }
        bytes.writeString("early data of the next record")
        #expect(ClientHello.read(bytes) == .hello(ClientHello(serverName: "a.test", applicationProtocols: ["mqtt"])))
    }

    @Test(
        "bytes that are not a TLS handshake record are not a hello",
        arguments: ["GET / HTTP/1.1\r\n", "\u{16}\u{02}", "\u{17}\u{03}\u{03}\u{00}\u{05}hello", "*1\r\n$4\r\nPING\r\n"]
    )
    func notTLS(text: String) {
        #expect(ClientHello.read(ByteBuffer(string: text)) == .notHello)
    }

    @Test("a record longer than TLS allows, or a hello whose lengths disagree, is not read")
    func malformed() throws {
        let hello = try Self.clientHello(serverName: "a.test", protocols: ["h2"])
        // The record header says 16385 bytes.
        var tooLong = hello
        tooLong.setInteger(UInt16(ClientHello.maximumRecordLength + 1), at: 3)
        #expect(ClientHello.read(tooLong) == .notHello)
        // The handshake's own length is one byte more than the record holds.
        var disagreeing = hello
        disagreeing.setInteger(disagreeing.getInteger(at: 8, as: UInt8.self)! &+ 1, at: 8)
        #expect(ClientHello.read(disagreeing) == .notHello)
        // Every single byte changed in turn: never a crash, and never a read past the record.
        for index in 0..<hello.readableBytes {
            var damaged = hello
            damaged.setInteger(damaged.getInteger(at: index, as: UInt8.self)! ^ 0xFF, at: index)
            _ = ClientHello.read(damaged)
        }
    }
}
