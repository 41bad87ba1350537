import NIOCore
import NIOHTTP1
import Testing

@testable import FulcrumProxy

/// Retries, holds (tarpit, crawler checks) and upgrades, with no channel.
@Suite("Exchange state machine: retries, holds and tunnels")
struct ExchangeStateMachineUpstreamTests {
    typealias Machine = ExchangeStateMachine
    typealias F = ExchangeFixtures

    static let refused = Machine.ConnectFailure(isTLS: false, serverName: "web-2", reason: "connection refused")

    @Test("a failed connect tries another server while retries last, then answers 503 naming the last one")
    func connectRetries() {
        var machine = Machine(channel: .connection)
        _ = machine.channelRead(.head(F.get()))
        _ = machine.admitted(.forward(retries: 1, serverCount: 3), framing: .init(), maxBodyBytes: nil)
        let first = machine.connecting(to: 0)
        #expect(machine.connectFailed(attempt: first, Self.refused).summary == "pickServer excluding 1")
        let second = machine.connecting(to: 2)
        #expect(!machine.isConnecting(attempt: first))
        let last = machine.connectFailed(attempt: second, Self.refused)
        #expect(last.summary == "respond 503")
        #expect(last.detail == "No server could be reached (last tried web-2: connection refused).")
    }

    @Test("a failed TLS handshake is a bad gateway; so is every server tried")
    func connectFailures() {
        var tls = Machine(channel: .connection)
        _ = tls.channelRead(.head(F.get()))
        _ = tls.admitted(.forward(retries: 0, serverCount: 3), framing: .init(), maxBodyBytes: nil)
        let attempt = tls.connecting(to: 0)
        let failure = Machine.ConnectFailure(isTLS: true, serverName: "secure", reason: "untrusted")
        #expect(tls.connectFailed(attempt: attempt, failure).summary == "respond 502")

        var exhausted = Machine(channel: .connection)
        _ = exhausted.channelRead(.head(F.get()))
        _ = exhausted.admitted(.forward(retries: 5, serverCount: 1), framing: .init(), maxBodyBytes: nil)
        let only = exhausted.connecting(to: 0)
        #expect(exhausted.connectFailed(attempt: only, Self.refused).summary == "respond 503")

        var none = Machine(channel: .connection)
        _ = none.channelRead(.head(F.get()))
        _ = none.admitted(F.forward, framing: .init(), maxBodyBytes: nil)
        let unavailable = none.noServerAvailable()
        #expect(unavailable.summary == "respond 503")
        #expect(unavailable.detail == "No server is available to handle this request.")
    }

    @Test("a pooled connection the server had closed: the same server once more, then a budgeted retry")
    func staleConnections() {
        var (machine, _) = ExchangeStateMachineTests.connected()
        var stale = machine.serverFailed(.connectionClosed, requestsSent: 4) {
            Issue.record("not budgeted")
            return true
        }
        #expect(stale.outcome == nil)  // says nothing about the server
        #expect(stale.action.summary == "reconnect 0")
        #expect(machine.stateName == "connecting")
        let attempt = machine.connecting(to: 0)
        #expect(machine.connected(attempt: attempt).summary == "sendRequest / body [] open")
        var withdrawn = 0
        stale = machine.serverFailed(.connectionClosed, requestsSent: 2) {
            withdrawn += 1
            return true
        }
        #expect(stale.action.summary == "pickServer excluding 1")
        #expect(withdrawn == 1)
    }

