import FulcrumConfig
import NIOCore
import Testing

@testable import FulcrumProxy

/// The PROXY protocol's pure core: headers read from a connection's first bytes, and written
/// for servers, in both versions (HAProxy's proxy-protocol.txt; the byte layouts below are its
/// examples' shape).
@Suite("PROXY protocol headers")
struct ProxyProtocolHeaderTests {
    static func parse(_ bytes: [UInt8]) -> ProxyProtocolHeader.ParseResult {
        ProxyProtocolHeader.parse(ByteBuffer(bytes: bytes).readableBytesView)
    }

    static func parse(_ text: String) -> ProxyProtocolHeader.ParseResult {
        parse(Array(text.utf8))
    }

    static func header(
        _ source: String,
        _ sourcePort: Int,
        _ destination: String,
        _ destinationPort: Int
    ) throws
        -> ProxyProtocolHeader
    {
        ProxyProtocolHeader(
            source: try SocketAddress(ipAddress: source, port: sourcePort),
            destination: try SocketAddress(ipAddress: destination, port: destinationPort)
        )
    }

    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    // MARK: Version 1

    @Test("a v1 TCP4 line, and the bytes after it left alone")
    func version1IPv4() throws {
        let line = "PROXY TCP4 192.0.2.7 198.51.100.2 56324 443\r\n"
        let expected = try Self.header("192.0.2.7", 56324, "198.51.100.2", 443)
        #expect(Self.parse(line + "GET / HTTP/1.1\r\n") == .header(expected, length: line.utf8.count))
    }

    @Test("a v1 TCP6 line")
    func version1IPv6() throws {
        let line = "PROXY TCP6 2001:db8::7 2001:db8::1 40000 8080\r\n"
        #expect(Self.parse(line) == .header(try Self.header("2001:db8::7", 40000, "2001:db8::1", 8080), length: line.utf8.count))
    }

    @Test("v1 UNKNOWN: the connection's own addresses stand")
    func version1Unknown() {
        #expect(Self.parse("PROXY UNKNOWN\r\n") == .header(ProxyProtocolHeader(), length: 15))
        #expect(Self.parse("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n") == .header(ProxyProtocolHeader(), length: 35))
    }

