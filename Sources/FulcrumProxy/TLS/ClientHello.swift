import NIOCore

/// What is read of a client's TLS ClientHello before TLS begins: the server name it asks for
/// (SNI, RFC 6066) and the application protocols it offers (ALPN, RFC 7301). A TCP frontend
/// routes by them (`sni` and `alpn` ACLs: HAProxy's `req.ssl_sni` and `req.ssl_alpn`); a TLS
/// frontend chooses its certificate by them (`ClientHelloHandler`).
///
/// NIOTLS's `SNIHandler` reads the server name only, and its parser is internal, so this one
/// follows it and reads both: the hello must be in the connection's first TLS record (as
/// NIOTLS, HAProxy and Envoy's TLS inspector require), at most 16 KiB. Anything else, or a
/// malformed hello, is not a hello: a TCP connection is routed without a name or protocols, and
/// its bytes go to the server as they are.
struct ClientHello: Equatable, Sendable {
    /// The host name of the `server_name` extension, if it had one.
    var serverName: String?
    /// The protocols of the `application_layer_protocol_negotiation` extension, in the
    /// client's order.
    var applicationProtocols: [String] = []

    enum ReadResult: Equatable {
        /// The bytes so far are the start of a handshake record: wait for more.
        case incomplete
        /// Not a TLS ClientHello (or not one that can be read).
        case notHello
        case hello(ClientHello)
    }

    private static let recordHeaderLength = 5
    private static let handshakeContentType: UInt8 = 22
    private static let clientHelloType: UInt8 = 1
    private static let serverNameExtension: UInt16 = 0
    private static let applicationProtocolExtension: UInt16 = 16
    /// TLS's largest plaintext record (RFC 8446 §5.1).
    static let maximumRecordLength = 16384

    private struct Malformed: Error {}

    /// Reads the hello from the connection's first bytes.
    static func read(_ bytes: ByteBuffer) -> ReadResult {
        var buffer = bytes
        guard buffer.readableBytes >= recordHeaderLength else {
            // As far as they go, they must look like a handshake record's header.
            if let type = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self), type != handshakeContentType {
                return .notHello
            }
            if buffer.readableBytes >= 2, buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self) != 3 {
                return .notHello
            }
            return .incomplete
        }
        let type: UInt8 = buffer.readInteger()!
        let majorVersion: UInt8 = buffer.readInteger()!
        buffer.moveReaderIndex(forwardBy: 1)
        let length = Int(buffer.readInteger(as: UInt16.self)!)
        guard type == handshakeContentType, majorVersion == 3, length <= maximumRecordLength else { return .notHello }
        guard buffer.readableBytes >= length else { return .incomplete }
        var record = buffer.getSlice(at: buffer.readerIndex, length: length)!
        do {
            return .hello(try parseHandshake(&record))
        } catch {
            return .notHello
        }
    }

    private static func parseHandshake(_ record: inout ByteBuffer) throws -> ClientHello {
        // The handshake header: type (1) and a 24-bit length; the whole hello in this record.
        guard let typeAndLength = record.readInteger(as: UInt32.self), typeAndLength >> 24 == clientHelloType,
            Int(typeAndLength & 0x00FF_FFFF) == record.readableBytes
        else { throw Malformed() }
        // Version (2) and random (32), then the session id, cipher suites and compression
        // methods, each with its length (RFC 8446 §4.1.2).
        try skip(34, in: &record)
        try skip(Int(try read(UInt8.self, from: &record)), in: &record)
        try skip(Int(try read(UInt16.self, from: &record)), in: &record)
        try skip(Int(try read(UInt8.self, from: &record)), in: &record)
        var hello = ClientHello()
        // A hello without extensions (TLS 1.0 and older may send none) names nothing.
        guard record.readableBytes > 0 else { return hello }
        var extensions = try slice(Int(try read(UInt16.self, from: &record)), of: &record)
        while extensions.readableBytes > 0 {
            let type = try read(UInt16.self, from: &extensions)
            var body = try slice(Int(try read(UInt16.self, from: &extensions)), of: &extensions)
            switch type {
            case serverNameExtension:
                hello.serverName = try parseServerName(&body)
            case applicationProtocolExtension:
                hello.applicationProtocols = try parseApplicationProtocols(&body)
            default:
                break
            }
        }
        return hello
    }

    /// `ServerNameList`: the first `host_name` entry (RFC 6066 §3 allows one per type).
    private static func parseServerName(_ body: inout ByteBuffer) throws -> String? {
        var list = try slice(Int(try read(UInt16.self, from: &body)), of: &body)
        while list.readableBytes > 0 {
            let nameType = try read(UInt8.self, from: &list)
            var name = try slice(Int(try read(UInt16.self, from: &list)), of: &list)
            guard nameType == 0 else { continue }
            guard let text = name.readString(length: name.readableBytes), !text.isEmpty,
                text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
            else { throw Malformed() }
            return text
        }
        return nil
    }

    /// `ProtocolNameList`: each name a length byte and 1…255 bytes.
    private static func parseApplicationProtocols(_ body: inout ByteBuffer) throws -> [String] {
        var list = try slice(Int(try read(UInt16.self, from: &body)), of: &body)
        var protocols: [String] = []
        while list.readableBytes > 0 {
            var name = try slice(Int(try read(UInt8.self, from: &list)), of: &list)
            guard name.readableBytes > 0 else { throw Malformed() }
            protocols.append(name.readString(length: name.readableBytes)!)
        }
        return protocols
    }

    private static func read<Integer: FixedWidthInteger>(_: Integer.Type, from buffer: inout ByteBuffer) throws -> Integer {
        guard let value = buffer.readInteger(as: Integer.self) else { throw Malformed() }
        return value
    }

    private static func skip(_ count: Int, in buffer: inout ByteBuffer) throws {
        guard buffer.readableBytes >= count else { throw Malformed() }
        buffer.moveReaderIndex(forwardBy: count)
    }

    /// The next `count` bytes as a buffer of their own (so a length inside cannot reach past
    /// them), which `buffer` moves past.
    private static func slice(_ count: Int, of buffer: inout ByteBuffer) throws -> ByteBuffer {
        guard let part = buffer.readSlice(length: count) else { throw Malformed() }
        return part
    }
}
