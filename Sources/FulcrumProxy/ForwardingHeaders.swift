import NIOHTTP1

/// Header rewriting at the proxy hop (RFC 9110 §7.6.1): hop-by-hop headers are removed in
/// both directions, and requests gain `X-Forwarded-For/Proto/Host`.
///
/// Both directions make one pass over the headers to find what needs changing and touch
/// the header list again only when something does, since this runs for every request.
enum ForwardingHeaders {
    /// What the pass over a message's headers found.
    struct Framing {
        /// The Content-Length, when the message has one.
        var contentLength: Int?
        /// Whether a Transfer-Encoding is present (the decoder accepts only chunked ones).
        var isChunked = false
        /// Whether the request asked to upgrade the protocol (`Upgrade` header).
        var isUpgrade = false
    }

    /// Rewrites a client's request head for the backend. Returns the request's framing.
    static func prepareRequest(_ head: inout HTTPRequestHead, client: ClientInfo) -> Framing {
        var framing = Framing()
        var removals: [String] = []
        var existingForwardedFor: String?
        var hasForwardedProto = false
        var hasForwardedHost = false
        var host: String?
        for (name, value) in head.headers {
            switch classify(name) {
            case .hopByHop:
                removals.append(name)
            case .upgrade:
                removals.append(name)
                framing.isUpgrade = true
            case .connection:
                removals.append(name)
                appendNominated(by: value, to: &removals)
            case .forwardedFor:
                existingForwardedFor = existingForwardedFor.map { "\($0), \(value)" } ?? value
            case .forwardedProto:
                hasForwardedProto = true
            case .forwardedHost:
                hasForwardedHost = true
            case .host:
                host = value
            case .contentLength:
                framing.contentLength = Int(value)
            case .transferEncoding:
                framing.isChunked = true
            case .other:
                break
            }
        }
        for name in removals { head.headers.remove(name: name) }
        if framing.isChunked {
            // The decoder has de-chunked the body and the encoder re-chunks it only when the
            // header says exactly "chunked".
            head.headers.replaceOrAdd(name: "transfer-encoding", value: "chunked")
        }

        if let existingForwardedFor {
            head.headers.replaceOrAdd(name: "x-forwarded-for", value: "\(existingForwardedFor), \(client.addressText)")
        } else {
            head.headers.add(name: "x-forwarded-for", value: client.addressText)
        }
        let proto = client.isSecure ? "https" : "http"
        if hasForwardedProto {
            head.headers.replaceOrAdd(name: "x-forwarded-proto", value: proto)
        } else {
            head.headers.add(name: "x-forwarded-proto", value: proto)
        }
        if let host {
            if hasForwardedHost {
                head.headers.replaceOrAdd(name: "x-forwarded-host", value: host)
            } else {
                head.headers.add(name: "x-forwarded-host", value: host)
            }
        }
        // Fulcrum always speaks HTTP/1.1 to backends, so their connections can be pooled.
        head.version = .http1_1
        return framing
    }

    /// Removes hop-by-hop headers from a backend's response head. Returns the framing found.
    static func prepareResponse(_ head: inout HTTPResponseHead) -> Framing {
        var framing = Framing()
        var removals: [String] = []
        for (name, value) in head.headers {
            switch classify(name) {
            case .hopByHop, .upgrade:
                removals.append(name)
            case .connection:
                removals.append(name)
                appendNominated(by: value, to: &removals)
            case .contentLength:
                framing.contentLength = Int(value)
            case .transferEncoding:
                framing.isChunked = true
            case .forwardedFor, .forwardedProto, .forwardedHost, .host, .other:
                break
            }
        }
        for name in removals { head.headers.remove(name: name) }
        return framing
    }

    /// Adds the headers a Connection header nominates as hop-by-hop — except the ones that
    /// frame or address the message: removing `Content-Length`, `Transfer-Encoding` or `Host`
    /// because a peer named them would let a request body be read as another request
    /// (request smuggling).
    private static func appendNominated(by connectionValue: String, to removals: inout [String]) {
        for token in connectionValue.split(separator: ",") {
            let nominated = String(token.trimmingSpaces())
            switch classify(nominated) {
            case .contentLength, .transferEncoding, .host: continue
            default: if !nominated.isEmpty { removals.append(nominated) }
            }
        }
    }

    private enum Kind {
        case hopByHop, upgrade, connection, forwardedFor, forwardedProto, forwardedHost, host
        case contentLength, transferEncoding, other
    }

    /// Classifies a header name, case-insensitively, switching on its length first so most
    /// names are rejected without comparing bytes.
    private static func classify(_ name: String) -> Kind {
        var name = name
        return name.withUTF8 { bytes -> Kind in
            switch bytes.count {
            case 2 where bytes.equalsLowercase("te"): return .hopByHop
            case 4 where bytes.equalsLowercase("host"): return .host
            case 7 where bytes.equalsLowercase("trailer"): return .hopByHop
            case 7 where bytes.equalsLowercase("upgrade"): return .upgrade
            case 10 where bytes.equalsLowercase("connection"): return .connection
            case 10 where bytes.equalsLowercase("keep-alive"): return .hopByHop
            case 14 where bytes.equalsLowercase("content-length"): return .contentLength
            case 15 where bytes.equalsLowercase("x-forwarded-for"): return .forwardedFor
            case 16 where bytes.equalsLowercase("x-forwarded-host"): return .forwardedHost
            case 17 where bytes.equalsLowercase("x-forwarded-proto"): return .forwardedProto
            case 17 where bytes.equalsLowercase("transfer-encoding"): return .transferEncoding
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
