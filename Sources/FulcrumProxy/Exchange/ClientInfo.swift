import NIOCore

/// What the proxy knows about a client connection, captured once when it is accepted.
///
/// Reading the peer address per request would cost a `getpeername` system call each time;
/// everything derived from it (the text for `X-Forwarded-For`, the bytes for `src` ACLs) is
/// computed here once per connection.
struct ClientInfo: Sendable {
    /// The peer's IP address as text (`127.0.0.1`, `::1`), or `unknown`.
    let addressText: String
    /// The peer's address bytes (4 or 16), for `src` ACLs.
    let addressBytes: [UInt8]?
    /// Whether the connection arrived over TLS (sets `X-Forwarded-Proto`).
    let isSecure: Bool
    /// The client's address and port: the connection's peer, or the one its PROXY protocol
    /// header named (what a PROXY header to a server names in turn).
    let peer: SocketAddress?
    /// The address the client connected to, when a PROXY protocol header named it; nil: the
    /// connection's own local address.
    let proxiedDestination: SocketAddress?
    /// The server name of the client's TLS ClientHello, on a `mode: tcp` frontend that routes
    /// by it (`sni` ACLs); nil otherwise, or when the hello named none.
    var serverName: String?

    init(peer: SocketAddress?, isSecure: Bool, proxiedDestination: SocketAddress? = nil) {
        self.isSecure = isSecure
        self.peer = peer
        self.proxiedDestination = proxiedDestination
        switch peer {
        case .v4(let address)?:
            var raw = address.address.sin_addr
            let bytes = withUnsafeBytes(of: &raw) { Array($0) }
            self.addressBytes = bytes
            // Not `ipAddress`: glibc's inet_ntop formats IPv4 with sprintf, a third of what
            // building this costs per connection.
            self.addressText = Self.dottedQuad(bytes)
        case .v6(let address)?:
            var raw = address.address.sin6_addr
            self.addressBytes = withUnsafeBytes(of: &raw) { Array($0) }
            self.addressText = peer?.ipAddress ?? "unknown"
        default:
            self.addressBytes = nil
            self.addressText = "unknown"
        }
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
