import NIOCore
import NIOHTTP1

/// A response Fulcrum makes itself: an error page (a deny rule, a 5xx of the proxy, a parse
/// error), a redirect, or a page of the shield's.
struct LocalResponse {
    enum Body {
        /// The frontend's error page for the status, explaining `detail`.
        case errorPage(detail: String)
        /// A page of Fulcrum's own (the shield's challenge), sent as it is.
        case html(String)
        /// Plain text, sent as it is (an ACME HTTP-01 answer).
        case text(String)
    }

    var status: HTTPResponseStatus
    var body: Body
    var headers: [(String, String)]
    /// The client connection closes after this answer (the request cannot be told apart from
    /// what follows it, or the client is refused for good).
    var closesConnection: Bool

    init(_ status: HTTPResponseStatus, _ detail: String, headers: [(String, String)] = [], closesConnection: Bool = false) {
        self.status = status
        self.body = .errorPage(detail: detail)
        self.headers = headers
        self.closesConnection = closesConnection
    }

    init(_ status: HTTPResponseStatus, text: String) {
        self.status = status
        self.body = .text(text)
        self.headers = []
        self.closesConnection = false
    }

    init(_ status: HTTPResponseStatus, html: String, headers: [(String, String)]) {
        self.status = status
        self.body = .html(html)
        self.headers = headers
        self.closesConnection = false
    }
}

extension LocalResponse {
    /// The head and body to send: the frontend's error page for the status, or the page as is.
    func rendered(pages: ErrorPages, request: HTTPRequestHead?, allocator: ByteBufferAllocator) -> (HTTPResponseHead, ByteBuffer) {
        var head: HTTPResponseHead
        let body: ByteBuffer
        switch self.body {
        case .errorPage(let detail):
            (head, body) = pages.response(status: status, detail: detail, request: request, allocator: allocator)
        case .html(let html):
            body = allocator.buffer(string: html)
            head = HTTPResponseHead(version: .http1_1, status: status)
            head.headers.add(name: "content-type", value: "text/html; charset=utf-8")
            head.headers.add(name: "content-length", value: "\(body.readableBytes)")
        case .text(let text):
            body = allocator.buffer(string: text)
            head = HTTPResponseHead(version: .http1_1, status: status)
            head.headers.add(name: "content-type", value: "text/plain")
            head.headers.add(name: "content-length", value: "\(body.readableBytes)")
        }
        head.headers.add(contentsOf: headers)
        return (head, body)
    }
}
