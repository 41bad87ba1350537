import NIOHTTP1

/// The rules of RFC 9112 for a request head that NIO's decoder does not enforce itself (it
/// enforces the field syntax, Content-Length and chunked framing: docs/http-rules.md lists
/// which rule is whose). They run before anything reads the head: routing, the shield,
/// `X-Forwarded-Host`, the head the server receives.
///
/// - An HTTP/1.1 request needs exactly one `Host` line; no request may have more than one,
///   and its value must be a valid `host [":" port]` (RFC 3986 §3.2.2–3.2.3). An empty value
///   is valid: it is what a client sends for a target without an authority.
/// - A target in absolute form (`http://a.example/x`) is routed by its authority, which
///   replaces `Host`, and forwarded in origin form (`/x`), as RFC 9112 §3.2.2 asks of a proxy:
///   a server then reads the same name that Fulcrum routed by. Its scheme must be http or
///   https, and it may not carry userinfo (RFC 9110 §4.2.4).
/// - The asterisk form (`*`) is for `OPTIONS` only; any other target must start with `/`.
///   (The authority form is CONNECT's, which the admission refuses with 405.)
/// - A `Transfer-Encoding` line must name a coding (RFC 9112 §6.3): an empty one, which the
///   decoder ignores, would have the body framed by Content-Length here and chunked at the
///   server. HTTP/1.0 has no transfer codings (§6.1): such a request's framing is faulty.
///   And its last coding must be `chunked` (§6.3): the decoder refuses one whose is not only
///   after handing the head on, when the proxy has already taken a server connection for it.
/// - A target carries no fragment (`#`): origin form is a path and a query (§3.2.1).
///
/// HTTP/2 requests reach this as HTTP/1-style heads, with `:authority` as `Host`.
enum RequestRules {
    enum Outcome {
        /// The request goes on as it came.
        case unchanged
        /// An absolute-form target became an origin-form one, its authority the `Host`.
        case rewritten
        /// The request breaks a rule: answer this 400, and close.
        case refused(LocalResponse)
    }

    /// Checks the request, rewriting an absolute-form target in place (in the head and in its
    /// scan).
    static func check(_ head: inout HTTPRequestHead, scan: inout ForwardingHeaders.Scan) -> Outcome {
        // CONNECT's target is an authority; the admission refuses CONNECT itself (405).
        if case .CONNECT = head.method { return .unchanged }
        let version = head.version
        let isHTTP10 = version.major == 1 && version.minor == 0
        if scan.framing.hasEmptyTransferEncoding {
            return .refused(badRequest("The request has a Transfer-Encoding header without a coding."))
        }
        if scan.framing.isChunked, !scan.framing.endsInChunked {
            return .refused(badRequest("The request's Transfer-Encoding does not end in chunked, so its body has no known length."))
        }
        if scan.framing.isChunked, isHTTP10 {
            return .refused(badRequest("An HTTP/1.0 request cannot have a Transfer-Encoding."))
        }
        if scan.hostLines > 1 {
            return .refused(badRequest("The request has more than one Host header."))
        }
        if let host = scan.host, !isValidHost(host) {
            return .refused(badRequest("The request's Host header is not a valid host name."))
        }
        var uri = head.uri
        let (isPath, hasFragment) = uri.withUTF8 { bytes in
            (bytes.first == UInt8(ascii: "/"), bytes.contains(UInt8(ascii: "#")))
        }
        if hasFragment {
            return .refused(badRequest("The request target has a fragment (#), which is not sent in requests."))
        }
        if isPath {
            if scan.hostLines == 0, version.major == 1, !isHTTP10 {
                return .refused(badRequest("An HTTP/1.1 request needs a Host header."))
            }
            return .unchanged
        }
        if uri == "*" {
            if case .OPTIONS = head.method { return .unchanged }
            return .refused(badRequest("Only OPTIONS may have the target *."))
        }
        guard let absolute = AbsoluteTarget(uri) else {
            return .refused(badRequest("The request target is neither a path nor an http or https URL."))
        }
        guard !absolute.authority.isEmpty, isValidHost(absolute.authority) else {
            return .refused(badRequest("The request target's host is not a valid host name."))
        }
        head.uri = absolute.pathAndQuery
        head.headers.replaceOrAdd(name: "host", value: absolute.authority)
        scan.replaceHost(with: absolute.authority)
        return .rewritten
    }

