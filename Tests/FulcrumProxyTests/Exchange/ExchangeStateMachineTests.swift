import NIOCore
import NIOHTTP1
import Testing

@testable import FulcrumProxy

/// The exchange's state machine with no channel at all: each test feeds it events and checks
/// the actions it returns, the way async-http-client tests `HTTP1ConnectionStateMachine`.
@Suite("Exchange state machine")
struct ExchangeStateMachineTests {
    typealias Machine = ExchangeStateMachine
    typealias F = ExchangeFixtures

    /// Drives a machine through a request head, a forward decision and a connection.
    static func connected(
        _ head: HTTPRequestHead = F.get(),
        channel: Machine.ClientChannel = .connection,
        framing: Machine.RequestFraming = .init(),
        decision: RequestDecision = F.forward,
        maxBodyBytes: Int? = nil,
        server: Int = 0
    ) -> (Machine, attempt: Int) {
        var machine = Machine(channel: channel)
        #expect(machine.channelRead(.head(head)).summary == "admit \(head.method.rawValue) \(head.uri)")
        #expect(machine.stateName == "admitting")
        #expect(machine.admitted(decision, framing: framing, maxBodyBytes: maxBodyBytes).summary == "pickServer excluding 0")
        #expect(machine.stateName == "connecting")
        let attempt = machine.connecting(to: server)
        #expect(machine.isConnecting(attempt: attempt))
        #expect(machine.connected(attempt: attempt).summary.hasPrefix("sendRequest \(head.uri)"))
        #expect(machine.stateName == "forwarding")
        return (machine, attempt)
    }

    @Test("a GET: admit, pick, connect, send, relay the response, back to idle")
    func simpleExchange() {
        var machine = Machine(channel: .connection)
        #expect(machine.stateName == "idle")
        #expect(machine.readPolicy == .read)
        #expect(machine.channelRead(.head(F.get("/a"))).summary == "admit GET /a")
        #expect(machine.readPolicy == .wait)
        #expect(machine.admitted(F.forward, framing: .init(), maxBodyBytes: nil).summary == "pickServer excluding 0")
        #expect(machine.channelRead(.end(nil)).summary == "wait")  // arrives while connecting: kept
        let attempt = machine.connecting(to: 1)
        #expect(machine.readPolicy == .wait)
        #expect(machine.connected(attempt: attempt).summary == "sendRequest /a body [] ended")
        #expect(machine.readPolicy == .readWhileServerWritable)
        #expect(machine.responseHead(F.response(.ok)).summary == "forwardResponseHead 200")
        #expect(machine.responseBody(F.bytes("ok")).summary == "forwardResponseBody ok")
        #expect(machine.responseEnd(nil).summary == "finishResponse")
        #expect(machine.stateName == "idle")
        #expect(machine.keepAlive)
        // Nothing is relayed outside an exchange.
        #expect(machine.responseBody(F.bytes("late")).summary == "wait")
        #expect(machine.responseEnd(nil).summary == "wait")
        #expect(machine.responseHead(F.response(.ok)).summary == "wait")
    }

    @Test("a body: buffered while connecting, then streamed part by part")
    func requestBody() {
        var machine = Machine(channel: .connection)
        _ = machine.channelRead(.head(F.post(length: 6)))
        _ = machine.admitted(F.forward, framing: .init(contentLength: 6), maxBodyBytes: nil)
        #expect(machine.channelRead(.body(F.bytes("abc"))).summary == "wait")
        let attempt = machine.connecting(to: 0)
        #expect(machine.connected(attempt: attempt).summary == #"sendRequest /upload body ["abc"] open"#)
        #expect(machine.channelRead(.body(F.bytes("def"))).summary == "forwardBody def")
        #expect(machine.channelRead(.end(nil)).summary == "forwardEnd")
        #expect(machine.responseHead(F.response(.created)).summary == "forwardResponseHead 201")
        #expect(machine.responseEnd(nil).summary == "finishResponse")
    }

