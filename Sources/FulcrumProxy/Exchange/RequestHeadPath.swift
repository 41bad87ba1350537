import FulcrumConfig
import NIOCore
import NIOHTTP1

/// A request head's way through one frontend, without sockets: the checks `ProxyHandler.admit`
/// makes (RFC 9112's rules, the preflight), the router's ACLs and rules, and then either the
/// head the server receives or the answer the client gets, as bytes.
///
/// It calls the functions the proxy calls, in the same order, and leaves out only what needs
/// an event loop or a clock: the shield, the exchange's state machine, the backend. The fuzz
/// target `FuzzRequestHead` runs decoded heads through it.
package struct RequestHeadPath {
    /// What became of a request head.
    package enum Outcome {
        /// Answered from here: the response head as written to the client (an error page, a
        /// redirect, a deny or a tarpit's status).
        case answered(status: Int, head: ByteBuffer)
        /// Forwarded: the head as written to the server, the `Host` it was routed by, and the
        /// framing its body was read with.
        case forwarded(head: ByteBuffer, host: String?, contentLength: Int?, isChunked: Bool)
    }

    private let frontend: RuntimeFrontend
    private let client: ClientInfo
    /// The limits of the frontend's request decoder (`max_header_size`).
    package let decoderLimits: NIOHTTPDecoderLimitConfiguration

    /// The path through the frontend `name` of `snapshot`, for a client at `peer`; nil when
    /// the snapshot has no such frontend.
    package init?(snapshot: RuntimeSnapshot, frontend name: String, peer: SocketAddress, isSecure: Bool) {
        guard let frontend = snapshot.frontends.first(where: { $0.name == name }),
            let config = snapshot.config.frontends.first(where: { $0.name == name })
        else { return nil }
        self.frontend = frontend
        self.client = ClientInfo(peer: peer, isSecure: isSecure)
        self.decoderLimits = NIOHTTPDecoderLimitConfiguration(frontend: config)
    }

    /// The decoder a client connection's pipeline reads HTTP/1.x requests with.
    package func makeRequestDecoder() -> HTTPRequestDecoder {
        ClientPipeline.requestDecoder(limits: decoderLimits)
    }

    /// Takes a decoded head the way the proxy does (`ProxyHandler.admit`, then
    /// `prepareForward`), with a state machine of its own, as a new connection's first request.
    package func process(_ head: HTTPRequestHead) -> Outcome {
        var machine = ExchangeStateMachine(channel: .connection)
        guard case .admit(var head) = machine.channelRead(.head(head)) else {
            preconditionFailure("a new exchange did not admit its first head")
        }
        var scan = ForwardingHeaders.scanRequest(head.headers)
        let check = RequestAdmission.checkHead(&head, scan: &scan, frontend: frontend)
        if check.rewritten { machine.targetRewritten(head) }
        let decision: RequestDecision
        var headerEdits: [HeaderEdit] = []
        if let refusal = check.refusal {
            decision = .respond(refusal)
        } else {
            switch RequestAdmission.route(head, frontend: frontend, client: client) {
            case .backend(_, let edits):
                headerEdits = edits
                decision = .forward(retries: 0, serverCount: 1)
            case .decided(let decided):
                decision = decided
            }
        }
        var action = machine.admitted(decision, framing: check.framing, maxBodyBytes: frontend.maxBodyBytes)
        if case .scheduleTarpit(_, let attempt) = action {
            // The hold's time passes at once here.
            action = machine.tarpitElapsed(attempt: attempt)
        }
        switch action {
        case .pickServer:
            scan.framing.isWebSocket = machine.isWebSocketUpgrade
            var buffer = ByteBuffer()
            ForwardingHeaders.writeRequestHead(head, headerEdits: headerEdits, scan: scan, client: client, into: &buffer)
            return .forwarded(head: buffer, host: scan.host, contentLength: check.framing.contentLength, isChunked: check.framing.isChunked)
        case .respond(let response, let request, _, _):
            return answer(response, request: request)
        default:
            preconditionFailure("admitting \(head.method) \(head.uri) led to \(action)")
        }
    }

    /// The answer's head as `ProxyHandler.respond` renders it (without the `connection: close`
    /// the HTTP/1 writer may add).
    private func answer(_ response: LocalResponse, request: HTTPRequestHead?) -> Outcome {
        let (head, _) = response.rendered(pages: frontend.errorPages, request: request, allocator: ByteBufferAllocator())
        var buffer = ByteBuffer()
        ForwardingHeaders.writeLocalResponseHead(head, into: &buffer)
        return .answered(status: Int(response.status.code), head: buffer)
    }
}
