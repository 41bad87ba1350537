import FulcrumConfig
import NIOHTTP1

/// A frontend's forwarding settings, compiled (`trusted_proxies`, `client_ip_header`,
/// `forwarded`, `x_real_ip`): who the client of a request is, and which headers tell the
/// server.
///
/// **The client.** A connection from a trusted proxy may name the client in its
/// `X-Forwarded-For` (or `Forwarded`). The list is read right to left: each proxy appends the
/// address it got the request from, so the rightmost address that is not itself a trusted
/// proxy is the client (nginx's `real_ip_recursive on`, Envoy's trusted hops). If every
/// address is trusted, the leftmost is the client. A value that is not an address (`unknown`,
/// an obfuscated `Forwarded` identifier, a typo) stops the walk: the last trusted hop is then
/// the client, since nothing before it can be checked. A connection from anyone else names
/// no one: its peer is the client, whatever its headers say. ACLs (`src`), rate limits, the
/// shield, hashing by `src` and the access log all see this client.
struct ForwardingPolicy: Sendable {
    let trustedProxies: [CIDRBlock]
    let clientIPHeader: ForwardingConfig.ClientIPHeader
    let headers: ForwardingConfig.Headers
    let xRealIP: Bool

    /// Nil for the defaults: the data plane then does nothing per request.
    init?(_ config: ForwardingConfig) {
        guard !config.isDefault else { return nil }
        trustedProxies = config.trustedProxies
        clientIPHeader = config.clientIPHeader
        headers = config.headers
        xRealIP = config.xRealIP
    }

    /// The client of a request that came on a connection from `peer`.
    func client(of head: HTTPRequestHead, peer: ClientInfo) -> ClientInfo {
        guard !trustedProxies.isEmpty, let peerBytes = peer.addressBytes, isTrusted(peerBytes) else { return peer }
        let hops = clientIPHeader == .xForwardedFor ? Self.forwardedForHops(head.headers) : Self.forwardedHops(head.headers)
        var client: [UInt8]?
        for hop in hops.reversed() {
            guard let bytes = Self.address(of: hop) else { break }
            client = bytes
            if !isTrusted(bytes) { break }
        }
        guard let client else { return peer }
        return peer.forwarded(by: client)
    }

    private func isTrusted(_ address: [UInt8]) -> Bool {
        trustedProxies.contains { $0.contains(address) }
    }

    // MARK: Reading the headers

    /// The addresses of every `X-Forwarded-For` line, in order.
    static func forwardedForHops(_ headers: HTTPHeaders) -> [Substring] {
        headers["x-forwarded-for"].flatMap { line in
            line.split(separator: ",").map { $0.trimmingCharacters(in: " \t") }
        }
    }

    /// The `for` parameters of every `Forwarded` element, in order (RFC 7239 §4): `for=1.2.3.4`,
    /// `for="1.2.3.4:80"`, `for="[2001:db8::1]:443"`. An element without `for` counts as a
    /// hop that names no address.
    static func forwardedHops(_ headers: HTTPHeaders) -> [Substring] {
        headers["forwarded"].flatMap { line in
            line.split(separator: ",").map { element -> Substring in
                for pair in element.split(separator: ";") {
                    let pair = pair.trimmingCharacters(in: " \t")
                    guard pair.count > 4, pair.prefix(4).lowercased() == "for=" else { continue }
                    var value = pair.dropFirst(4)
                    if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = value.dropFirst().dropLast() }
                    return value
                }
                return ""
            }
        }
    }

    /// The address a hop names: an IPv4 or IPv6 address, with or without a port
    /// (`1.2.3.4:80`, `[2001:db8::1]:443`, `[2001:db8::1]`); nil for anything else.
    static func address(of hop: Substring) -> [UInt8]? {
        var text = hop
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            text = text[text.index(after: text.startIndex)..<close]
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            text = text[..<colon]
        }
        return parseIPAddress(String(text))
    }

    // MARK: Writing the headers

    /// The `Forwarded` element this hop adds (RFC 7239 §4): the peer it got the request from,
    /// the protocol, and the host. An IPv6 address is quoted, in brackets.
    static func forwardedElement(peer: ClientInfo, host: String?) -> String {
        let address = peer.addressText.contains(":") ? "\"[\(peer.addressText)]\"" : peer.addressText
        var element = "for=\(address);proto=\(peer.isSecure ? "https" : "http")"
        if let host, !host.isEmpty {
            element += ";host=" + (isToken(host) ? host : "\"\(host.replacingOccurrences(of: "\"", with: ""))\"")
        }
        return element
    }

    private static func isToken(_ text: String) -> Bool {
        text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "!#$%&'*+-.^_`|~".contains($0)) }
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in characters: String) -> Substring {
        var trimmed = self
        while let first = trimmed.first, characters.contains(first) { trimmed = trimmed.dropFirst() }
        while let last = trimmed.last, characters.contains(last) { trimmed = trimmed.dropLast() }
        return trimmed
    }
}
