import Foundation
import Hummingbird

/// An error answer of the admin API, as `application/problem+json` (RFC 9457): a status, a
/// title, a detail a person can act on, and the field at fault when there is one.
struct AdminProblem: Error, HTTPResponseError {
    let status: HTTPResponse.Status
    let detail: String
    /// The request field (JSON key or path parameter) the problem is about.
    let field: String?
    /// Extra headers (`WWW-Authenticate` on 401).
    let headers: HTTPFields
    /// Every problem found, when there are several (a configuration's validation errors).
    let errors: [ErrorItem]?

    /// One of several problems: where (a configuration path and line) and what.
    struct ErrorItem: Encodable {
        let path: String
        let line: Int?
        let message: String
    }

    init(
        _ status: HTTPResponse.Status,
        _ detail: String,
        field: String? = nil,
        errors: [ErrorItem]? = nil,
        headers: HTTPFields = [:]
    ) {
        self.status = status
        self.detail = detail
        self.field = field
        self.errors = errors
        self.headers = headers
    }

    private struct Body: Encodable {
        let type = "about:blank"
        let title: String
        let status: Int
        let detail: String
        let field: String?
        let errors: [ErrorItem]?
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = Body(title: status.reasonPhrase, status: status.code, detail: detail, field: field, errors: errors)
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        let response = Response(status: status, headers: headers, body: .init(byteBuffer: try AdminJSON.encode(body)))
        // A HEAD answer has the headers of the GET's and no content (RFC 9110 §9.3.2), errors
        // included: content there would be read as the start of the next response.
        return request.method == .head ? response.createHeadResponse() : response
    }
}

/// The admin API's JSON: sorted keys, so answers are stable and diffable.
enum AdminJSON {
    static func encode(_ value: some Encodable) throws -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(value)
        data.append(UInt8(ascii: "\n"))
        return ByteBuffer(bytes: data)
    }

    /// A `200 OK` (or `status`) JSON response.
    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: try encode(value)))
    }
}