    @Test("a connection lost before a response: budgeted retries of replayable requests only")
    func lostConnections() {
        var (fresh, _) = ExchangeStateMachineTests.connected()
        let retried = fresh.serverFailed(.connectionClosed, requestsSent: 1) { true }
        #expect(retried.outcome == .noResponse)
        #expect(retried.action.summary == "pickServer excluding 1")

        var (spent, _) = ExchangeStateMachineTests.connected()
        let refused = spent.serverFailed(.connectionClosed, requestsSent: 1) { false }
        #expect(refused.action.summary == "respond 502")
        #expect(refused.action.detail?.contains("retry budget is spent") == true)

        var (post, _) = ExchangeStateMachineTests.connected(F.post(length: 2), framing: .init(contentLength: 2))
        #expect(post.serverFailed(.connectionClosed, requestsSent: 1) { true }.action.summary == "respond 502 closeClient")

        // A body past the retained limit cannot be replayed.
        var (large, _) = ExchangeStateMachineTests.connected(
            HTTPRequestHead(version: .http1_1, method: .PUT, uri: "/big", headers: ["transfer-encoding": "chunked"]),
            framing: .init(isChunked: true)
        )
        let part = ByteBuffer(repeating: 0x61, count: Machine.retainedBodyLimit / 2 + 1)
        _ = large.channelRead(.body(part))
        _ = large.channelRead(.body(part))
        _ = large.channelRead(.end(nil))
        #expect(large.serverFailed(.connectionClosed, requestsSent: 1) { true }.action.summary == "respond 502")

        // A replayable body is sent again on the retry.
        var (put, _) = ExchangeStateMachineTests.connected(
            HTTPRequestHead(version: .http1_1, method: .PUT, uri: "/small", headers: ["content-length": "4"]),
            framing: .init(contentLength: 4)
        )
        _ = put.channelRead(.body(F.bytes("data")))
        _ = put.channelRead(.end(nil))
        #expect(put.serverFailed(.connectionClosed, requestsSent: 1) { true }.action.summary == "pickServer excluding 1")
        let attempt = put.connecting(to: 1)
        #expect(put.connected(attempt: attempt).summary == #"sendRequest /small body ["data"] ended"#)

        // A response already started forgets the body.
        var (answered, _) = ExchangeStateMachineTests.connected()
        _ = answered.responseHead(F.response(.ok))
        #expect(answered.serverFailed(.connectionClosed, requestsSent: 1) { true }.action.summary == "closeClient")
    }

    @Test("a gRPC call (a POST) goes again while nothing of its response arrived, within the budget")
    func grpcRetries() {
        let call = HTTPRequestHead(
            version: .http1_1,
            method: .POST,
            uri: "/echo.Echo/Get",
            headers: ["content-type": "application/grpc+proto", "te": "trailers"]
        )
        var (machine, _) = ExchangeStateMachineTests.connected(call, framing: .init(isChunked: true))
        _ = machine.channelRead(.body(F.bytes("message")))
        var withdrawn = 0
        let retried = machine.serverFailed(.connectionClosed, requestsSent: 1) {
            withdrawn += 1
            return true
        }
        #expect(retried.action.summary == "pickServer excluding 1")
        #expect(withdrawn == 1)
        // The message sent so far goes again, and the call's stream stays open for the rest.
        let attempt = machine.connecting(to: 1)
        #expect(machine.connected(attempt: attempt).summary == #"sendRequest /echo.Echo/Get body ["message"] open"#)

        // Once response headers arrived, the call is the client's to retry, not Fulcrum's.
        var (answered, _) = ExchangeStateMachineTests.connected(call, framing: .init(isChunked: true))
        _ = answered.responseHead(F.response(.ok))
        #expect(answered.serverFailed(.connectionClosed, requestsSent: 1) { true }.action.summary == "closeClient")

        // gRPC-Web is not gRPC: its POSTs are not repeated.
        var web = call
        web.headers.replaceOrAdd(name: "content-type", value: "application/grpc-web+proto")
        var (webCall, _) = ExchangeStateMachineTests.connected(web, framing: .init(isChunked: true))
        #expect(webCall.serverFailed(.connectionClosed, requestsSent: 1) { true }.action.summary.hasPrefix("respond 502"))
    }

    @Test("a stream the server refused goes to another server whatever its method, unbudgeted")
    func refusedStreams() {
        var (post, _) = ExchangeStateMachineTests.connected(
            F.post(length: 2),
            framing: .init(contentLength: 2),
            decision: .forward(retries: 1, serverCount: 3)
        )
        _ = post.channelRead(.body(F.bytes("hi")))
        _ = post.channelRead(.end(nil))
        let refused = post.serverFailed(.streamRefused, requestsSent: 1) {
            Issue.record("not budgeted: the server did no work")
            return true
        }
        #expect(refused.outcome == nil)
        #expect(refused.action.summary == "pickServer excluding 1")
        let attempt = post.connecting(to: 2)
        #expect(post.connected(attempt: attempt).summary.hasSuffix(#"body ["hi"] ended"#))
        // With no retry left: 502, naming the refusal.
        let last = post.serverFailed(.streamRefused, requestsSent: 1) { true }
        #expect(last.action.summary.hasPrefix("respond 502"))
        #expect(last.action.detail == "The server refused the request's stream.")
    }

