import NIOCore
import NIOHPACK
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The server side's conversions, as NIOHTTP2's `HTTP2FramePayloadToHTTP1ClientCodec` makes
/// them, without a channel per stream to run it in: the request's block from the head the
/// exchange serialized for HTTP/1.1 (`ForwardingHeaders`, which keeps the forwarding rules in
/// one place), and the response's head from the server's block, checked on the way.
extension HTTP2Heads {
    /// A server's response block that HTTP/2 does not allow (RFC 9113 § 8.1.1): the stream
    /// is reset and the exchange fails.
    struct MalformedResponse: Error {
        var reason: String
    }

    /// The request block for a serialized HTTP/1.1 head (`METHOD URI HTTP/1.1`, `name: value`
    /// lines, an empty line), read in place: pseudo-header fields first (`:authority` from
    /// `Host`, or `authority` without one), then the fields in lower case without those HTTP/2
    /// forbids. Nil for anything else, which only a bug could hand over.
    static func requestBlock(serializedHead head: ByteBuffer, scheme: String, authority: String) -> HPACKHeaders? {
        head.withUnsafeReadableBytes { bytes -> HPACKHeaders? in
            guard let requestLineEnd = lineEnd(in: bytes, from: 0) else { return nil }
            let requestLine = bytes[0..<requestLineEnd]
            guard let methodEnd = requestLine.firstIndex(of: UInt8(ascii: " ")),
                let uriEnd = requestLine.lastIndex(of: UInt8(ascii: " ")), uriEnd > methodEnd
            else { return nil }
            var fields: [(name: Range<Int>, value: Range<Int>)] = []
            fields.reserveCapacity(16)
            var host: Range<Int>?
            var start = requestLineEnd + 2
            while true {
                guard let end = lineEnd(in: bytes, from: start) else { return nil }
                if end == start { break }
                guard let colon = bytes[start..<end].firstIndex(of: UInt8(ascii: ":")) else { return nil }
                var valueStart = colon + 1
                while valueStart < end, bytes[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
                let field = (name: start..<colon, value: valueStart..<end)
                if isName(field.name, in: bytes, lowercase: "host") {
                    host = host ?? field.value
                } else if !isConnectionSpecific(field.name, in: bytes) {
                    fields.append(field)
                }
                start = end + 2
            }
            var block = HPACKHeaders()
            block.reserveCapacity(fields.count + 4)
            block.add(name: ":method", value: string(bytes[0..<methodEnd]))
            block.add(name: ":scheme", value: scheme)
            block.add(name: ":authority", value: host.map { string(bytes[$0]) } ?? authority)
            block.add(name: ":path", value: string(bytes[(methodEnd + 1)..<uriEnd]))
            for field in fields {
                block.add(name: lowercasedString(bytes[field.name]), value: string(bytes[field.value]))
            }
            return block
        }
    }

    /// The response head of a server's final or interim block: `:status` and nothing else of
    /// the pseudo-header fields, valid names and values (an HTTP/1.1 client would read a CR or
    /// LF as the end of a field), none HTTP/2 forbids. Like NIOHTTP2's codec, a final response
    /// that may have a body and has no `content-length` is marked chunked (or, when the block
    /// ends the stream, `content-length: 0`): how the exchange reads a body without a length.
    static func responseHead(
        from block: HPACKHeaders,
        requestMethod: HTTPMethod,
        endStream: Bool
    ) throws(MalformedResponse)
        -> HTTPResponseHead
    {
        var status: Int?
        var headers = HTTPHeaders()
        headers.reserveCapacity(block.count)
        var hasContentLength = false
        for (name, value, _) in block {
            if name.utf8.first == UInt8(ascii: ":") {
                guard name == ":status", status == nil, headers.isEmpty else { throw MalformedResponse(reason: "pseudo-header field \(name)") }
                guard value.utf8.count == 3, let code = Int(value), (100...999).contains(code) else {
                    throw MalformedResponse(reason: ":status \(value)")
                }
                status = code
                continue
            }
            guard HTTP2FieldRules.isValidName(name), HTTP2FieldRules.isValidValue(value), !HTTP2FieldRules.isForbidden(name: name, value: value)
            else { throw MalformedResponse(reason: "field \(name)") }
            if name == "content-length" { hasContentLength = true }
            headers.add(name: name, value: value)
        }
        guard let status else { throw MalformedResponse(reason: "no :status") }
        if !hasContentLength, !(100..<200).contains(status), status != 204, status != 304, requestMethod != .HEAD {
            headers.add(name: endStream ? "content-length" : "transfer-encoding", value: endStream ? "0" : "chunked")
        }
        return HTTPResponseHead(version: HTTPVersion(major: 2, minor: 0), status: HTTPResponseStatus(statusCode: status), headers: headers)
    }

    // MARK: Bytes

    /// The index of the CR of the CRLF that ends the line starting at `start`.
    private static func lineEnd(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard start < bytes.count, let base = bytes.baseAddress,
            let carriageReturn = memchr(base + start, Int32(UInt8(ascii: "\r")), bytes.count - start)
        else { return nil }
        let index = base.distance(to: UnsafeRawPointer(carriageReturn))
        return index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "\n") ? index : nil
    }

    private static func isName(_ range: Range<Int>, in bytes: UnsafeRawBufferPointer, lowercase: StaticString) -> Bool {
        guard range.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = UnsafeRawBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
        for (offset, index) in range.enumerated() where lowered(bytes[index]) != expected[offset] { return false }
        return true
    }

    /// The fields that concern one connection only (RFC 9113 § 8.2.2); `ForwardingHeaders`
    /// already left out the rest of the hop-by-hop ones, and `te` but for `trailers`.
    private static func isConnectionSpecific(_ name: Range<Int>, in bytes: UnsafeRawBufferPointer) -> Bool {
        switch name.count {
        case 7: isName(name, in: bytes, lowercase: "upgrade")
        case 10: isName(name, in: bytes, lowercase: "connection") || isName(name, in: bytes, lowercase: "keep-alive")
        case 16: isName(name, in: bytes, lowercase: "proxy-connection")
        case 17: isName(name, in: bytes, lowercase: "transfer-encoding")
        default: false
        }
    }

    @inline(__always)
    private static func lowered(_ byte: UInt8) -> UInt8 {
        byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte
    }

    private static func string(_ bytes: Slice<UnsafeRawBufferPointer>) -> String {
        String(decoding: bytes, as: UTF8.self)
    }

    /// The name in lower case (names from HTTP/2 clients are already; those from HTTP/1.1
    /// clients are often not). The bytes are a token that llhttp parsed: ASCII.
    private static func lowercasedString(_ bytes: Slice<UnsafeRawBufferPointer>) -> String {
        String(unsafeUninitializedCapacity: bytes.count) { buffer in
            var offset = 0
            for byte in bytes {
                buffer[offset] = lowered(byte)
                offset += 1
            }
            return offset
        }
    }
}
