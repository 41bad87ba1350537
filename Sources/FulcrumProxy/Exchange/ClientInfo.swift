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

    init(peer: SocketAddress?, isSecure: Bool) {
        self.isSecure = isSecure
        switch peer {
        case .v4(let address)?:
            var raw = address.address.sin_addr
            self.addressBytes = withUnsafeBytes(of: &raw) { Array($0) }
            self.addressText = peer?.ipAddress ?? "unknown"
        case .v6(let address)?:
            var raw = address.address.sin6_addr
            self.addressBytes = withUnsafeBytes(of: &raw) { Array($0) }
            self.addressText = peer?.ipAddress ?? "unknown"
        default:
            self.addressBytes = nil
            self.addressText = "unknown"
        }
    }
}
