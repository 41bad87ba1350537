import NIOHPACK
import NIOHTTP1

/// Converts between an HTTP/2 stream's header blocks and the HTTP/1 heads the exchange works
/// with, as NIOHTTP2's `HTTP2FramePayloadToHTTP1ServerCodec` does, without a channel per
/// stream to run it in, and checks the client's blocks on the way (`HTTP2FieldRules`).
enum HTTP2Heads {
    /// A malformed request block (RFC 9113 § 8.1.1): the stream is reset.
    struct MalformedRequest: Error, Equatable {
        var reason: String
    }

    /// The request head of a stream's first header block. `endStream`: the block ends the
    /// request, so a method with a body gets `content-length: 0`; without it, and without a
    /// `content-length`, the body is marked chunked, as the server receives it.
    static func requestHead(from block: HPACKHeaders, endStream: Bool) throws(MalformedRequest) -> HTTPRequestHead {
        var method: String?
        var scheme: String?
        var path: String?
        var authority: String?
        var hasHost = false
        var hasContentLength = false
        var cookieFields = 0
        var regularFields = 0
        // Two passes over the block: this one checks it and finds what comes first in the head
        // (a Host made from :authority), the second copies the fields, with no array between.
        for (name, value, _) in block {
            guard name.utf8.first == UInt8(ascii: ":") else {
                try checkRegularField(name, value)
                if name == "host" { hasHost = true }
                if name == "content-length" { hasContentLength = true }
                if name == "cookie" { cookieFields += 1 }
                regularFields += 1
                continue
            }
            // Pseudo-header fields come first, each once, and only those of a request.
            guard regularFields == 0 else { throw MalformedRequest(reason: "\(name) after a regular field") }
            guard HTTP2FieldRules.isValidPseudoValue(value) else { throw MalformedRequest(reason: "\(name) value") }
            switch name {
            case ":method": try setOnce(&method, value, name)
            case ":scheme": try setOnce(&scheme, value, name)
            case ":path": try setOnce(&path, value, name)
            case ":authority": try setOnce(&authority, value, name)
            default: throw MalformedRequest(reason: "unknown pseudo-header field \(name)")
            }
        }
        guard let method else { throw MalformedRequest(reason: "no :method") }
        let uri: String
        if method == "CONNECT" {
            // CONNECT names its target in :authority alone (RFC 9113 § 8.5); the exchange
            // refuses it, as it does over HTTP/1.1.
            guard scheme == nil, path == nil, let authority else { throw MalformedRequest(reason: "CONNECT fields") }
            uri = authority
        } else {
            guard scheme != nil, let path, !path.isEmpty else { throw MalformedRequest(reason: "no :scheme or :path") }
            uri = path
        }
        var head = HTTPRequestHead(
            version: HTTPVersion(major: 2, minor: 0),
            method: HTTPMethod(rawValue: method),
            uri: uri,
            headers: HTTPHeaders()
        )
        head.headers.reserveCapacity(regularFields + 2)
        if !hasHost, let authority {
            head.headers.add(name: "host", value: authority)
        }
        switch head.method {
        case .GET, .HEAD, .DELETE, .CONNECT, .TRACE:
            break
        default:
            if !hasContentLength {
                head.headers.add(name: endStream ? "content-length" : "transfer-encoding", value: endStream ? "0" : "chunked")
            }
        }
        guard cookieFields > 1 else {
            for (name, value, _) in block.dropFirst(block.count - regularFields) {
                head.headers.add(name: name, value: value)
            }
            return head
        }
        // An HTTP/2 client may send each cookie as a field of its own (RFC 9113 §8.2.3, for
        // HPACK's sake); an HTTP/1.1 server gets them as one line, joined with "; ", where the
        // first one was.
        var cookies: [String] = []
        cookies.reserveCapacity(cookieFields)
        for (name, value, _) in block.dropFirst(block.count - regularFields) where name == "cookie" {
            cookies.append(value)
        }
        var wroteCookie = false
        for (name, value, _) in block.dropFirst(block.count - regularFields) {
            guard name == "cookie" else {
                head.headers.add(name: name, value: value)
                continue
            }
            if !wroteCookie {
                head.headers.add(name: "cookie", value: cookies.joined(separator: "; "))
                wroteCookie = true
            }
        }
        return head
    }

    /// The fields of a trailers block, for the HTTP/1.1 server (no pseudo-header field).
    static func trailers(from block: HPACKHeaders) throws(MalformedRequest) -> HTTPHeaders {
        var trailers = HTTPHeaders()
        trailers.reserveCapacity(block.count)
        for (name, value, _) in block {
            try checkRegularField(name, value)
            trailers.add(name: name, value: value)
        }
        return trailers
    }

    private static func checkRegularField(_ name: String, _ value: String) throws(MalformedRequest) {
        guard HTTP2FieldRules.isValidName(name) else { throw MalformedRequest(reason: "field name \(name)") }
        guard HTTP2FieldRules.isValidValue(value) else { throw MalformedRequest(reason: "\(name) value") }
        guard !HTTP2FieldRules.isForbidden(name: name, value: value) else { throw MalformedRequest(reason: "\(name) field") }
    }

    private static func setOnce(_ slot: inout String?, _ value: String, _ name: String) throws(MalformedRequest) {
        guard slot == nil else { throw MalformedRequest(reason: "\(name) twice") }
        slot = value
    }

