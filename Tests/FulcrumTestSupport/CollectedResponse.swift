import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// A response with its body collected (up to 64 MiB): what the worker's and the proxy's
/// tests read.
package struct CollectedResponse: Sendable {
    package var status: HTTPResponseStatus
    package var headers: HTTPHeaders
    package var body: ByteBuffer

    package init(status: HTTPResponseStatus, headers: HTTPHeaders, body: ByteBuffer) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    package var text: String { String(buffer: body) }
    /// The worker that answered (its `X-Worker` header).
    package var worker: String? { headers.first(name: "X-Worker") }

    /// The body as a JSON object.
    package var json: [String: Any] {
        get throws {
            let data = Data(body.readableBytesView)
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw TestSupportError.notJSON(text)
            }
            return object
        }
    }

    /// The body decoded as a JSON object.
    package func jsonObject() throws -> [String: Any] {
        try json
    }

    /// Header pairs as the worker's `/echo` reports them.
    package var echoedHeaders: [(String, String)] {
        get throws {
            let pairs = try json["headers"] as? [[String]] ?? []
            return pairs.map { ($0[0], $0[1]) }
        }
    }
}

package enum TestSupportError: Error {
    /// The body was expected to be a JSON object.
    case notJSON(String)
}

extension HTTPClient {
    /// Sends a request to `url` and collects the response.
    package func send(
        _ method: HTTPMethod,
        url: String,
        headers: [(String, String)] = [],
        body: HTTPClientRequest.Body? = nil
    ) async throws -> CollectedResponse {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(contentsOf: headers)
        request.body = body
        let response = try await execute(request, timeout: .seconds(30))
        let collected = try await response.body.collect(upTo: 64 * 1024 * 1024)
        return CollectedResponse(status: response.status, headers: response.headers, body: collected)
    }
}