    private static func badRequest(_ detail: String) -> LocalResponse {
        LocalResponse(.badRequest, detail, closesConnection: true)
    }

    /// An `http://` or `https://` URL split into its authority and the rest.
    struct AbsoluteTarget {
        var authority: String
        /// The path and query, `/` when the URL has no path.
        var pathAndQuery: String

        init?(_ uri: String) {
            let bytes = Array(uri.utf8)
            let schemeLength: Int
            if bytes.starts(lowercased: "http://") {
                schemeLength = 7
            } else if bytes.starts(lowercased: "https://") {
                schemeLength = 8
            } else {
                return nil
            }
            let rest = bytes[schemeLength...]
            let end = rest.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") }
            let authority = rest[..<(end ?? rest.endIndex)]
            // Userinfo ("user@host") is not for HTTP (RFC 9110 §4.2.4).
            if authority.contains(UInt8(ascii: "@")) { return nil }
            var target = end.map { Array(rest[$0...]) } ?? []
            if target.first != UInt8(ascii: "/") { target.insert(UInt8(ascii: "/"), at: 0) }
            self.authority = String(decoding: authority, as: UTF8.self)
            self.pathAndQuery = String(decoding: target, as: UTF8.self)
        }
    }

    /// `host [":" port]`: a registered name (unreserved characters, percent-encodings and
    /// sub-delimiters), an IPv4 address (a registered name too, by its characters) or a
    /// bracketed IPv6 or IPvFuture literal, then an optional port of digits.
    static func isValidHost(_ value: String) -> Bool {
        var value = value
        return value.withUTF8 { isValidHost(bytes: $0[...]) }
    }

    private static func isValidHost(bytes: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
        var bytes = bytes
        if bytes.first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return false }
            let literal = bytes[(bytes.startIndex + 1)..<close]
            guard !literal.isEmpty, literal.allSatisfy({ isRegisteredNameByte($0) || $0 == UInt8(ascii: ":") }) else {
                return false
            }
            let rest = bytes[(close + 1)...]
            guard let colon = rest.first else { return true }
            return colon == UInt8(ascii: ":") && rest.dropFirst().allSatisfy(isDigit)
        }
        if let colon = bytes.lastIndex(of: UInt8(ascii: ":")) {
            guard bytes[(colon + 1)...].allSatisfy(isDigit) else { return false }
            bytes = bytes[..<colon]
        }
        var index = bytes.startIndex
        while index < bytes.endIndex {
            if bytes[index] == UInt8(ascii: "%") {
                // A percent-encoding: two hexadecimal digits follow.
                guard index + 2 < bytes.endIndex, isHexDigit(bytes[index + 1]), isHexDigit(bytes[index + 2]) else {
                    return false
                }
                index += 3
            } else {
                guard isRegisteredNameByte(bytes[index]) else { return false }
                index += 1
            }
        }
        return true
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte &- UInt8(ascii: "0") < 10
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        isDigit(byte) || (byte | 0x20) &- UInt8(ascii: "a") < 6
    }

    /// Unreserved characters and sub-delimiters (RFC 3986 §2.2–2.3): `A–Z a–z 0–9 - . _ ~` and
    /// `! $ & ' ( ) * + , ; =`, as one bit per byte value 0–63 and 64–127 (a test checks the
    /// masks against the list).
    private static let registeredNameBytes: (low: UInt64, high: UInt64) = (0x2bff_7fd2_0000_0000, 0x47ff_fffe_87ff_fffe)

    static func isRegisteredNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 0..<64: registeredNameBytes.low >> UInt64(byte) & 1 == 1
        case 64..<128: registeredNameBytes.high >> UInt64(byte - 64) & 1 == 1
        default: false
        }
    }
}

extension Array where Element == UInt8 {
    /// Whether the bytes start with `prefix`, ASCII letters compared case-insensitively.
    fileprivate func starts(lowercased prefix: StaticString) -> Bool {
        guard count >= prefix.utf8CodeUnitCount else { return false }
        return prefix.withUTF8Buffer { prefix in
            zip(self, prefix).allSatisfy { byte, expected in
                (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte) == expected
            }
        }
    }
}