    @Test("a response timeout: 504, and the server is charged with it")
    func responseTimeout() {
        var (machine, _) = ExchangeStateMachineTests.connected()
        let timedOut = machine.serverFailed(.responseTimeout, requestsSent: 3) { true }
        #expect(timedOut.outcome == .timeout)
        #expect(timedOut.action.summary == "respond 504")
    }

    @Test("a client that stopped reading its response: closed, and the server is not charged")
    func clientNotReading() {
        var (streaming, _) = ExchangeStateMachineTests.connected()
        _ = streaming.responseHead(F.response(.ok))
        let stalled = streaming.serverFailed(.clientNotReading, requestsSent: 1) {
            Issue.record("nothing to retry")
            return true
        }
        #expect(stalled.outcome == nil)
        #expect(stalled.action.summary == "closeClient")

        // Even before a response head (a pipelined client whose earlier response filled its
        // socket), nothing is answered and nothing is retried.
        var (waiting, _) = ExchangeStateMachineTests.connected()
        let early = waiting.serverFailed(.clientNotReading, requestsSent: 1) { true }
        #expect(early.outcome == nil)
        #expect(early.action.summary == "closeClient")
    }

    @Test("a tarpit holds the request, reads nothing, then answers and closes")
    func tarpit() {
        var machine = Machine(channel: .connection)
        _ = machine.channelRead(.head(F.get()))
        let hold = machine.admitted(.tarpit(.milliseconds(300), status: .tooManyRequests), framing: .init(), maxBodyBytes: nil)
        #expect(hold.summary == "scheduleTarpit 300ms")
        #expect(machine.stateName == "holding tarpit")
        #expect(machine.readPolicy == .wait)
        #expect(machine.channelRead(.end(nil)).summary == "wait")
        guard case .scheduleTarpit(_, let attempt) = hold else { return }
        #expect(machine.tarpitElapsed(attempt: attempt + 1).summary == "wait")
        #expect(machine.crawlerChecked(attempt: attempt).summary == "wait")
        #expect(machine.tarpitElapsed(attempt: attempt).summary == "respond 429 closeClient")
        #expect(machine.tarpitElapsed(attempt: attempt).summary == "wait")
    }

    @Test("a crawler check holds the request, keeps its body, then screens it again")
    func crawlerCheck() {
        var machine = Machine(channel: .connection)
        _ = machine.channelRead(.head(F.post(length: 4)))
        let lookUp = machine.admitted(.verifyCrawler(address: [127, 0, 0, 1]), framing: .init(contentLength: 4), maxBodyBytes: nil)
        #expect(lookUp.summary == "lookUpCrawler [127, 0, 0, 1]")
        #expect(machine.stateName == "holding crawlerCheck")
        #expect(machine.channelRead(.body(F.bytes("data"))).summary == "wait")
        #expect(machine.channelRead(.end(nil)).summary == "wait")
        #expect(machine.channelRead(.head(F.get("/next"))).summary == "wait")  // pipelined
        guard case .lookUpCrawler(_, let attempt) = lookUp else { return }
        #expect(machine.tarpitElapsed(attempt: attempt).summary == "wait")
        #expect(machine.crawlerChecked(attempt: attempt).summary == "rescreen /upload")
        #expect(machine.crawlerChecked(attempt: attempt).summary == "wait")  // the timeout, after the answer
        #expect(machine.rescreened(F.forward).summary == "pickServer excluding 0")
        let connection = machine.connecting(to: 0)
        #expect(machine.connected(attempt: connection).summary == #"sendRequest /upload body ["data"] ended"#)

        var blocked = Machine(channel: .connection)
        _ = blocked.channelRead(.head(F.get()))
        guard case .lookUpCrawler(_, let check) = blocked.admitted(.verifyCrawler(address: [10, 0, 0, 1]), framing: .init(), maxBodyBytes: nil)
        else {
            Issue.record("no lookup")
            return
        }
        _ = blocked.crawlerChecked(attempt: check)
        #expect(blocked.rescreened(.respond(LocalResponse(.forbidden, "bot"))).summary == "respond 403")
        #expect(blocked.rescreened(F.forward).summary == "wait")  // only once
    }

