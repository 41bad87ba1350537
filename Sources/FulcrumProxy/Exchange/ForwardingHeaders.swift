import NIOCore
import NIOHTTP1

/// Header rewriting at the proxy hop (RFC 9110 §7.6.1): hop-by-hop headers are removed in
/// both directions, and requests gain `X-Forwarded-For/Proto/Host`.
///
/// Heads are not edited and then encoded; they are written out directly (`HTTPWireFormat`),
/// leaving out what must not cross the hop. Each direction first scans the headers (framing,
/// and the names a `Connection` header nominates, which may come after the headers they name),
/// then writes them in a second pass.
enum ForwardingHeaders {
    /// What the pass over a message's headers found.
    struct Framing {
        /// The Content-Length, when the message has one.
        var contentLength: Int?
        /// Whether a Transfer-Encoding is present (the decoder accepts only ones ending in
        /// chunked; it de-chunks the body, so the proxy chunks it again when forwarding).
        var isChunked = false
        /// Whether the request asked to upgrade the protocol (`Upgrade` header).
        var isUpgrade = false
        /// Whether that upgrade is to WebSocket: then the request is forwarded with its
        /// `Upgrade: websocket` and `Connection: upgrade`, and a 101 becomes a tunnel.
        var isWebSocket = false
        /// A `Transfer-Encoding` line with no coding in it. The decoder ignores it and frames
        /// the body by any Content-Length, while the proxy would chunk the body again: a
        /// request like that is refused (`RequestRules`).
        var hasEmptyTransferEncoding = false
        /// Whether the last coding of the last `Transfer-Encoding` line is `chunked`. A request
        /// whose is not has a body of unknown length (RFC 9112 §6.3): the decoder says so only
        /// after it has handed the head on, so `RequestRules` refuses it first.
        var endsInChunked = false
    }

    /// The result of scanning a head's headers.
    struct Scan {
        var framing = Framing()
        /// Header names a `Connection` header nominated as hop-by-hop (beyond the standard
        /// ones); `nil` in the usual case of none.
        var nominated: [String]?
        fileprivate var forwardedFor: String?
        /// The client's `Forwarded` lines, joined (extended when `forwarded` adds one).
        fileprivate var forwarded: String?
        /// The client's `TE: trailers` (gRPC's clients send it; servers may require it).
        fileprivate var acceptsTrailers = false
        /// A gRPC call's `grpc-timeout` (its deadline, as the client wrote it).
        var grpcTimeout: String?
        /// The last `Host` value, and how many `Host` lines there were (`RequestRules`).
        fileprivate(set) var host: String?
        fileprivate(set) var hostLines = 0

        /// An absolute-form target's authority, which replaced the head's `Host`.
        mutating func replaceHost(with authority: String) {
            host = authority
            hostLines = 1
        }
    }

