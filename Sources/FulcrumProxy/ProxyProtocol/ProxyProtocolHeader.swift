import FulcrumConfig
import NIOCore

/// A PROXY protocol header (HAProxy's `proxy-protocol.txt`, versions 1 and 2): the addresses
/// of the connection a proxy in front accepted, sent before anything else on the connection
/// it opened to the next hop.
///
/// A pure value: `parse` reads one from the bytes a connection received so far, and
/// `encoded` writes one. No library in Fulcrum's package set speaks the protocol, and it is a
/// few dozen lines.
struct ProxyProtocolHeader: Equatable, Sendable {
    /// The client's address and the address it connected to, or nil: the connection is the
    /// proxy's own (v2 `LOCAL`, a health check; v1 `UNKNOWN`; or a family other than TCP over
    /// IPv4 or IPv6), and its real addresses stand.
    var source: SocketAddress?
    var destination: SocketAddress?

    /// What the bytes received so far hold.
    enum ParseResult: Equatable {
        /// A header, and how many bytes it took.
        case header(ProxyProtocolHeader, length: Int)
        /// The start of one: more bytes are needed.
        case incomplete
        /// Not a valid header, and why.
        case invalid(String)
    }

    /// v2's first twelve bytes.
    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    static let v1Prefix = Array("PROXY ".utf8)
    /// v1's longest line, CRLF included (the specification's figure).
    static let v1MaximumLength = 107
    /// The most a v2 header may carry after its first 16 bytes: addresses and TLVs. The
    /// specification allows 65,535; HAProxy allows what fits its buffer. Real senders (HAProxy,
    /// cloud load balancers) send well under this.
    static let v2MaximumPayload = 4096

    /// Reads a header at the start of `bytes` (the connection's first bytes).
    static func parse(_ bytes: ByteBufferView) -> ParseResult {
        guard let first = bytes.first else { return .incomplete }
        if first == v1Prefix[0] {
            return parseVersion1(bytes)
        }
        if first == v2Signature[0] {
            return parseVersion2(bytes)
        }
        return .invalid("not a PROXY protocol header")
    }

    /// A header held by reference, where many values are kept and most have none.
    final class Reference: Sendable {
        let header: ProxyProtocolHeader

        init(_ header: ProxyProtocolHeader) {
            self.header = header
        }
    }

    // MARK: Version 1

    private static func parseVersion1(_ bytes: ByteBufferView) -> ParseResult {
        let prefixSeen = min(bytes.count, v1Prefix.count)
        guard bytes.prefix(prefixSeen).elementsEqual(v1Prefix.prefix(prefixSeen)) else {
            return .invalid("not a PROXY protocol header")
        }
        guard let lineFeed = bytes.prefix(v1MaximumLength).firstIndex(of: UInt8(ascii: "\n")) else {
            return bytes.count >= v1MaximumLength ? .invalid("a v1 header longer than 107 bytes") : .incomplete
        }
        let length = lineFeed - bytes.startIndex + 1
        guard length >= 2, bytes[lineFeed - 1] == UInt8(ascii: "\r") else {
            return .invalid("a v1 header not ended by CRLF")
        }
        let line = String(decoding: bytes[bytes.startIndex..<(lineFeed - 1)], as: UTF8.self)
        let fields = line.split(separator: " ", omittingEmptySubsequences: false)
        // "PROXY UNKNOWN" may be followed by anything, which the receiver ignores.
        if fields.count >= 2, fields[1] == "UNKNOWN" {
            return .header(ProxyProtocolHeader(), length: length)
        }
        guard fields.count == 6, fields[1] == "TCP4" || fields[1] == "TCP6" else {
            return .invalid("a v1 header must be PROXY TCP4|TCP6|UNKNOWN source destination ports")
        }
        guard let sourcePort = port(fields[4]), let destinationPort = port(fields[5]),
            let source = try? SocketAddress(ipAddress: String(fields[2]), port: sourcePort),
            let destination = try? SocketAddress(ipAddress: String(fields[3]), port: destinationPort),
            source.protocol == destination.protocol,
            (source.protocol == .inet) == (fields[1] == "TCP4")
        else {
            return .invalid("a v1 header with invalid addresses or ports")
        }
        return .header(ProxyProtocolHeader(source: source, destination: destination), length: length)
    }

    /// A port as v1 writes it: decimal, no sign, no leading zero.
    private static func port(_ text: Substring) -> Int? {
        guard let port = Int(text), (0...65535).contains(port), String(port) == text else { return nil }
        return port
    }

    // MARK: Version 2