    /// A response head's HTTP/2 block: `:status`, then its fields in lower case without the
    /// connection-specific ones (and those its `Connection` names). `strictTransportSecurity`
    /// replaces the server's own.
    static func responseBlock(_ head: HTTPResponseHead, strictTransportSecurity: String?) -> HPACKHeaders {
        var block = HPACKHeaders()
        block.reserveCapacity(head.headers.count + 1)
        block.add(name: ":status", value: String(head.status.code))
        appendFields(head.headers, to: &block, replacingStrictTransportSecurity: strictTransportSecurity != nil)
        if let strictTransportSecurity {
            block.add(name: "strict-transport-security", value: strictTransportSecurity)
        }
        return block
    }

    /// A trailers block for the client.
    static func trailersBlock(_ trailers: HTTPHeaders) -> HPACKHeaders {
        var block = HPACKHeaders()
        block.reserveCapacity(trailers.count)
        appendFields(trailers, to: &block, replacingStrictTransportSecurity: false)
        return block
    }

    /// The server's fields, lower case, without those HTTP/2 forbids. The server's head was
    /// parsed by llhttp, so names are tokens and values hold no CR or LF.
    private static func appendFields(_ fields: HTTPHeaders, to block: inout HPACKHeaders, replacingStrictTransportSecurity: Bool) {
        var connectionOptions: [String] = []
        for (name, value) in fields {
            let name = lowercased(name)
            switch name.utf8.count {
            case 10 where name == "connection":
                // Its options name more fields that end at this hop (RFC 9110 § 7.6.1).
                connectionOptions += namedFields(inConnectionOptions: value)
                continue
            case 7 where name == "upgrade", 10 where name == "keep-alive", 16 where name == "proxy-connection",
                17 where name == "transfer-encoding":
                continue
            case 25 where replacingStrictTransportSecurity && name == "strict-transport-security":
                continue
            default:
                block.add(name: name, value: value)
            }
        }
        if !connectionOptions.isEmpty {
            var kept = HPACKHeaders()
            kept.reserveCapacity(block.count)
            for (name, value, indexing) in block where !connectionOptions.contains(name) {
                kept.add(name: name, value: value, indexing: indexing)
            }
            block = kept
        }
    }

    /// The fields a `Connection` value names, in lower case, beyond those always dropped
    /// (`keep-alive`) and `close`, which names none: most servers send only those.
    private static func namedFields(inConnectionOptions value: String) -> [String] {
        if equalsIgnoringASCIICase(value, lowercase: "keep-alive") || equalsIgnoringASCIICase(value, lowercase: "close") {
            return []
        }
        var names: [String] = []
        for option in value.utf8.split(separator: UInt8(ascii: ",")) {
            let trimmed = option.drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
            let end = trimmed.lastIndex { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }
            guard let end else { continue }
            let name = lowercased(String(decoding: trimmed[...end], as: UTF8.self))
            if name != "keep-alive" && name != "close" { names.append(name) }
        }
        return names
    }

    /// The name in lower case: as it is when it is already, a constant when it is one of the
    /// names servers send most (nothing allocated or copied), and otherwise rebuilt byte by
    /// byte (names are ASCII tokens).
    static func lowercased(_ name: String) -> String {
        guard name.utf8.contains(where: { $0 &- UInt8(ascii: "A") < 26 }) else { return name }
        if let common = commonName(name), equalsIgnoringASCIICase(name, lowercase: common) {
            return common
        }
        return String(unsafeUninitializedCapacity: name.utf8.count) { buffer in
            var index = 0
            for byte in name.utf8 {
                buffer[index] = byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte
                index += 1
            }
            return index
        }
    }

    /// The common name `name` may be, by its length and first letter (a match still has to be
    /// checked).
    private static func commonName(_ name: String) -> String? {
        guard let first = name.utf8.first.map({ $0 | 0x20 }) else { return nil }
        switch (name.utf8.count, first) {
        case (4, UInt8(ascii: "d")): return "date"
        case (4, UInt8(ascii: "e")): return "etag"
        case (4, UInt8(ascii: "v")): return "vary"
        case (6, UInt8(ascii: "s")): return "server"
        case (7, UInt8(ascii: "e")): return "expires"
        case (7, UInt8(ascii: "u")): return "upgrade"
        case (8, UInt8(ascii: "l")): return "location"
        case (10, UInt8(ascii: "c")): return "connection"
        case (10, UInt8(ascii: "k")): return "keep-alive"
        case (10, UInt8(ascii: "s")): return "set-cookie"
        case (12, UInt8(ascii: "c")): return "content-type"
        case (13, UInt8(ascii: "a")): return "accept-ranges"
        case (13, UInt8(ascii: "c")): return "cache-control"
        case (13, UInt8(ascii: "l")): return "last-modified"
        case (14, UInt8(ascii: "c")): return "content-length"
        case (16, UInt8(ascii: "c")): return "content-encoding"
        case (17, UInt8(ascii: "t")): return "transfer-encoding"
        case (25, UInt8(ascii: "s")): return "strict-transport-security"
        default: return nil
        }
    }

    private static func equalsIgnoringASCIICase(_ name: String, lowercase: String) -> Bool {
        // Over the strings' bytes in place: iterating their UTF-8 views costs several times more.
        let equal = name.utf8.withContiguousStorageIfAvailable { name in
            lowercase.utf8.withContiguousStorageIfAvailable { lowercase in
                guard name.count == lowercase.count else { return false }
                for index in 0..<name.count {
                    let byte = name[index]
                    if (byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte) != lowercase[index] { return false }
                }
                return true
            }
        }
        return (equal ?? nil) ?? false
    }
}
