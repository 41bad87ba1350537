import FulcrumBalancing
import FulcrumConfig
import NIOCore
import NIOHTTP1

/// A backend's `sticky` setting, compiled: the value that names each server, and how the
/// cookie is read from requests and written into responses.
///
/// **Values.** A server's value is 16 hex digits of a stable hash of its backend's and its own
/// name (`StableHash`): it says nothing of the server's address, it is the same in every
/// Fulcrum instance, and a reload that keeps the server keeps it. A forged value can only
/// choose a server, which a client can do anyway by retrying until it lands there.
///
/// **Modes** (HAProxy's `cookie`):
/// - `insert` (`insert indirect nocache`): Fulcrum sets `NAME=VALUE` when the client has no
///   cookie naming the server that answered. The cookie is removed from the request the server
///   receives, and a response that sets it is marked `Cache-Control: private`, so no shared
///   cache hands one client's server to others.
/// - `prefix`: the server's own session cookie `NAME` carries the server in front of its value
///   (`NAME=VALUE~session`). Fulcrum adds the prefix to the server's `Set-Cookie`, and removes
///   it from requests, so the server sees its own value.
final class StickyCookie: Sendable {
    let name: String
    private let nameBytes: [UInt8]
    let mode: StickyConfig.Mode
    /// Each server's value, with the backend's server indices.
    let values: [String]
    private let serverByValue: [UInt64: Int]
    /// What follows `NAME=VALUE` in an inserted cookie, `Secure` aside.
    private let attributes: String
    /// `secure`, when configured (nil: when the client came over TLS).
    private let secure: Bool?

    init(_ config: StickyConfig, backend: String, servers: [String]) {
        name = config.cookie
        nameBytes = Array(config.cookie.utf8)
        mode = config.mode
        var values: [String] = []
        var serverByValue: [UInt64: Int] = [:]
        for (index, server) in servers.enumerated() {
            let value = StableHash.of("\(backend)\u{0}\(server)")
            values.append(Self.hex(value))
            serverByValue[value] = index
        }
        self.values = values
        self.serverByValue = serverByValue
        var attributes = "; Path=/"
        if let ttl = config.ttl { attributes += "; Max-Age=\(ttl.components.seconds)" }
        if config.httpOnly { attributes += "; HttpOnly" }
        if let sameSite = config.sameSite { attributes += "; SameSite=\(sameSite.attributeValue)" }
        self.attributes = attributes
        secure = config.secure
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    // MARK: Requests

    /// Reads a request's `Cookie` line and writes it for the server: without the cookie
    /// (`insert`), or with its prefix taken off (`prefix`), so the server sees what it would see
    /// without Fulcrum. A line left with no cookie is not written. One pass over the bytes, in
    /// place: no copy of the header is made.
    ///
    /// - Parameter server: set, at the first cookie of this backend's on the line (and left
    ///   alone after), to the server it names; `.some(nil)` when it names none (a server since
    ///   removed, or a forgery), and the request is then balanced as usual.
    func writeCookieLine(name headerName: String, value: String, server: inout Int??, into buffer: inout ByteBuffer) {
        var value = value
        value.withUTF8 { bytes in
            let lineStart = buffer.writerIndex
            buffer.writeString(headerName)
            buffer.writeStaticString(": ")
            var wrote = false
            func write(_ range: Range<Int>) {
                buffer.writeBytes(UnsafeBufferPointer(rebasing: bytes[range]))
            }
            forEachPair(in: bytes) { pair in
                guard let ours = ownValue(bytes, pair: pair) else {
                    if wrote { buffer.writeStaticString("; ") }
                    write(pair)
                    wrote = true
                    return true
                }
                if server == nil { server = .some(self.server(named: bytes, range: ours)) }
                // `insert`: left out. `prefix`: `NAME=` and what follows the prefix.
                if mode == .prefix {
                    if wrote { buffer.writeStaticString("; ") }
                    if let tilde = prefixEnd(bytes, range: ours) {
                        write(pair.lowerBound..<ours.lowerBound)
                        write((tilde + 1)..<ours.upperBound)
                    } else {
                        write(pair)
                    }
                    wrote = true
                }
                return true
            }
            if wrote {
                buffer.writeStaticString("\r\n")
            } else {
                buffer.moveWriterIndex(to: lineStart)
            }
        }
    }

    /// Calls `body` with the range of each `name=value` pair of a `Cookie` value (leading
    /// whitespace left out), until it returns false.
    private func forEachPair(in bytes: UnsafeBufferPointer<UInt8>, _ body: (Range<Int>) -> Bool) {
        var index = 0
        while index < bytes.count {
            while index < bytes.count, bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "\t") { index += 1 }
            let start = index
            while index < bytes.count, bytes[index] != UInt8(ascii: ";") { index += 1 }
            var end = index
            while end > start, bytes[end - 1] == UInt8(ascii: " ") || bytes[end - 1] == UInt8(ascii: "\t") { end -= 1 }
            if end > start, !body(start..<end) { return }
            index += 1
        }
    }