    @Test("keep-alive: HTTP/1.0 without keep-alive, Connection: close, and an upgrade close after the exchange")
    func keepAlive() {
        for head in [
            F.get(version: .http1_0),
            F.get(headers: [("connection", "close")]),
        ] {
            var (machine, _) = Self.connected(head)
            _ = machine.channelRead(.end(nil))
            #expect(machine.responseHead(F.response(.ok)).summary == "forwardResponseHead 200 close")
            #expect(machine.responseEnd(nil).summary == "finishResponse closeClient")
            #expect(machine.stateName == "closed")
        }
        var (keptAlive, _) = Self.connected(F.get(version: .http1_0, headers: [("connection", "keep-alive")]))
        _ = keptAlive.channelRead(.end(nil))
        #expect(keptAlive.responseHead(F.response(.ok)).summary == "forwardResponseHead 200")
        // The client's framing can still require a close (an HTTP/1.0 client, a body of unknown length).
        keptAlive.closeAfterResponse()
        #expect(keptAlive.responseEnd(nil).summary == "finishResponse closeClient")

        var (upgrade, _) = Self.connected(F.get(), framing: .init(isUpgrade: true))
        #expect(upgrade.responseHead(F.response(.ok)).summary == "forwardResponseHead 200 close")
    }

    @Test("the server answers before the request ended: its connection is not reused, the client's closes")
    func earlyResponse() {
        var (machine, _) = Self.connected(F.post(length: 10), framing: .init(contentLength: 10))
        #expect(machine.responseHead(F.response(.payloadTooLarge)).summary == "forwardResponseHead 413")
        #expect(machine.responseEnd(nil).summary == "finishResponse dropConnection closeClient")
        #expect(machine.channelRead(.body(F.bytes("late"))).summary == "wait")
    }

    @Test("pipelining: requests and parse errors that arrive during an exchange wait their turn")
    func pipelining() {
        var (machine, _) = Self.connected(F.get("/first"))
        #expect(machine.channelRead(.end(nil)).summary == "forwardEnd")
        #expect(machine.channelRead(.head(F.get("/second"))).summary == "wait")
        #expect(machine.channelRead(.end(nil)).summary == "wait")
        #expect(machine.errorCaught(.unparsable(.invalidMethod)).summary == "wait")
        #expect(machine.readPolicy == .wait)
        #expect(machine.servePipelined() == nil)  // the first response is still under way
        _ = machine.responseHead(F.response(.ok))
        #expect(machine.responseEnd(nil).summary == "finishResponse")
        #expect(machine.servePipelined()?.summary == "admit GET /second")
        #expect(machine.admitted(F.forward, framing: .init(), maxBodyBytes: nil).summary == "pickServer excluding 0")
        #expect(machine.servePipelined()?.summary == "wait")  // its end, kept while connecting
        #expect(machine.servePipelined() == nil)  // the third request's parse error waits its turn
        let attempt = machine.connecting(to: 0)
        #expect(machine.connected(attempt: attempt).summary == "sendRequest /second body [] ended")
        _ = machine.responseHead(F.response(.ok))
        #expect(machine.responseEnd(nil).summary == "finishResponse")
        #expect(machine.servePipelined()?.summary == "respond 400 closeClient")
        #expect(machine.stateName == "closed")
        #expect(machine.servePipelined() == nil)
    }

    @Test("a parse error after a complete request waits for that request's response")
    func pipelinedParseError() {
        var (machine, _) = Self.connected()
        _ = machine.channelRead(.end(nil))
        #expect(machine.errorCaught(.unparsable(.headerOverflow)).summary == "wait")
        _ = machine.responseHead(F.response(.ok))
        _ = machine.responseEnd(nil)
        #expect(machine.servePipelined()?.summary == "respond 431 closeClient")
    }