    private static func parseVersion2(_ bytes: ByteBufferView) -> ParseResult {
        let signatureSeen = min(bytes.count, v2Signature.count)
        guard bytes.prefix(signatureSeen).elementsEqual(v2Signature.prefix(signatureSeen)) else {
            return .invalid("not a PROXY protocol header")
        }
        guard bytes.count >= 16 else { return .incomplete }
        let start = bytes.startIndex
        let versionAndCommand = bytes[start + 12]
        let family = bytes[start + 13]
        let payloadLength = Int(bytes[start + 14]) << 8 | Int(bytes[start + 15])
        guard versionAndCommand >> 4 == 2 else { return .invalid("a v2 header of an unknown version") }
        guard payloadLength <= v2MaximumPayload else {
            return .invalid("a v2 header longer than \(16 + v2MaximumPayload) bytes")
        }
        guard bytes.count >= 16 + payloadLength else { return .incomplete }
        let length = 16 + payloadLength
        switch versionAndCommand & 0x0F {
        case 0x0:
            // LOCAL: the proxy's own connection (a health check); addresses, if any, are ignored.
            return .header(ProxyProtocolHeader(), length: length)
        case 0x1:
            break
        default:
            return .invalid("a v2 header with an unknown command")
        }
        let payload = bytes[(start + 16)..<(start + length)]
        switch family {
        case 0x11:  // TCP over IPv4
            guard payloadLength >= 12 else { return .invalid("a v2 IPv4 header too short for its addresses") }
            return .header(addresses(payload, addressLength: 4), length: length)
        case 0x21:  // TCP over IPv6
            guard payloadLength >= 36 else { return .invalid("a v2 IPv6 header too short for its addresses") }
            return .header(addresses(payload, addressLength: 16), length: length)
        default:
            // UNSPEC, UDP or a Unix socket: nothing an HTTP or TCP proxy can use as a client
            // address; the receiver keeps the connection's own (as HAProxy does for UNSPEC).
            return .header(ProxyProtocolHeader(), length: length)
        }
    }

    /// Source address, destination address, source port, destination port: v2's order.
    private static func addresses(_ payload: ByteBufferView.SubSequence, addressLength: Int) -> ProxyProtocolHeader {
        let start = payload.startIndex
        func address(at offset: Int, portAt portOffset: Int) -> SocketAddress? {
            var packed = ByteBuffer()
            packed.writeBytes(payload[(start + offset)..<(start + offset + addressLength)])
            let port = Int(payload[start + portOffset]) << 8 | Int(payload[start + portOffset + 1])
            return try? SocketAddress(packedIPAddress: packed, port: port)
        }
        return ProxyProtocolHeader(
            source: address(at: 0, portAt: 2 * addressLength),
            destination: address(at: addressLength, portAt: 2 * addressLength + 2)
        )
    }

    // MARK: Writing

    /// The header in `version`'s form. Without both addresses, or with addresses of two
    /// families, it says the connection is the sender's own (v1 `UNKNOWN`, v2 `LOCAL`).
    func encoded(_ version: ProxyProtocolVersion) -> ByteBuffer {
        var buffer = ByteBuffer()
        switch version {
        case .v1: writeVersion1(into: &buffer)
        case .v2: writeVersion2(into: &buffer)
        }
        return buffer
    }

    /// v2's family byte and both addresses' bytes, when both are IPv4 or both IPv6.
    private var addressBytes: (family: UInt8, source: [UInt8], destination: [UInt8])? {
        guard let from = source?.addressBytes, let to = destination?.addressBytes, from.count == to.count else {
            return nil
        }
        return (from.count == 4 ? 0x11 : 0x21, from, to)
    }

    private func writeVersion1(into buffer: inout ByteBuffer) {
        guard let (family, _, _) = addressBytes, let source, let destination,
            let sourceText = source.ipAddress, let destinationText = destination.ipAddress,
            let sourcePort = source.port, let destinationPort = destination.port
        else {
            buffer.writeString("PROXY UNKNOWN\r\n")
            return
        }
        let protocolName = family == 0x11 ? "TCP4" : "TCP6"
        buffer.writeString("PROXY \(protocolName) \(sourceText) \(destinationText) \(sourcePort) \(destinationPort)\r\n")
    }

    private func writeVersion2(into buffer: inout ByteBuffer) {
        buffer.writeBytes(Self.v2Signature)
        guard let (family, sourceBytes, destinationBytes) = addressBytes,
            let sourcePort = source?.port, let destinationPort = destination?.port
        else {
            // LOCAL, no addresses.
            buffer.writeBytes([0x20, 0x00, 0x00, 0x00])
            return
        }
        buffer.writeBytes([0x21, family])
        buffer.writeInteger(UInt16(2 * sourceBytes.count + 4))
        buffer.writeBytes(sourceBytes)
        buffer.writeBytes(destinationBytes)
        buffer.writeInteger(UInt16(sourcePort))
        buffer.writeInteger(UInt16(destinationPort))
    }
}
