import NIOCore
import NIOHTTP1

/// Fulcrum's own answers to gRPC requests (`content-type: application/grpc…`): not an error
/// page, which a gRPC client cannot read, but a gRPC status in a Trailers-Only response
/// (HTTP 200, `grpc-status`, `grpc-message`, no body), as Envoy and HAProxy answer.
///
/// The status follows gRPC's HTTP-to-gRPC mapping (doc/http-grpc-status-mapping.md), except
/// where Fulcrum knows more than the HTTP status says: its own response timeout is
/// DEADLINE_EXCEEDED, not UNAVAILABLE.
enum GRPCLocalResponse {
    /// Whether `request` is a gRPC call (gRPC-Web, `application/grpc-web…`, is not: its
    /// clients read HTTP statuses).
    static func isGRPC(_ request: HTTPRequestHead?) -> Bool {
        guard let contentType = request?.headers.first(name: "content-type") else { return false }
        let lowered = contentType.lowercased()
        return lowered.hasPrefix("application/grpc") && !lowered.hasPrefix("application/grpc-web")
    }

    /// gRPC status codes Fulcrum answers with.
    enum Code: Int {
        case unknown = 2
        case deadlineExceeded = 4
        case permissionDenied = 7
        case unimplemented = 12
        case `internal` = 13
        case unavailable = 14
        case unauthenticated = 16
    }

    /// The gRPC status for a local answer of `status`; `timedOut`: the server did not answer
    /// within the response timeout (or the call's deadline).
    static func code(for status: HTTPResponseStatus, timedOut: Bool) -> Code {
        if timedOut { return .deadlineExceeded }
        switch status.code {
        case 400: return .internal
        case 401: return .unauthenticated
        case 403: return .permissionDenied
        case 404: return .unimplemented
        case 429, 502, 503, 504: return .unavailable
        default: return .unknown
        }
    }

    /// The Trailers-Only head answering `request` with `response`'s meaning.
    static func head(for response: LocalResponse, request: HTTPRequestHead) -> HTTPResponseHead {
        let message: String
        switch response.body {
        case .errorPage(let detail): message = detail
        case .html, .text: message = "\(response.status.code) \(response.status.reasonPhrase)"
        }
        let code = code(for: response.status, timedOut: response.status == .gatewayTimeout)
        var headers: HTTPHeaders = [
            "content-type": "application/grpc",
            "grpc-status": "\(code.rawValue)",
            "grpc-message": percentEncoded(message),
        ]
        // An HTTP/1.1 response needs a length to end; in HTTP/2, the HEADERS frame ends the
        // stream.
        if request.version.major < 2 {
            headers.add(name: "content-length", value: "0")
        }
        return HTTPResponseHead(version: request.version, status: .ok, headers: headers)
    }

    /// `grpc-message` is percent-encoded: every byte outside 0x20–0x7E, and `%` (gRPC's
    /// PROTOCOL-HTTP2.md).
    static func percentEncoded(_ message: String) -> String {
        var encoded = ""
        for byte in message.utf8 {
            if byte >= 0x20, byte <= 0x7E, byte != UInt8(ascii: "%") {
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                encoded += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return encoded
    }
}

extension String {
    fileprivate func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
