import FulcrumWorker
import NIOCore
import Testing

/// The request rules of RFC 9112 end to end, with raw bytes from a client socket: what breaks
/// one gets its status line and a close, and never reaches a server.
@Suite("Request rules (RFC 9112), end to end", .serialized)
struct RequestRulesEndToEndTests {
    private static let fast = WorkerBehaviour(delayMilliseconds: 0)

    /// Two backends, routed by Host: `routed.example` to w2, anything else to w1.
    private static func hostRouting(_ ports: [Int]) -> String {
        """
        global:
          workers: 1
          log: { level: warning, access: off }
        frontends:
          - name: test
            listen: ["127.0.0.1:8080"]
            acls:
              routed: { host: routed.example }
            rules:
              - { use_backend: routed, if: [routed] }
            default_backend: other
        backends:
          - name: other
            servers: [{ name: other1, address: "127.0.0.1:\(ports[0])" }]
          - name: routed
            servers: [{ name: routed1, address: "127.0.0.1:\(ports[1])" }]
        """
    }

    /// Sends `request` on a new connection; returns the raw answer and whether Fulcrum closed.
    private static func send(_ request: String, to harness: ProxyHarness) async throws -> (String, Bool) {
        try await RawClient.exchange(port: harness.port, chunks: [request], timeout: .seconds(3))
    }

    @Test(
        "Host: missing in HTTP/1.1, repeated, or invalid gets 400 and a close; nothing is forwarded",
        arguments: [
            "GET /echo HTTP/1.1\r\n\r\n",
            "GET /echo HTTP/1.1\r\nHost: a.example\r\nHost: routed.example\r\n\r\n",
            "GET /echo HTTP/1.1\r\nHost: routed.example/x\r\n\r\n",
            "GET /echo HTTP/1.1\r\nHost: user@routed.example\r\n\r\n",
            "GET /echo HTTP/1.1\r\nHost: a.example:http\r\n\r\n",
            "GET http://user@routed.example/echo HTTP/1.1\r\nHost: a.example\r\n\r\n",
            "GET ftp://routed.example/echo HTTP/1.1\r\nHost: a.example\r\n\r\n",
            "GET * HTTP/1.1\r\nHost: a.example\r\n\r\n",
        ]
    )
    func badHosts(request: String) async throws {
        try await withProxy(workers: [Self.fast, Self.fast], yaml: Self.hostRouting) { harness in
            let (raw, closed) = try await Self.send(request, to: harness)
            #expect(raw.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(raw)")
            #expect(raw.lowercased().contains("connection: close"))
            #expect(closed)
            #expect(harness.workers.map(\.requestsServed) == [0, 0])
        }
    }

    @Test("an HTTP/1.0 request without Host is served")
    func http10WithoutHost() async throws {
        try await withProxy(workers: [Self.fast, Self.fast], yaml: Self.hostRouting) { harness in
            let (raw, _) = try await Self.send("GET /echo HTTP/1.0\r\n\r\n", to: harness)
            #expect(raw.hasPrefix("HTTP/1.1 200") || raw.hasPrefix("HTTP/1.0 200"), "\(raw)")
            #expect(raw.contains(#""worker":"w1""#))
        }
    }

    @Test("an absolute-form target is routed by its authority, which the server receives as Host")
    func absoluteForm() async throws {
        try await withProxy(workers: [Self.fast, Self.fast], yaml: Self.hostRouting) { harness in
            let (raw, _) = try await Self.send(
                "GET http://routed.example/echo?x=1 HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
                to: harness
            )
            #expect(raw.hasPrefix("HTTP/1.1 200"), "\(raw)")
            #expect(raw.contains(#""worker":"w2""#), "routed by the target's authority, not by Host")
            #expect(raw.contains(#""path":"/echo?x=1""#), "forwarded in origin form")
            #expect(raw.contains(#"["host","routed.example"]"#) || raw.contains(#"["Host","routed.example"]"#), "\(raw)")
            #expect(raw.contains(#"["x-forwarded-host","routed.example"]"#), "\(raw)")
            #expect(!raw.contains("a.example"), "the received Host is dropped")
        }
    }

    @Test(
        "a run of spaces between the request line's parts gets 400 and a close; nothing is forwarded",
        arguments: [
            ["GET  /echo HTTP/1.1\r\nHost: a.example\r\n\r\n"],
            ["GET /echo  HTTP/1.1\r\nHost: a.example\r\n\r\n"],
            // Split between reads, at the run.
            ["GET ", " /echo HTTP/1.1\r\nHost: a.example\r\n\r\n"],
        ]
    )
    func requestLineSpacing(chunks: [String]) async throws {
        // With `h2c: true` the first bytes wait in the preface detector before HTTP/1.1 is set
        // up: the 400 must come all the same.
        for extra in ["", "    h2c: true"] {
            try await withProxy(workers: [Self.fast], yaml: { simpleConfig($0, frontendExtra: extra) }) { harness in
                let (raw, closed) = try await RawClient.exchange(port: harness.port, chunks: chunks, timeout: .seconds(3))
                #expect(raw.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(raw)")
                #expect(raw.contains("single spaces"), "\(raw)")
                #expect(closed)
                #expect(harness.workers[0].requestsServed == 0)
            }
        }
    }

