/// What RFC 9113 § 8.2 allows in a request's HTTP/2 fields, checked byte by byte.
///
/// `NIOHTTP2Handler` can check every header block it receives and sends, and did, at about
/// 10,000 instructions per block (12 % of an HTTP/2 request's, bench/RESULTS.md), through
/// generic string views and casts. The blocks Fulcrum sends are built from an HTTP/1.1 head
/// that llhttp already parsed, lowered to lower case and stripped of connection-specific
/// fields by `HTTP2Heads`, so only the client's blocks need checking; `HTTP2Heads` checks them
/// in the one pass that converts them, with these rules, and NIOHTTP2's own check is off.
///
/// The rules are NIOHTTP2's (`HPACKHeaders+Validation.swift`): a value that HTTP/1.1 would
/// read differently (a CR, LF or NUL; in a pseudo-header field, any control byte or space) is
/// refused, so nothing can be smuggled into the HTTP/1.1 request the server receives.
enum HTTP2FieldRules {
    /// The `tchar`s of RFC 9110 § 5.6.2, minus upper-case letters (HTTP/2 names are lower
    /// case), as two 64-bit masks over the ASCII range.
    private static let tokenMask: (low: UInt64, high: UInt64) = {
        var low: UInt64 = 0
        var high: UInt64 = 0
        let allowed = Array("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz".utf8)
        for byte in allowed {
            if byte < 64 { low |= 1 << UInt64(byte) } else { high |= 1 << UInt64(byte - 64) }
        }
        return (low, high)
    }()

    /// A regular field's name: a non-empty lower-case token.
    static func isValidName(_ name: String) -> Bool {
        let mask = tokenMask
        return allBytes(of: name) { byte in
            byte < 64 ? mask.low & (1 << UInt64(byte)) != 0 : byte < 128 && mask.high & (1 << UInt64(byte - 64)) != 0
        } && !name.isEmpty
    }

    /// A regular field's value: no NUL, LF or CR (RFC 9113 § 8.2.1).
    static func isValidValue(_ value: String) -> Bool {
        allBytes(of: value) { $0 != 0x00 && $0 != 0x0A && $0 != 0x0D }
    }

    /// A pseudo-header field's value: no control byte, space or DEL (none of their grammars
    /// has one, and in `:path` a space would split the HTTP/1.1 request line).
    static func isValidPseudoValue(_ value: String) -> Bool {
        allBytes(of: value) { $0 > 0x20 && $0 != 0x7F }
    }

    /// Whether every byte of `string` passes, read in place (iterating a `String.UTF8View`
    /// costs several times more per byte).
    @inline(__always)
    private static func allBytes(of string: String, _ passes: (UInt8) -> Bool) -> Bool {
        if let result = string.utf8.withContiguousStorageIfAvailable({ $0.allSatisfy(passes) }) {
            return result
        }
        return string.utf8.allSatisfy(passes)
    }

    /// A field HTTP/2 forbids in a request or trailers (RFC 9113 § 8.2.2): a connection-
    /// specific one, or `te` with anything but `trailers`.
    static func isForbidden(name: String, value: String) -> Bool {
        // By length first: most names have none of these lengths, and cost no comparison.
        switch name.utf8.count {
        case 2: name == "te" && value != "trailers"
        case 7: name == "upgrade"
        case 10: name == "connection" || name == "keep-alive"
        case 16: name == "proxy-connection"
        case 17: name == "transfer-encoding"
        default: false
        }
    }
}