    @Test("a shared limit holds the request for the store, keeps its body, then screens it again")
    func sharedLimit() {
        var machine = Machine(channel: .connection)
        _ = machine.channelRead(.head(F.post(length: 4)))
        let hold = machine.admitted(.checkSharedLimit(limitIndex: 1, key: "10.0.0.1"), framing: .init(contentLength: 4), maxBodyBytes: nil)
        #expect(hold.summary == "checkSharedLimit 1 10.0.0.1")
        #expect(machine.stateName == "holding sharedLimit")
        #expect(machine.channelRead(.body(F.bytes("data"))).summary == "wait")
        #expect(machine.channelRead(.end(nil)).summary == "wait")
        guard case .checkSharedLimit(_, _, let attempt) = hold else { return }
        // Another hold's completion, or a stale one, changes nothing.
        #expect(machine.crawlerChecked(attempt: attempt).summary == "wait")
        #expect(machine.sharedLimitChecked(attempt: attempt + 1).summary == "wait")
        #expect(machine.sharedLimitChecked(attempt: attempt).summary == "rescreen /upload")
        #expect(machine.sharedLimitChecked(attempt: attempt).summary == "wait")
        // Over the limit: answered, and the body read meanwhile is not sent anywhere.
        #expect(machine.rescreened(.respond(LocalResponse(.tooManyRequests, "slow down"))).summary == "respond 429")

        var passing = Machine(channel: .connection)
        _ = passing.channelRead(.head(F.post(length: 4)))
        let check = passing.admitted(.checkSharedLimit(limitIndex: 0, key: "k"), framing: .init(contentLength: 4), maxBodyBytes: nil)
        guard case .checkSharedLimit(_, _, let next) = check else {
            Issue.record("no check")
            return
        }
        #expect(passing.channelRead(.body(F.bytes("data"))).summary == "wait")
        _ = passing.sharedLimitChecked(attempt: next)
        #expect(passing.rescreened(F.forward).summary == "pickServer excluding 0")
        let connection = passing.connecting(to: 0)
        #expect(passing.connected(attempt: connection).summary == #"sendRequest /upload body ["data"] open"#)
    }

    @Test("a WebSocket upgrade: the 101 is relayed, then the tunnel starts; the client may leave first")
    func upgrade() {
        let websocket = Machine.RequestFraming(isUpgrade: true, isWebSocket: true)
        var (machine, _) = ExchangeStateMachineTests.connected(framing: websocket)
        #expect(machine.isWebSocketUpgrade)
        _ = machine.channelRead(.end(nil))
        let head = F.response(.switchingProtocols, headers: [("upgrade", "websocket")])
        #expect(machine.responseHead(head).summary == "forwardResponseHead 101 close upgrade")
        #expect(machine.responseEnd(nil).summary == "startTunnel")
        #expect(machine.stateName == "upgrading")
        #expect(machine.readPolicy == .wait)
        let ready = machine.tunnelReady()
        #expect(ready)
        #expect(machine.stateName == "closed")
        let again = machine.tunnelReady()
        #expect(!again)

        var (left, _) = ExchangeStateMachineTests.connected(framing: websocket)
        _ = left.responseHead(head)
        _ = left.responseEnd(nil)
        left.channelInactive()
        let stillReady = left.tunnelReady()
        #expect(!stillReady)
    }

    @Test("a 101 nobody asked for is a protocol error: the server connection closes")
    func unexpectedSwitch() {
        let head = F.response(.switchingProtocols)
        var (plain, _) = ExchangeStateMachineTests.connected()
        #expect(plain.responseHead(head).summary == "closeServerConnection")
        // Only a GET over HTTP/1.1 opens a WebSocket.
        var (post, _) = ExchangeStateMachineTests.connected(
            HTTPRequestHead(version: .http1_1, method: .POST, uri: "/ws"),
            framing: .init(isUpgrade: true, isWebSocket: true)
        )
        #expect(post.responseHead(head).summary == "closeServerConnection")
        var (http10, _) = ExchangeStateMachineTests.connected(F.get(version: .http1_0), framing: .init(isUpgrade: true, isWebSocket: true))
        #expect(http10.responseHead(head).summary == "closeServerConnection")
        // A second 101 after the first.
        var (twice, _) = ExchangeStateMachineTests.connected(framing: .init(isUpgrade: true, isWebSocket: true))
        _ = twice.responseHead(F.response(.continue))
        #expect(twice.responseHead(head).summary == "closeServerConnection")
    }
}