    @Test("a spaced request line pipelined after requests with bodies: those are answered, then 400")
    func pipelinedRequestLineSpacing() async throws {
        try await withProxy(workers: [Self.fast], yaml: { simpleConfig($0) }) { harness in
            // The bodies hold what would be flagged if the scan lost the framing.
            let stream =
                "POST /echo HTTP/1.1\r\nHost: a.example\r\nContent-Length: 21\r\n\r\nGET  /x HTTP/1.1\r\n\r\n "
                + "POST /echo HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "9\r\nGET  /y H\r\n0\r\n\r\n"
                + "GET /echo  HTTP/1.1\r\nHost: a.example\r\n\r\n"
            let (raw, closed) = try await RawClient.exchange(port: harness.port, chunks: [stream], timeout: .seconds(3))
            // (An echoed JSON body ends without a line break, so a status line may follow it
            // on the same line; the echoed request lines are escaped, `HTTP/1.1\\r\\n`.)
            let statuses = raw.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(4) }
            #expect(statuses == ["200 ", "200 ", "400 "], "\(raw)")
            #expect(raw.contains("single spaces"), "\(raw)")
            #expect(closed)
            #expect(harness.workers[0].requestsServed == 2)
        }
    }

    @Test(
        "an invalid or overflowing chunk size gets 400 before the close",
        arguments: [
            "zz\r\nabc\r\n0\r\n\r\n",
            "ffffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
            "3\r\nabc\r\n-1\r\n\r\n",
        ]
    )
    func badChunkSizes(body: String) async throws {
        try await withProxy(workers: [Self.fast, Self.fast], yaml: Self.hostRouting) { harness in
            let (raw, closed) = try await Self.send(
                "POST /echo HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n" + body,
                to: harness
            )
            #expect(raw.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(raw)")
            #expect(raw.contains("chunk size"))
            #expect(closed)
        }
    }

    @Test(
        "framing the decoder lets through gets 400: an empty Transfer-Encoding, one in HTTP/1.0, a fragment",
        arguments: [
            // An empty Transfer-Encoding beside a Content-Length: re-chunked, the body's tail
            // would reach a server that frames by Content-Length as a second request.
            "POST /echo HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: \r\nContent-Length: 40\r\n\r\n"
                + "GET /smuggled HTTP/1.1\r\nHost: a.example\r\n\r\n",
            "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            "GET /echo#top HTTP/1.1\r\nHost: a.example\r\n\r\n",
        ]
    )
    func badFraming(request: String) async throws {
        try await withProxy(workers: [Self.fast, Self.fast], yaml: Self.hostRouting) { harness in
            let (raw, closed) = try await Self.send(request, to: harness)
            #expect(raw.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(raw)")
            #expect(!raw.contains("200 OK"), "nothing was forwarded: \(raw)")
            #expect(closed)
            #expect(harness.workers.map(\.requestsServed) == [0, 0])
        }
    }

    /// Found by the fuzz target FuzzRequestHead (Fuzz/Corpus/RequestHead/regression-te-not-chunked.http):
    /// the decoder refuses such a request only after handing its head on, by when the proxy had
    /// routed it and taken or opened a server connection for it.
    @Test(
        "a Transfer-Encoding that does not end in chunked gets 400 before any server connection",
        arguments: [
            "POST /echo HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: gzip\r\n\r\nabc",
            "POST /echo HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: gzip, identity\r\n\r\nabc",
        ]
    )
    func transferEncodingNotEndingInChunked(request: String) async throws {
        let server = try await ScriptedServer(response: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        try await withProxy(workers: [], yaml: { _ in simpleConfig([server.port]) }) { harness in
            let (raw, closed) = try await Self.send(request, to: harness)
            #expect(raw.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(raw)")
            #expect(raw.contains("does not end in chunked"), "\(raw)")
            #expect(closed)
            // A connection opened for the request would be accepted well within this.
            try await Task.sleep(for: .milliseconds(300))
            #expect(server.connectionsAccepted == 0)
        }
        try await server.close()
    }

    @Test("a Content-Length with trailing blanks still counts against max_body_size")
    func contentLengthWithTrailingBlanks() async throws {
        let yaml = { (ports: [Int]) in
            """
            global:
              workers: 1
              log: { level: warning, access: off }
            frontends:
              - { name: test, listen: ["127.0.0.1:8080"], limits: { max_body_size: 4 }, default_backend: app }
            backends:
              - name: app
                servers: [{ name: w1, address: "127.0.0.1:\(ports[0])" }]
            """
        }
        try await withProxy(workers: [Self.fast], yaml: yaml) { harness in
            let (raw, _) = try await Self.send(
                "POST /echo HTTP/1.1\r\nHost: a.example\r\nContent-Length: 10 \r\n\r\n0123456789",
                to: harness
            )
            #expect(raw.hasPrefix("HTTP/1.1 413"), "\(raw)")
            #expect(harness.workers[0].requestsServed == 0)
            let (fits, _) = try await Self.send(
                "POST /echo HTTP/1.1\r\nHost: a.example\r\nContent-Length: 3  \r\nConnection: close\r\n\r\nabc",
                to: harness
            )
            #expect(fits.hasPrefix("HTTP/1.1 200"), "\(fits)")
            #expect(fits.contains(#"["content-length","3"]"#) || fits.contains(#"["Content-Length","3"]"#), "\(fits)")
        }
    }
}
