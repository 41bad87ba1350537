import FulcrumConfig
import NIOCore

/// What the proxy knows about a client connection, captured once when it is accepted.
///
/// Reading the peer address per request would cost a `getpeername` system call each time;
/// everything derived from it (the text for `X-Forwarded-For`, the bytes for `src` ACLs) is
/// computed here once per connection.
struct ClientInfo: Sendable {
    /// The peer's IP address as text (`127.0.0.1`, `::1`), or `unknown`.
    private(set) var addressText: String
    /// The peer's address bytes (4 or 16), for `src` ACLs.
    private(set) var addressBytes: [UInt8]?
    /// Whether the connection arrived over TLS (sets `X-Forwarded-Proto`).
    let isSecure: Bool
    /// The PROXY protocol header that named this client, when one did (by reference: most
    /// connections have none, and this struct is copied into every exchange).
    let proxied: ProxyProtocolHeader.Reference?
    /// The server name of the client's TLS ClientHello, on a `mode: tcp` frontend that routes
    /// by its hello (`sni` and `alpn` ACLs); nil otherwise, or when the hello named none.
    var serverName: String?
    /// The application protocols that hello offered (ALPN), in the client's order.
    var offeredProtocols: [String] = []

    /// `peer`: the connection's peer, unless `proxied` names the client (a v2 `LOCAL` or v1
    /// `UNKNOWN` header names none: the peer stands).
    init(peer: SocketAddress?, isSecure: Bool, proxied: ProxyProtocolHeader? = nil) {
        self.isSecure = isSecure
        let named = proxied?.source != nil ? proxied : nil
        self.proxied = named.map(ProxyProtocolHeader.Reference.init)
        let client = named?.source ?? peer
        self.addressBytes = client?.addressBytes
        switch client {
        case .v4?:
            // Not `ipAddress`: glibc's inet_ntop formats IPv4 with sprintf, a third of what
            // building this costs per connection.
            self.addressText = Self.dottedQuad(addressBytes!)
        case .v6?:
            self.addressText = client?.ipAddress ?? "unknown"
        default:
            self.addressText = "unknown"
        }
    }

    /// The client a trusted proxy on this connection named (`ForwardingPolicy`): its address,
    /// with the connection's other facts.
    func forwarded(by address: [UInt8]) -> ClientInfo {
        var client = self
        client.addressBytes = address
        client.addressText = address.count == 4 ? Self.dottedQuad(address) : Self.ipv6Text(address)
        return client
    }

    /// RFC 5952 text for 16 address bytes, through NIO (as `addressText` for a peer).
    private static func ipv6Text(_ bytes: [UInt8]) -> String {
        (try? SocketAddress(packedIPAddress: ByteBuffer(bytes: bytes), port: 0))?.ipAddress ?? "unknown"
    }

    /// The PROXY protocol header that names this client to a `send_proxy` server: the
    /// addresses a header named, or else those of `connection`, the client's connection.
    func proxyProtocolHeader(_ version: ProxyProtocolVersion, connection: any Channel) -> ByteBuffer {
        let header =
            proxied?.header ?? ProxyProtocolHeader(source: connection.remoteAddress, destination: connection.localAddress)
        return header.encoded(version)
    }

    /// `a.b.c.d` for four address bytes, written in place (at most 15 bytes: no allocation).
    static func dottedQuad(_ bytes: [UInt8]) -> String {
        String(unsafeUninitializedCapacity: 15) { text in
            var count = 0
            func append(_ byte: UInt8) {
                text[count] = byte
                count += 1
            }
            for (index, byte) in bytes.prefix(4).enumerated() {
                if index > 0 { append(UInt8(ascii: ".")) }
                if byte >= 100 { append(UInt8(ascii: "0") + byte / 100) }
                if byte >= 10 { append(UInt8(ascii: "0") + byte / 10 % 10) }
                append(UInt8(ascii: "0") + byte % 10)
            }
            return count
        }
    }
}

extension SocketAddress {
    /// The IP address's bytes in network order (4 or 16), or nil for a Unix socket.
    var addressBytes: [UInt8]? {
        switch self {
        case .v4(let address): withUnsafeBytes(of: address.address.sin_addr) { Array($0) }
        case .v6(let address): withUnsafeBytes(of: address.address.sin6_addr) { Array($0) }
        case .unixDomainSocket: nil
        }
    }
}