    @Test("a v1 line in pieces is incomplete until its CRLF", arguments: ["P", "PROXY", "PROXY TCP4 192.0.2.7", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"])
    func version1Incomplete(prefix: String) {
        #expect(Self.parse(prefix) == .incomplete)
    }

    @Test(
        "malformed v1 lines are refused",
        arguments: [
            "PROXY TCP4 192.0.2.7 198.51.100.2 56324\r\n",  // a port missing
            "PROXY TCP4 192.0.2.7 198.51.100.2 56324 443 x\r\n",  // a field too many
            "PROXY TCP4  192.0.2.7 198.51.100.2 56324 443\r\n",  // two spaces
            "PROXY TCP4 192.0.2.7 198.51.100.2 056324 443\r\n",  // a leading zero
            "PROXY TCP4 192.0.2.7 198.51.100.2 65536 443\r\n",  // a port out of range
            "PROXY TCP4 192.0.2.300 198.51.100.2 1 443\r\n",  // not an address
            "PROXY TCP4 2001:db8::7 2001:db8::1 1 443\r\n",  // IPv6 in a TCP4 line
            "PROXY TCP6 192.0.2.7 2001:db8::1 1 443\r\n",  // two families
            "PROXY UDP4 192.0.2.7 198.51.100.2 1 443\r\n",  // not TCP
            "PROXY TCP4 192.0.2.7 198.51.100.2 1 443\n",  // no CR
            "PROXX TCP4 192.0.2.7 198.51.100.2 1 443\r\n",  // not the prefix
            "GET / HTTP/1.1\r\nHost: a\r\n\r\n",  // HTTP
        ]
    )
    func version1Malformed(line: String) {
        guard case .invalid = Self.parse(line) else {
            Issue.record("accepted \(line.debugDescription)")
            return
        }
    }

    @Test("a v1 line with no CRLF in its first 107 bytes is refused, not waited for")
    func version1TooLong() {
        let endless = "PROXY TCP6 " + String(repeating: "1", count: 100)
        #expect(Self.parse(String(endless.prefix(106))) == .incomplete)
        guard case .invalid = Self.parse(endless) else {
            Issue.record("waited for more")
            return
        }
    }

    // MARK: Version 2

    @Test("a v2 PROXY header over TCP4, with a TLV after the addresses")
    func version2IPv4() throws {
        let bytes =
            Self.v2Signature + [0x21, 0x11, 0x00, 0x12]
            + [192, 0, 2, 7] + [198, 51, 100, 2] + [0xDC, 0x04] + [0x01, 0xBB]
            + [0x04, 0x00, 0x03, 0x61, 0x62, 0x63]  // PP2_TYPE_NOOP, 3 bytes
            + Array("GET".utf8)
        #expect(Self.parse(bytes) == .header(try Self.header("192.0.2.7", 56324, "198.51.100.2", 443), length: 16 + 18))
    }

    @Test("a v2 PROXY header over TCP6")
    func version2IPv6() throws {
        let source: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [7]
        let destination: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1]
        let bytes = Self.v2Signature + [0x21, 0x21, 0x00, 36] + source + destination + [0x9C, 0x40, 0x1F, 0x90]
        #expect(Self.parse(bytes) == .header(try Self.header("2001:db8::7", 40000, "2001:db8::1", 8080), length: 52))
    }

    @Test("v2 LOCAL and unusable families keep the connection's own addresses")
    func version2Local() {
        #expect(Self.parse(Self.v2Signature + [0x20, 0x00, 0x00, 0x00]) == .header(ProxyProtocolHeader(), length: 16))
        // LOCAL with addresses: they are ignored.
        let local = Self.v2Signature + [0x20, 0x11, 0x00, 0x0C] + Array(repeating: 1, count: 12)
        #expect(Self.parse(local) == .header(ProxyProtocolHeader(), length: 28))
        // PROXY over a Unix socket (0x31), 216 bytes of paths.
        let unix = Self.v2Signature + [0x21, 0x31, 0x00, 0xD8] + Array(repeating: 0, count: 216)
        #expect(Self.parse(unix) == .header(ProxyProtocolHeader(), length: 232))
    }

    @Test("a v2 header is incomplete until all its announced bytes are in")
    func version2Incomplete() {
        let whole = Self.v2Signature + [0x21, 0x11, 0x00, 0x0C] + [192, 0, 2, 7, 198, 51, 100, 2, 0, 1, 0, 2]
        for count in 1..<whole.count {
            #expect(Self.parse(Array(whole.prefix(count))) == .incomplete, "at \(count) bytes")
        }
    }

    @Test(
        "malformed v2 headers are refused",
        arguments: [
            [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0B],  // the signature's last byte
            v2Signature + [0x11, 0x11, 0x00, 0x0C] + Array(repeating: 0, count: 12),  // version 1 in a v2 header
            v2Signature + [0x22, 0x11, 0x00, 0x0C] + Array(repeating: 0, count: 12),  // command 2
            v2Signature + [0x21, 0x11, 0x00, 0x08] + Array(repeating: 0, count: 8),  // TCP4 without room for it
            v2Signature + [0x21, 0x21, 0x00, 0x0C] + Array(repeating: 0, count: 12),  // TCP6 without room for it
            v2Signature + [0x21, 0x11, 0x10, 0x01],  // 4,097 bytes announced: over the limit
        ] as [[UInt8]]
    )
    func version2Malformed(bytes: [UInt8]) {
        guard case .invalid = Self.parse(bytes) else {
            Issue.record("accepted \(bytes)")
            return
        }
    }

    // MARK: Writing

    @Test("v2 as written for a server, byte for byte")
    func writesVersion2() throws {
        let written = try Self.header("192.0.2.7", 56324, "198.51.100.2", 443).encoded(.v2)
        let expected = Self.v2Signature + [0x21, 0x11, 0x00, 0x0C] + [192, 0, 2, 7, 198, 51, 100, 2, 0xDC, 0x04, 0x01, 0xBB]
        #expect(Array(written.readableBytesView) == expected)
    }

    @Test("v1 as written for a server")
    func writesVersion1() throws {
        #expect(
            String(buffer: try Self.header("192.0.2.7", 56324, "198.51.100.2", 443).encoded(.v1))
                == "PROXY TCP4 192.0.2.7 198.51.100.2 56324 443\r\n"
        )
        #expect(
            String(buffer: try Self.header("2001:db8::7", 1, "2001:db8::1", 2).encoded(.v1))
                == "PROXY TCP6 2001:db8::7 2001:db8::1 1 2\r\n"
        )
    }

    @Test("without two addresses of one family, the header says the connection is the sender's own")
    func writesLocal() throws {
        #expect(String(buffer: ProxyProtocolHeader().encoded(.v1)) == "PROXY UNKNOWN\r\n")
        #expect(Array(ProxyProtocolHeader().encoded(.v2).readableBytesView) == Self.v2Signature + [0x20, 0x00, 0x00, 0x00])
        let mixed = ProxyProtocolHeader(
            source: try SocketAddress(ipAddress: "192.0.2.7", port: 1),
            destination: try SocketAddress(ipAddress: "2001:db8::1", port: 2)
        )
        #expect(String(buffer: mixed.encoded(.v1)) == "PROXY UNKNOWN\r\n")
    }

    @Test("what is written reads back the same", arguments: ProxyProtocolVersion.allCases)
    func roundTrip(version: ProxyProtocolVersion) throws {
        for header in [
            try Self.header("192.0.2.7", 56324, "198.51.100.2", 443),
            try Self.header("2001:db8::7", 0, "::1", 65535),
            ProxyProtocolHeader(),
        ] {
            let bytes = header.encoded(version)
            #expect(ProxyProtocolHeader.parse(bytes.readableBytesView) == .header(header, length: bytes.readableBytes))
        }
    }
}
