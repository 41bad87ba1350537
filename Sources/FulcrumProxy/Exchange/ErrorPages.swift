import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The small pages Fulcrum answers with when it cannot or will not forward a request.
///
/// HTML by default, JSON when the client's `Accept` prefers `application/json`; a frontend
/// may replace the HTML page of any status with a file (`error_files`), read once when the
/// configuration is applied.
struct ErrorPages: Sendable {
    private let customHTML: [Int: ByteBuffer]

    /// The built-in pages only (when no frontend applies).
    static let builtIn = ErrorPages()

    private init() {
        self.customHTML = [:]
    }

    init(customFiles: [Int: String]) throws {
        var pages: [Int: ByteBuffer] = [:]
        for (status, path) in customFiles {
            pages[status] = try ByteBuffer(bytes: Self.readFile(path))
        }
        self.customHTML = pages
    }

    /// Builds the response head and body for `status`, explaining `detail` to the client.
    func response(
        status: HTTPResponseStatus,
        detail: String,
        request: HTTPRequestHead?,
        allocator: ByteBufferAllocator
    ) -> (HTTPResponseHead, ByteBuffer) {
        let wantsJSON = request.map { Self.prefersJSON($0.headers) } ?? false
        var body: ByteBuffer
        let contentType: String
        if wantsJSON {
            contentType = "application/json"
            body = allocator.buffer(capacity: 128)
            body.writeString(
                #"{"status":\#(status.code),"error":"\#(Self.jsonEscaped(status.reasonPhrase))","detail":"\#(Self.jsonEscaped(detail))"}"#
            )
            body.writeString("\n")
        } else if let custom = customHTML[Int(status.code)] {
            contentType = "text/html; charset=utf-8"
            body = custom
        } else {
            contentType = "text/html; charset=utf-8"
            body = allocator.buffer(capacity: 512)
            let title = "\(status.code) \(Self.htmlEscaped(status.reasonPhrase))"
            body.writeString(
                """
                <!DOCTYPE html>
                <html><head><meta charset="utf-8"><title>\(title)</title>
                <style>body{font-family:system-ui,sans-serif;margin:4em auto;max-width:36em;color:#222}h1{font-size:1.6em}p{color:#555}</style>
                </head><body><h1>\(title)</h1><p>\(Self.htmlEscaped(detail))</p><hr><p><small>fulcrum</small></p></body></html>

                """
            )
        }
        var headers = HTTPHeaders()
        headers.reserveCapacity(4)
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "content-length", value: String(body.readableBytes))
        headers.add(name: "cache-control", value: "no-store")
        return (HTTPResponseHead(version: .http1_1, status: status, headers: headers), body)
    }

    /// The whole response as bytes, with `Connection: close`, for writing below the HTTP
    /// encoder (used when no request head was decoded, e.g. a header-read timeout).
    /// `strictTransportSecurity` is the frontend's whole HSTS header line, if any.
    func serializedResponse(
        status: HTTPResponseStatus,
        detail: String,
        strictTransportSecurity: String? = nil,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        var (head, body) = response(status: status, detail: detail, request: nil, allocator: allocator)
        head.headers.add(name: "connection", value: "close")
        var buffer = allocator.buffer(capacity: 256 + body.readableBytes)
        ForwardingHeaders.writeLocalResponseHead(head, strictTransportSecurity: strictTransportSecurity, into: &buffer)
        buffer.writeBuffer(&body)
        return buffer
    }

    /// Whether `Accept` ranks `application/json` above `text/html` (no q-value parsing
    /// beyond "which appears with the higher q, first one wins on ties").
    static func prefersJSON(_ headers: HTTPHeaders) -> Bool {
        guard let accept = headers.first(name: "accept") else { return false }
        var jsonQuality = -1.0
        var htmlQuality = -1.0
        for range in accept.split(separator: ",") {
            let parts = range.split(separator: ";")
            let type = parts.first.map { $0.trimmingSpaces().lowercased() } ?? ""
            var quality = 1.0
            for parameter in parts.dropFirst() {
                let pair = parameter.trimmingSpaces()
                if pair.hasPrefix("q="), let value = Double(pair.dropFirst(2)) { quality = value }
            }
            if type == "application/json" || type == "application/problem+json" {
                jsonQuality = max(jsonQuality, quality)
            } else if type == "text/html" || type == "*/*" && htmlQuality < 0 {
                htmlQuality = max(htmlQuality, type == "*/*" ? quality - 0.001 : quality)
            }
        }
        return jsonQuality > 0 && jsonQuality > htmlQuality
    }

    private static func htmlEscaped(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\"": out += "&quot;"
            default: out.append(character)
            }
        }
        return out
    }

    private static func jsonEscaped(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private static func readFile(_ path: String) throws -> [UInt8] {
        guard let file = fopen(path, "rb") else { throw ErrorPageError.unreadable(path) }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return bytes
    }
}

enum ErrorPageError: Error, CustomStringConvertible {
    case unreadable(String)
    var description: String {
        switch self {
        case .unreadable(let path): "cannot read error page file \(path)"
        }
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var slice = self
        while slice.first == " " || slice.first == "\t" { slice = slice.dropFirst() }
        while slice.last == " " || slice.last == "\t" { slice = slice.dropLast() }
        return slice
    }
}
