internal import Foundation
import NIOCore
import NIOHTTP1

/// The frontend's checks on a request, as values: before the shield (`preflight`) and after
/// it (`route`, by the frontend's ACLs and rules).
enum RequestAdmission {
    /// Where routing sends a request.
    enum Route {
        /// To this loop's backend at `backendIndex`, with the rules' header edits.
        case backend(Int, headerEdits: [HeaderEdit])
        /// Not to a server: answered, or held, from here.
        case decided(RequestDecision)
    }

    /// What the checks on a head before the shield made of it.
    struct HeadCheck {
        var framing: ExchangeStateMachine.RequestFraming
        /// The target was in absolute form: the head now has it in origin form, and its
        /// authority as `Host`.
        var rewritten: Bool
        /// The answer, when the request goes no further.
        var refusal: LocalResponse?
    }

    /// RFC 9112's rules (`RequestRules`: they may rewrite the head and its scan), then the
    /// preflight.
    static func checkHead(
        _ head: inout HTTPRequestHead,
        scan: inout ForwardingHeaders.Scan,
        frontend: RuntimeFrontend?
    ) -> HeadCheck {
        let rules = RequestRules.check(&head, scan: &scan)
        let framing = ExchangeStateMachine.RequestFraming(scan.framing)
        switch rules {
        case .refused(let refusal):
            return HeadCheck(framing: framing, rewritten: false, refusal: refusal)
        case .unchanged, .rewritten:
            let rewritten = if case .rewritten = rules { true } else { false }
            return HeadCheck(framing: framing, rewritten: rewritten, refusal: preflight(head, framing: framing, frontend: frontend))
        }
    }

    /// The checks before the shield: the frontend still exists, the method is one Fulcrum
    /// serves, the site is served over HTTP at all, and the announced body fits. Nil: on to
    /// the shield.
    static func preflight(
        _ head: HTTPRequestHead,
        framing: ExchangeStateMachine.RequestFraming,
        frontend: RuntimeFrontend?
    ) -> LocalResponse? {
        guard let frontend else {
            return LocalResponse(.serviceUnavailable, "This listener's frontend was removed.", closesConnection: true)
        }
        if head.method == .CONNECT {
            return LocalResponse(.methodNotAllowed, "CONNECT is not supported.", closesConnection: true)
        }
        // Before the redirect to HTTPS, as Caddy does: the CA asks over plain HTTP.
        if let challenges = frontend.challenges, head.method == .GET, let answer = challenges.answer(forPath: head.uri) {
            return LocalResponse(.ok, text: answer)
        }
        if let port = frontend.redirectToHTTPSPort {
            return redirectToHTTPS(head, port: port)
        }
        if let limit = frontend.maxBodyBytes, let length = framing.contentLength, length > limit {
            return LocalResponse(.payloadTooLarge, "The request body is larger than this server accepts.")
        }
        return nil
    }

    /// Routes a request that passed the shield.
    static func route(_ head: HTTPRequestHead, frontend: RuntimeFrontend, client: ClientInfo) -> Route {
        let route = frontend.router.route(head, client: client)
        switch route.decision {
        case .backend(let index)?:
            return .backend(index, headerEdits: route.headerEdits)
        case .deny(let status)?:
            return .decided(.respond(LocalResponse(HTTPResponseStatus(statusCode: status), "This request is not allowed.")))
        case .redirect(let template, let status)?:
            let location = redirectLocation(template, head: head)
            return .decided(
                .respond(
                    LocalResponse(
                        HTTPResponseStatus(statusCode: status),
                        "Moved to \(location)",
                        headers: [("location", location)]
                    )
                )
            )
        case .tarpit(let delay)?:
            return .decided(.tarpit(delay, status: .forbidden))
        case nil:
            return .decided(.respond(LocalResponse(.serviceUnavailable, "No backend is configured for this request.")))
        }
    }

    /// `redirect_to_https`: a 308 to the same host and path on the HTTPS port (the method and
    /// body are kept by the client, unlike with 301).
    static func redirectToHTTPS(_ head: HTTPRequestHead, port: Int) -> LocalResponse {
        guard let host = redirectHost(head) else {
            return LocalResponse(
                .badRequest,
                "This site is served over HTTPS; the request has no usable Host header.",
                closesConnection: true
            )
        }
        let authority = port == 443 ? host : "\(host):\(port)"
        let path = head.uri.hasPrefix("/") ? head.uri : "/"
        let location = "https://\(authority)\(path)"
        return LocalResponse(.permanentRedirect, "This site is served over HTTPS: \(location)", headers: [("location", location)])
    }

    /// A redirect rule's target with `{host}`, `{path}`, `{query}` and `{uri}` filled in.
    static func redirectLocation(_ template: String, head: HTTPRequestHead) -> String {
        guard template.contains("{") else { return template }
        let uri = head.uri.hasPrefix("/") ? head.uri : "/"
        let queryStart = uri.firstIndex(of: "?")
        let path = queryStart.map { String(uri[..<$0]) } ?? uri
        let query = queryStart.map { String(uri[$0...]) } ?? ""
        let host = redirectHost(head) ?? ""
        return
            template
            .replacingOccurrences(of: "{uri}", with: uri)
            .replacingOccurrences(of: "{path}", with: path)
            .replacingOccurrences(of: "{query}", with: query)
            .replacingOccurrences(of: "{host}", with: host)
    }

    /// The Host header without its port (IPv6 literals kept: "[::1]:8080" → "[::1]"), or nil
    /// when it is missing or holds anything that could break out of a URL's authority.
    static func redirectHost(_ head: HTTPRequestHead) -> String? {
        var host = head.headers.first(name: "host") ?? ""
        if let colon = host.lastIndex(of: ":"), !host[colon...].contains("]") {
            host = String(host[..<colon])
        }
        guard !host.isEmpty, !host.contains(where: { "/@?#".contains($0) || $0.isWhitespace }) else { return nil }
        return host
    }
}