    /// Scans a client's request head.
    static func scanRequest(_ headers: HTTPHeaders) -> Scan {
        var scan = Scan()
        for (name, value) in headers {
            switch classify(name) {
            case .upgrade:
                scan.framing.isUpgrade = true
                if value.lowercased().contains("websocket") { scan.framing.isWebSocket = true }
            case .connection:
                appendNominated(by: value, to: &scan.nominated)
            case .forwardedFor:
                scan.forwardedFor = scan.forwardedFor.map { "\($0), \(value)" } ?? value
            case .forwarded:
                scan.forwarded = scan.forwarded.map { "\($0), \(value)" } ?? value
            case .host:
                scan.host = value
                scan.hostLines += 1
            case .contentLength:
                // The decoder keeps trailing whitespace ("3 "), which it accepted.
                scan.framing.contentLength = Int(value.trimmingWhitespace)
            case .transferEncoding:
                scan.framing.isChunked = true
                if value.utf8.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: ",") }) {
                    scan.framing.hasEmptyTransferEncoding = true
                }
                scan.framing.endsInChunked = endsInChunked(value)
            case .te:
                if value.trimmingWhitespace.lowercased() == "trailers" { scan.acceptsTrailers = true }
            case .grpcTimeout:
                scan.grpcTimeout = value
            case .hopByHop, .forwardedProto, .forwardedHost, .strictTransportSecurity, .cookie, .realIP, .other:
                break
            }
        }
        return scan
    }

    /// A frontend's forwarding settings for one request (`ForwardingPolicy`), when they are
    /// not the defaults: the headers to write, and the client they name.
    struct Forwarding {
        let policy: ForwardingPolicy
        /// The request's client (a trusted proxy may have named it), for `X-Real-IP`.
        let client: ClientInfo
    }

    /// Writes the request head the server receives, with the header changes of the rules that
    /// matched (`set_header`, `delete_header`) made first, and the backend's sticky cookie (or
    /// its prefix) taken out of `Cookie`. Returns the server that cookie names, if any.
    @discardableResult
    static func writeRequestHead(
        _ head: HTTPRequestHead,
        headerEdits: [HeaderEdit],
        scan: Scan,
        client: ClientInfo,
        forwarding: Forwarding? = nil,
        sticky: StickyCookie? = nil,
        into buffer: inout ByteBuffer
    ) -> Int? {
        guard !headerEdits.isEmpty else {
            return writeRequestHead(head, scan: scan, client: client, forwarding: forwarding, sticky: sticky, into: &buffer)
        }
        var edited = head
        for edit in headerEdits {
            switch edit {
            case .set(let name, let value): edited.headers.replaceOrAdd(name: name, value: value)
            case .delete(let name): edited.headers.remove(name: name)
            }
        }
        return writeRequestHead(edited, scan: scan, client: client, forwarding: forwarding, sticky: sticky, into: &buffer)
    }

    /// Writes the request head the server receives: the request line (always HTTP/1.1, so
    /// server connections can be pooled), the client's end-to-end headers, and the
    /// `X-Forwarded-*` headers, which replace any the client sent (X-Forwarded-For is extended),
    /// or as `forwarding` says. `client` is the connection's peer: the hop this proxy adds.
    /// With `sticky`, returns the server its cookie names, if any.
    @discardableResult
    static func writeRequestHead(
        _ head: HTTPRequestHead,
        scan: Scan,
        client: ClientInfo,
        forwarding: Forwarding? = nil,
        sticky: StickyCookie? = nil,
        into buffer: inout ByteBuffer
    ) -> Int? {
        var stickyServer: Int??
        buffer.writeRequestLine(method: head.method, uri: head.uri)
        for (name, value) in head.headers {
            let kind = classify(name)
            switch kind {
            case .hopByHop, .upgrade, .connection, .forwardedFor, .forwardedProto, .forwardedHost, .te:
                continue
            case .host, .transferEncoding:
                // Never removable by nomination: that would let a body be read as a request.
                buffer.writeHeaderLine(name: name, value: value)
            case .contentLength:
                // Not removable by nomination either; without the trailing whitespace that the
                // decoder tolerates.
                buffer.writeHeaderLine(name: name, value: value.trimmingWhitespace)
            case .forwarded where forwarding?.policy.headers.includesForwarded == true,
                .realIP where forwarding?.policy.xRealIP == true:
                // Written below, extended or replaced.
                continue
            case .strictTransportSecurity, .grpcTimeout, .cookie, .forwarded, .realIP, .other:
                if let nominated = scan.nominated, nominated.contains(where: { equalsIgnoringCase($0, name) }) { continue }
                if kind == .cookie, let sticky {
                    sticky.writeCookieLine(name: name, value: value, server: &stickyServer, into: &buffer)
                } else {
                    buffer.writeHeaderLine(name: name, value: value)
                }
            }
        }
        if scan.acceptsTrailers {
            // The one `TE` HTTP/2 allows, and which gRPC servers may require (Envoy and
            // HAProxy keep it too); other codings concern this hop only.
            buffer.writeStaticString("te: trailers\r\n")
        }
        if forwarding?.policy.headers.includesXForwarded ?? true {
            if let forwardedFor = scan.forwardedFor {
                buffer.writeStaticString("x-forwarded-for: ")
                buffer.writeString(forwardedFor)
                buffer.writeStaticString(", ")
                buffer.writeString(client.addressText)
                buffer.writeStaticString("\r\n")
            } else {
                buffer.writeHeaderLine(name: "x-forwarded-for", value: client.addressText)
            }
            buffer.writeStaticString(client.isSecure ? "x-forwarded-proto: https\r\n" : "x-forwarded-proto: http\r\n")
            if let host = scan.host {
                buffer.writeHeaderLine(name: "x-forwarded-host", value: host)
            }
        }
        if let forwarding {
            writeForwardingHeaders(forwarding, scan: scan, peer: client, into: &buffer)
        }
        if scan.framing.isWebSocket {
            buffer.writeStaticString("connection: upgrade\r\nupgrade: websocket\r\n")
        }
        buffer.writeStaticString("\r\n")
        return stickyServer ?? nil
    }

    /// `Forwarded` (RFC 7239), extending the client's, and `X-Real-IP`, as the frontend says.
    private static func writeForwardingHeaders(_ forwarding: Forwarding, scan: Scan, peer: ClientInfo, into buffer: inout ByteBuffer) {
        if forwarding.policy.headers.includesForwarded {
            let element = ForwardingPolicy.forwardedElement(peer: peer, host: scan.host)
            buffer.writeHeaderLine(name: "forwarded", value: scan.forwarded.map { "\($0), \(element)" } ?? element)
        }
        if forwarding.policy.xRealIP {
            buffer.writeHeaderLine(name: "x-real-ip", value: forwarding.client.addressText)
        }
    }

    /// Scans a server's response head.
    static func scanResponse(_ headers: HTTPHeaders) -> Scan {
        var scan = Scan()
        for (name, value) in headers {
            switch classify(name) {
            case .connection:
                appendNominated(by: value, to: &scan.nominated)
            case .contentLength:
                scan.framing.contentLength = Int(value)
            case .transferEncoding:
                scan.framing.isChunked = true
            case .hopByHop, .te, .upgrade, .forwardedFor, .forwardedProto, .forwardedHost, .host, .strictTransportSecurity,
                .grpcTimeout, .cookie, .forwarded, .realIP, .other:
                break
            }
        }
        return scan
    }

    /// How the proxy frames a response for its client, decided from the server's framing and
    /// the client's protocol.
    struct ResponseFraming {
        /// Leave out the server's Transfer-Encoding (the body goes as is, or there is none).
        var dropTransferEncoding = false
        /// Add `transfer-encoding: chunked` (the server ends its body by closing).
        var addChunked = false
        /// The `connection` header to send, if any.
        var connection: StaticString?
        /// A `101` that starts a WebSocket tunnel: send `connection: upgrade` and `upgrade: websocket`.
        var webSocketUpgrade = false
        /// The frontend's whole `strict-transport-security: ...\r\n` line (`tls.hsts`), which
        /// replaces any the server sent, as HAProxy's `http-response set-header` does.
        var strictTransportSecurity: String?
    }

    /// Writes the response head the client receives: the status line (HTTP/1.1), the server's
    /// end-to-end headers, and the framing and connection headers the proxy decided on.
    static func writeResponseHead(
        _ head: HTTPResponseHead,
        scan: Scan,
        framing: ResponseFraming,
        into buffer: inout ByteBuffer
    ) {
        buffer.writeStatusLine(head.status)
        for (name, value) in head.headers {
            switch classify(name) {
            case .hopByHop, .te, .upgrade, .connection:
                continue
            case .transferEncoding:
                if !framing.dropTransferEncoding { buffer.writeHeaderLine(name: name, value: value) }
            case .host, .contentLength:
                buffer.writeHeaderLine(name: name, value: value)
            case .strictTransportSecurity where framing.strictTransportSecurity != nil:
                continue
            case .strictTransportSecurity, .forwardedFor, .forwardedProto, .forwardedHost, .grpcTimeout, .cookie, .forwarded,
                .realIP, .other:
                if let nominated = scan.nominated, nominated.contains(where: { equalsIgnoringCase($0, name) }) { continue }
                buffer.writeHeaderLine(name: name, value: value)
            }
        }
        if framing.addChunked { buffer.writeStaticString("transfer-encoding: chunked\r\n") }
        if let connection = framing.connection {
            buffer.writeStaticString("connection: ")
            buffer.writeStaticString(connection)
            buffer.writeStaticString("\r\n")
        }
        if framing.webSocketUpgrade {
            buffer.writeStaticString("connection: upgrade\r\nupgrade: websocket\r\n")
        }
        if let line = framing.strictTransportSecurity { buffer.writeString(line) }
        buffer.writeStaticString("\r\n")
    }

    /// Writes a head the proxy made itself (error pages, interim responses), unchanged but for
    /// the frontend's `strict-transport-security` line, if it has one.
    static func writeLocalResponseHead(_ head: HTTPResponseHead, strictTransportSecurity: String? = nil, into buffer: inout ByteBuffer) {
        buffer.writeStatusLine(head.status)
        for (name, value) in head.headers { buffer.writeHeaderLine(name: name, value: value) }
        if let line = strictTransportSecurity { buffer.writeString(line) }
        buffer.writeStaticString("\r\n")
    }

    /// The header line `tls.hsts` adds, built once per frontend.
    static func strictTransportSecurityLine(_ value: String) -> String {
        "strict-transport-security: \(value)\r\n"
    }

    /// Collects the header names a Connection header nominates as hop-by-hop, skipping the
    /// connection options that name no header (`close`, `keep-alive`: Keep-Alive is
    /// hop-by-hop anyway) without allocating.
    private static func appendNominated(by connectionValue: String, to nominated: inout [String]?) {
        // Nearly every message says just one of these.
        var value = connectionValue
        let isPlainOption = value.withUTF8 { bytes in
            bytes.equalsLowercase("keep-alive") || bytes.equalsLowercase("close")
        }
        if isPlainOption { return }
        for token in connectionValue.utf8.split(separator: UInt8(ascii: ",")) {
            let name = Substring(token).trimmingSpaces()
            if name.isEmpty { continue }
            let isOption =
                name.utf8.withContiguousStorageIfAvailable { bytes in
                    bytes.equalsLowercase("close") || bytes.equalsLowercase("keep-alive")
                } ?? false
            if isOption { continue }
            nominated = (nominated ?? []) + [String(name)]
        }
    }

    /// Whether a `Transfer-Encoding` value's last list element is `chunked`, blanks around it
    /// aside. Stricter than the decoder where they could differ: `gzip chunked`,
    /// `chunked;x=1` and `chunked,` are not.
    private static func endsInChunked(_ value: String) -> Bool {
        var value = value
        return value.withUTF8 { bytes in
            func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
            var end = bytes.count
            while end > 0, isBlank(bytes[end - 1]) { end -= 1 }
            var start = end
            while start > 0, bytes[start - 1] != UInt8(ascii: ",") { start -= 1 }
            while start < end, isBlank(bytes[start]) { start += 1 }
            return UnsafeBufferPointer(rebasing: bytes[start..<end]).equalsLowercase("chunked")
        }
    }

    private static func equalsIgnoringCase(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf8.count == rhs.utf8.count && zip(lhs.utf8, rhs.utf8).allSatisfy { $0 | 0x20 == $1 | 0x20 }
    }

    /// A client's request trailers as the server receives them: without the fields RFC 9110
    /// §6.5.1 keeps out of trailers because they must be known before the content (framing,
    /// routing, authentication, request modifiers, the content's format), nor hop-by-hop and
    /// `X-Forwarded-*` ones. A server that merges trailers into the header section (which
    /// RFC 9110 forbids for these) can then be told neither another Host nor credentials.
    /// Nil when none is left.
    static func forwardedTrailers(_ trailers: HTTPHeaders?) -> HTTPHeaders? {
        guard let trailers else { return nil }
        var kept: [(String, String)] = []
        for (name, value) in trailers where classify(name).isEndToEnd && !isHeaderSectionOnly(name) {
            kept.append((name, value))
        }
        return kept.isEmpty ? nil : HTTPHeaders(kept)
    }

    /// Request fields that only make sense before the content (beyond `classify`'s kinds).
    private static func isHeaderSectionOnly(_ name: String) -> Bool {
        let name = name.lowercased()
        return name.hasPrefix("if-") || name.hasPrefix("content-")
            || ["authorization", "cookie", "cache-control", "expect", "forwarded", "max-forwards", "pragma", "range"].contains(name)
    }

    fileprivate enum Kind {
        case hopByHop, upgrade, connection, forwardedFor, forwardedProto, forwardedHost, host
        case contentLength, transferEncoding, strictTransportSecurity, te, grpcTimeout, cookie, forwarded, realIP, other

        /// A field that none of the hop's rules concern.
        var isEndToEnd: Bool {
            switch self {
            case .other, .strictTransportSecurity, .grpcTimeout, .cookie, .forwarded, .realIP: true
            default: false
            }
        }
    }

    /// Classifies a header name, case-insensitively, switching on its length first so most
    /// names are rejected without comparing bytes.
    private static func classify(_ name: String) -> Kind {
        var name = name
        return name.withUTF8 { bytes -> Kind in
            switch bytes.count {
            case 2 where bytes.equalsLowercase("te"): return .te
            case 4 where bytes.equalsLowercase("host"): return .host
            case 6 where bytes.equalsLowercase("cookie"): return .cookie
            case 9 where bytes.equalsLowercase("forwarded"): return .forwarded
            case 9 where bytes.equalsLowercase("x-real-ip"): return .realIP
            case 7 where bytes.equalsLowercase("trailer"): return .hopByHop
            case 7 where bytes.equalsLowercase("upgrade"): return .upgrade
            case 10 where bytes.equalsLowercase("connection"): return .connection
            case 10 where bytes.equalsLowercase("keep-alive"): return .hopByHop
            case 12 where bytes.equalsLowercase("grpc-timeout"): return .grpcTimeout
            case 14 where bytes.equalsLowercase("content-length"): return .contentLength
            case 15 where bytes.equalsLowercase("x-forwarded-for"): return .forwardedFor
            case 16 where bytes.equalsLowercase("x-forwarded-host"): return .forwardedHost
            case 17 where bytes.equalsLowercase("x-forwarded-proto"): return .forwardedProto
            case 17 where bytes.equalsLowercase("transfer-encoding"): return .transferEncoding
            case 25 where bytes.equalsLowercase("strict-transport-security"): return .strictTransportSecurity
            case 6... where bytes.hasLowercasePrefix("proxy-"): return .hopByHop
            default: return .other
            }
        }
    }
}

extension UnsafeBufferPointer<UInt8> {
    /// ASCII case-insensitive comparison against a lower-case literal.
    @inline(__always)
    func equalsLowercase(_ lowercase: StaticString) -> Bool {
        guard count == lowercase.utf8CodeUnitCount else { return false }
        return hasLowercasePrefix(lowercase)
    }

    @inline(__always)
    func hasLowercasePrefix(_ lowercase: StaticString) -> Bool {
        let length = lowercase.utf8CodeUnitCount
        guard count >= length else { return false }
        let expected = lowercase.utf8Start
        for index in 0..<length where self[index] | 0x20 != expected[index] {
            // `| 0x20` lower-cases letters; '-' (0x2d) is unaffected, so names compare exactly.
            return false
        }
        return true
    }
}

extension String {
    /// The value without trailing spaces and tabs, which HTTP's field syntax excludes from it
    /// (RFC 9110 §5.5) but NIO's decoder passes on. Usually the value itself, uncopied.
    fileprivate var trimmingWhitespace: String {
        guard let last = utf8.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") else { return self }
        var trimmed = Substring(self)
        while let last = trimmed.utf8.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") {
            trimmed = trimmed.dropLast()
        }
        return String(trimmed)
    }
}