    @Test("parse errors: 400 or 431 between requests and in the middle of one; a close once a response started")
    func parseErrors() {
        var idle = Machine(channel: .connection)
        let badRequest = idle.errorCaught(.unparsable(.invalidContentLength))
        #expect(badRequest.summary == "respond 400 closeClient")
        #expect(badRequest.detail?.contains("Content-Length") == true)
        var overflow = Machine(channel: .connection)
        #expect(overflow.errorCaught(.unparsable(.headerOverflow)).summary == "respond 431 closeClient")
        var spaced = Machine(channel: .connection)
        let spacing = spaced.errorCaught(.requestLineSpacing)
        #expect(spacing.summary == "respond 400 closeClient")
        #expect(spacing.detail?.contains("single spaces") == true)
        var (midBody, _) = Self.connected(F.post(length: 10), framing: .init(isChunked: true))
        let invalidChunk = midBody.errorCaught(.unparsable(.invalidChunkSize))
        #expect(invalidChunk.summary == "respond 400 closeClient")
        #expect(invalidChunk.detail?.contains("chunk size") == true)
        #expect(midBody.stateName == "closed")
        var (answered, _) = Self.connected(F.post(length: 10), framing: .init(isChunked: true))
        #expect(answered.responseHead(F.response(.ok)).summary == "forwardResponseHead 200")
        #expect(answered.errorCaught(.unparsable(.invalidChunkSize)).summary == "closeClient")
        #expect(answered.stateName == "closed")
        var failed = Machine(channel: .connection)
        #expect(failed.channelFailed().summary == "closeClient")
    }

    @Test("interim responses pass through (not to HTTP/1.0), and then nothing can be answered from here")
    func interimResponses() {
        var (machine, _) = Self.connected()
        #expect(machine.responseHead(F.response(.continue)).summary == "forwardInterim 100")
        #expect(machine.responseHead(F.response(.init(statusCode: 103))).summary == "forwardInterim 103")
        let (outcome, failure) = machine.serverFailed(.connectionClosed, requestsSent: 1) { true }
        #expect(outcome == nil)
        #expect(failure.summary == "closeClient")

        var (http10, _) = Self.connected(F.get(version: .http1_0))
        #expect(http10.responseHead(F.response(.continue)).summary == "wait")
        #expect(http10.responseHead(F.response(.ok)).summary == "forwardResponseHead 200 close")
    }

    @Test("a response body past the start: a failure can only close the client")
    func failureMidResponse() {
        var (machine, _) = Self.connected()
        _ = machine.responseHead(F.response(.ok))
        let (outcome, action) = machine.serverFailed(.responseTimeout, requestsSent: 1) { true }
        #expect(outcome == nil)
        #expect(action.summary == "closeClient")
        #expect(machine.stateName == "closed")
    }

    @Test("a body larger than max_body_size: 413 before a response, a close after one")
    func bodyLimit() {
        var connecting = Machine(channel: .connection)
        _ = connecting.channelRead(.head(F.post(length: 20)))
        _ = connecting.admitted(F.forward, framing: .init(isChunked: true), maxBodyBytes: 8)
        #expect(connecting.channelRead(.body(F.bytes("0123456789"))).summary == "respond 413 closeClient")

        var (forwarding, _) = Self.connected(F.post(length: 20), framing: .init(isChunked: true), maxBodyBytes: 8)
        #expect(forwarding.channelRead(.body(F.bytes("0123"))).summary == "forwardBody 0123")
        #expect(forwarding.channelRead(.body(F.bytes("45678"))).summary == "respond 413 closeClient")

        var (answered, _) = Self.connected(F.post(length: 20), framing: .init(isChunked: true), maxBodyBytes: 8)
        _ = answered.responseHead(F.response(.ok))
        #expect(answered.channelRead(.body(F.bytes("0123456789"))).summary == "closeClient")
    }