    /// The range of the value when `pair` is this backend's cookie (`NAME=...`); nil otherwise.
    private func ownValue(_ bytes: UnsafeBufferPointer<UInt8>, pair: Range<Int>) -> Range<Int>? {
        let equals = pair.lowerBound + nameBytes.count
        guard equals < pair.upperBound, bytes[equals] == UInt8(ascii: "=") else { return nil }
        for (offset, byte) in nameBytes.enumerated() where bytes[pair.lowerBound + offset] != byte { return nil }
        return (equals + 1)..<pair.upperBound
    }

    /// The index of the `~` that ends a value's prefix: after exactly 16 characters.
    private func prefixEnd(_ bytes: UnsafeBufferPointer<UInt8>, range: Range<Int>) -> Int? {
        let tilde = range.lowerBound + 16
        guard tilde < range.upperBound, bytes[tilde] == UInt8(ascii: "~") else { return nil }
        return tilde
    }

    /// The server named by the value in `range` (`insert`), or by its prefix (`prefix`).
    private func server(named bytes: UnsafeBufferPointer<UInt8>, range: Range<Int>) -> Int? {
        let digits: Range<Int>
        switch mode {
        case .insert:
            digits = range
        case .prefix:
            guard let tilde = prefixEnd(bytes, range: range) else { return nil }
            digits = range.lowerBound..<tilde
        }
        guard digits.count == 16 else { return nil }
        var number: UInt64 = 0
        for byte in bytes[digits] {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            number = number << 4 | UInt64(digit)
        }
        return serverByValue[number]
    }

    // MARK: Responses

    /// Marks the response of `server` to a request whose cookie named `requested`: `insert`
    /// sets the cookie when they differ (a new client, or its server could not take it), and
    /// `prefix` prefixes the server's own cookie.
    func stamp(_ head: inout HTTPResponseHead, server: Int, requested: Int?, isSecure: Bool) {
        // Informational responses carry no cookies (a 101 does: it is the response).
        guard head.status.code >= 200 || head.status == .switchingProtocols else { return }
        switch mode {
        case .insert:
            guard requested != server else { return }
            let secureAttribute = (secure ?? isSecure) ? "; Secure" : ""
            head.headers.add(name: "set-cookie", value: "\(name)=\(values[server])\(attributes)\(secureAttribute)")
            if !Self.isPrivate(head.headers) {
                head.headers.add(name: "cache-control", value: "private")
            }
        case .prefix:
            guard head.headers.contains(name: "set-cookie") else { return }
            var setCookies: [String] = []
            var changed = false
            for (headerName, value) in head.headers where headerName.lowercased() == "set-cookie" {
                if value.hasPrefix(name), value.dropFirst(name.utf8.count).first == "=" {
                    setCookies.append("\(name)=\(values[server])~\(value.dropFirst(name.utf8.count + 1))")
                    changed = true
                } else {
                    setCookies.append(value)
                }
            }
            guard changed else { return }
            head.headers.remove(name: "set-cookie")
            for value in setCookies { head.headers.add(name: "set-cookie", value: value) }
        }
    }

    /// Whether a `Cache-Control` already keeps shared caches from storing the response.
    private static func isPrivate(_ headers: HTTPHeaders) -> Bool {
        headers[canonicalForm: "cache-control"].contains { directive in
            let lowered = directive.lowercased()
            return lowered.hasPrefix("private") || lowered == "no-store" || lowered.hasPrefix("no-cache")
        }
    }
}
