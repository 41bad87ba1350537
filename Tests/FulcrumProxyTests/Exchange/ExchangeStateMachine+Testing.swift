import NIOCore
import NIOHTTP1

@testable import FulcrumProxy

/// Short, comparable descriptions of the machine's actions, so that a test reads as the
/// sequence of what the handler is told to do.
extension ExchangeStateMachine.Action {
    var summary: String {
        switch self {
        case .wait: "wait"
        case .admit(let head): "admit \(head.method.rawValue) \(head.uri)"
        case .rescreen(let head): "rescreen \(head.uri)"
        case .pickServer(let tried): "pickServer excluding \(tried.count)"
        case .reconnect(let index): "reconnect \(index)"
        case .scheduleTarpit(let delay, _): "scheduleTarpit \(delay.nanoseconds / 1_000_000)ms"
        case .lookUpCrawler(let address, _): "lookUpCrawler \(address)"
        case .checkSharedLimit(let index, let key, _): "checkSharedLimit \(index) \(key)"
        case .sendRequest(let head, let body, let end):
            "sendRequest \(head.uri) body \(body.map { String(buffer: $0) }) \(end == nil ? "open" : "ended")"
        case .releaseConnection: "releaseConnection"
        case .forwardBody(let body): "forwardBody \(String(buffer: body))"
        case .forwardEnd: "forwardEnd"
        case .forwardInterim(let head): "forwardInterim \(head.status.code)"
        case .forwardResponseHead(let head, _, let keepAlive, let upgrade):
            "forwardResponseHead \(head.status.code)\(keepAlive ? "" : " close")\(upgrade ? " upgrade" : "")"
        case .forwardResponseBody(let body): "forwardResponseBody \(String(buffer: body))"
        case .finishResponse(_, let reuse, let close, _):
            "finishResponse\(reuse ? "" : " dropConnection")\(close ? " closeClient" : "")"
        case .startTunnel: "startTunnel"
        case .closeServerConnection: "closeServerConnection"
        case .respond(let response, _, let close, _): "respond \(response.status.code)\(close ? " closeClient" : "")"
        case .closeClient: "closeClient"
        }
    }

    /// The detail of a `respond` action's error page.
    var detail: String? {
        if case .respond(let response, _, _, _) = self, case .errorPage(let detail) = response.body { return detail }
        return nil
    }
}

extension ExchangeStateMachine {
    /// The state's name, for expectations about where the exchange is.
    var stateName: String {
        switch state {
        case .idle: "idle"
        case .admitting: "admitting"
        case .holding(.tarpit): "holding tarpit"
        case .holding(.crawlerCheck): "holding crawlerCheck"
        case .holding(.sharedLimit): "holding sharedLimit"
        case .connecting: "connecting"
        case .forwarding: "forwarding"
        case .upgrading: "upgrading"
        case .closed: "closed"
        }
    }
}

enum ExchangeFixtures {
    static func get(_ uri: String = "/", version: HTTPVersion = .http1_1, headers: [(String, String)] = []) -> HTTPRequestHead {
        HTTPRequestHead(version: version, method: .GET, uri: uri, headers: HTTPHeaders(headers))
    }

    static func post(_ uri: String = "/upload", length: Int) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: .POST, uri: uri, headers: ["content-length": "\(length)"])
    }

    static func response(_ status: HTTPResponseStatus, headers: [(String, String)] = [("content-length", "2")]) -> HTTPResponseHead {
        HTTPResponseHead(version: .http1_1, status: status, headers: HTTPHeaders(headers))
    }

    static func bytes(_ text: String) -> ByteBuffer {
        ByteBuffer(string: text)
    }

    static let forward = RequestDecision.forward(retries: 2, serverCount: 3)
}