    @Test("local answers: kept alive, or closed when the body was not read or the answer says so")
    func localResponses() {
        var denied = Machine(channel: .connection)
        _ = denied.channelRead(.head(F.get()))
        let deny = denied.admitted(.respond(LocalResponse(.forbidden, "no")), framing: .init(), maxBodyBytes: nil)
        #expect(deny.summary == "respond 403")
        #expect(denied.stateName == "idle")

        var unread = Machine(channel: .connection)
        _ = unread.channelRead(.head(F.post(length: 5)))
        let refused = unread.admitted(.respond(LocalResponse(.forbidden, "no")), framing: .init(contentLength: 5), maxBodyBytes: nil)
        #expect(refused.summary == "respond 403 closeClient")

        var closing = Machine(channel: .connection)
        _ = closing.channelRead(.head(F.get()))
        let gone = LocalResponse(.serviceUnavailable, "removed", closesConnection: true)
        #expect(closing.admitted(.respond(gone), framing: .init(), maxBodyBytes: nil).summary == "respond 503 closeClient")
        #expect(closing.stateName == "closed")
        // Nothing more is answered on a closed channel.
        #expect(closing.respond(LocalResponse(.badGateway, "late")).summary == "wait")
    }

    @Test("a graceful shutdown or a half-close: closes when idle, after the exchange otherwise; not on a stream")
    func inputClosed() {
        var idle = Machine(channel: .connection)
        #expect(idle.inputClosed()?.summary == "closeClient")
        #expect(idle.stateName == "closed")

        var (busy, _) = Self.connected()
        #expect(busy.inputClosed()?.summary == "wait")
        _ = busy.channelRead(.end(nil))
        _ = busy.responseHead(F.response(.ok))
        #expect(busy.responseEnd(nil).summary == "finishResponse closeClient")

        var stream = Machine(channel: .stream)
        #expect(stream.inputClosed() == nil)
    }

    @Test("the client goes away: late connections go back to the pool, late server events are ignored")
    func clientGone() {
        var machine = Machine(channel: .connection)
        _ = machine.channelRead(.head(F.get()))
        _ = machine.admitted(F.forward, framing: .init(), maxBodyBytes: nil)
        let attempt = machine.connecting(to: 0)
        machine.channelInactive()
        #expect(machine.stateName == "closed")
        #expect(!machine.isConnecting(attempt: attempt))
        #expect(machine.connected(attempt: attempt).summary == "releaseConnection")
        let failure = Machine.ConnectFailure(isTLS: false, serverName: "a", reason: "refused")
        #expect(machine.connectFailed(attempt: attempt, failure).summary == "wait")
        #expect(machine.serverFailed(.connectionClosed, requestsSent: 1) { true }.action.summary == "wait")
        #expect(machine.channelRead(.head(F.get())).summary == "wait")
    }

    @Test("the header timeout: the guard answers 408 and the exchange sends nothing more")
    func headerTimeout() {
        var machine = Machine(channel: .connection)
        machine.headerTimedOut()
        #expect(machine.stateName == "closed")
        #expect(machine.channelRead(.head(F.get())).summary == "wait")
        #expect(machine.errorCaught(.unparsable(.invalidURL)).summary == "wait")
    }

    @Test("an HTTP/2 stream: one exchange, no upgrade, ended normally unless its body was not read")
    func stream() {
        let h2 = HTTPVersion(major: 2, minor: 0)
        var (machine, _) = Self.connected(F.get(version: h2, headers: [("connection", "close")]), channel: .stream)
        #expect(machine.keepAlive)
        _ = machine.channelRead(.end(nil))
        #expect(machine.responseHead(F.response(.ok)).summary == "forwardResponseHead 200")
        #expect(machine.responseEnd(nil).summary == "finishResponse")

        var websocket = Machine(channel: .stream)
        _ = websocket.channelRead(.head(F.get(version: h2)))
        _ = websocket.admitted(F.forward, framing: .init(isUpgrade: true, isWebSocket: true), maxBodyBytes: nil)
        #expect(!websocket.isWebSocketUpgrade)

        var unread = Machine(channel: .stream)
        _ = unread.channelRead(.head(HTTPRequestHead(version: h2, method: .POST, uri: "/", headers: ["content-length": "9"])))
        let answer = unread.admitted(.respond(LocalResponse(.forbidden, "no")), framing: .init(contentLength: 9), maxBodyBytes: nil)
        #expect(answer.summary == "respond 403 closeClient")
    }
}
