import Foundation
import FulcrumTestSupport
import FulcrumWorker
import NIOCore
import NIOPosix
import Testing

/// Servers that speak HTTP/2 by prior knowledge (`protocol: h2c`): workers started with
/// `http2: true`, behind a proxy whose clients speak HTTP/1.1 or HTTP/2.
@Suite("HTTP/2 to servers (h2c)", .serialized)
struct HTTP2UpstreamTests {
    /// A proxy in front of h2c workers, one per name. `faulty` servers, if any, come first in
    /// the list, and the workers are then backups (weight 0): every request meets a fault
    /// first.
    static func withH2CWorkers(
        _ names: [String],
        faulty: [FaultyHTTP2Server] = [],
        behaviours: [String: WorkerBehaviour] = [:],
        frontendExtra: String = "",
        backendExtra: String = "",
        timeouts: String = "{ connect: 1s, response: 5s }",
        clientConnections: Int = 8,
        _ body: (ProxyHarness, [WorkerServer]) async throws -> Void
    ) async throws {
        var workers: [WorkerServer] = []
        for name in names {
            workers.append(
                try await WorkerServer.start(
                    name: name,
                    behaviour: behaviours[name] ?? WorkerBehaviour(),
                    http2: true,
                    group: MultiThreadedEventLoopGroup.singleton
                )
            )
        }
        let backup = faulty.isEmpty ? "" : ", weight: 0"
        let servers =
            faulty.enumerated().map { "      - { name: faulty\($0), address: \"127.0.0.1:\($1.port)\", protocol: h2c }" }
            + workers.map { "      - { name: \($0.name), address: \"127.0.0.1:\($0.port)\", protocol: h2c\(backup) }" }
        let yaml = """
            global:
              workers: 1
              log: { level: warning, access: off }
            frontends:
              - name: test
                listen: ["127.0.0.1:8080"]
            \(frontendExtra)
                default_backend: app
            backends:
              - name: app
                timeouts: \(timeouts)
            \(backendExtra)
                servers:
            \(servers.joined(separator: "\n"))
            """
        do {
            try await withProxy(workers: [], clientConnections: clientConnections, yaml: { _ in yaml }) { harness in
                try await body(harness, workers)
            }
        } catch {
            for worker in workers { try? await worker.shutdown() }
            throw error
        }
        for worker in workers { try await worker.shutdown() }
    }

    static func echo(_ response: CollectedResponse) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
    }

    @Test("an HTTP/1.1 client's request reaches the server as HTTP/2, with the forwarding headers; balancing works")
    func http1ClientToH2C() async throws {
        try await Self.withH2CWorkers(["w1", "w2"]) { harness, _ in
            var answered: [String] = []
            for _ in 0..<4 {
                let response = try await harness.send("/echo?x=1", headers: [("X-Custom", "kept"), ("Connection", "X-Hop"), ("X-Hop", "dropped")])
                #expect(response.status == .ok)
                let echo = try Self.echo(response)
                #expect(echo["version"] as? String == "HTTP/2.0")
                #expect(echo["path"] as? String == "/echo?x=1")
                let headers = (echo["headers"] as? [[String]] ?? []).map { ($0[0].lowercased(), $0[1]) }
                #expect(headers.contains { $0 == ("x-custom", "kept") })
                #expect(headers.contains { $0.0 == "x-forwarded-for" && $0.1 == "127.0.0.1" })
                #expect(headers.contains { $0.0 == "host" && $0.1.hasPrefix("127.0.0.1:") }, "\(headers)")
                #expect(!headers.contains { $0.0 == "x-hop" || $0.0 == "connection" })
                answered.append(echo["worker"] as? String ?? "")
            }
            #expect(answered == ["w1", "w2", "w1", "w2"])
        }
    }

    @Test("a request body and a streamed response body cross intact")
    func bodies() async throws {
        try await Self.withH2CWorkers(["w1"]) { harness, _ in
            let upload = String(repeating: "0123456789", count: 50_000)
            let posted = try await harness.send(.POST, "/echo", body: .bytes(ByteBuffer(string: upload)))
            #expect(posted.status == .ok)
            #expect(try Self.echo(posted)["body_bytes"] as? Int == upload.utf8.count)
            let download = try await harness.send("/bytes?n=1000000")
            #expect(download.status == .ok)
            #expect(download.body.readableBytes == 1_000_000)
            #expect(download.body.readableBytesView.enumerated().allSatisfy { $1 == WorkerServer.patternByte(index: $0, seed: 0) })
        }
    }

    @Test("concurrent requests share connections: at most max_connections, each carrying at most max_concurrent_streams")
    func multiplexing() async throws {
        let limits = "    http2: { max_concurrent_streams: 10, max_connections: 2 }"
        try await Self.withH2CWorkers(["w1"], backendExtra: limits, clientConnections: 60) { harness, workers in
            let clock = ContinuousClock()
            let start = clock.now
            let statuses = try await withThrowingTaskGroup(of: UInt.self) { group in
                for _ in 0..<60 {
                    group.addTask { try await harness.send("/work?delay_ms=100").status.code }
                }
                return try await group.reduce(into: [UInt]()) { $0.append($1) }
            }
            #expect(statuses.count == 60 && statuses.allSatisfy { $0 == 200 })
            #expect(workers[0].connectionsAccepted == 2, "\(workers[0].connectionsAccepted) connections")
            // 20 at a time: the other 40 waited for streams to end, in two more rounds.
            #expect(clock.now - start >= .milliseconds(290), "took \(clock.now - start)")
        }
    }

    @Test("an HTTP/2 client's streams go to an h2c server as streams; a slow stream holds up no other")
    func http2ClientToH2C() async throws {
        try await Self.withH2CWorkers(["w1"], frontendExtra: "    h2c: true") { harness, _ in
            let client = try await HTTP2FrameClient.connect(port: harness.port, initialWindow: 0)
            client.send(1, "/bytes?n=2000000")
            client.send(3, "/bytes?n=1000")
            try await waitUntil(timeout: .seconds(10)) { client.log(1).status == "200" && client.log(3).status == "200" }
            client.grant(3, 1000)
            try await waitUntil(timeout: .seconds(10)) { client.log(3).ended }
            #expect(client.log(3).body == 1000)
            #expect(client.log(1).body == 0 && !client.log(1).ended)
            client.grant(1, 2_000_000)
            try await waitUntil(timeout: .seconds(10)) { client.log(1).ended }
            #expect(client.log(1).body == 2_000_000)
            try await client.close()
        }
    }

    @Test("trailers cross both ways: an HTTP/1.1 client's chunked trailers reach the server; the server's reach the client")
    func trailersFromHTTP1Client() async throws {
        try await Self.withH2CWorkers(["w1"]) { harness, _ in
            let (raw, _) = try await RawClient.exchange(
                port: harness.port,
                chunks: [
                    "POST /echo?trailers=1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                    "3\r\nabc\r\n0\r\nX-Checksum: 9\r\n\r\n",
                ],
                pause: .milliseconds(20)
            )
            #expect(raw.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(raw)")
            #expect(raw.lowercased().contains("\r\ntransfer-encoding: chunked\r\n"), "\(raw)")
            #expect(raw.contains(#""trailers":[["x-checksum","9"]]"#), "\(raw)")
            #expect(raw.contains(#""body":"abc""#), "\(raw)")
            #expect(raw.lowercased().contains("\r\n0\r\nx-echo-trailer: done\r\n"), "\(raw)")
        }
    }

    @Test("an HTTP/2 client gets the server's trailers as a last HEADERS frame")
    func trailersToHTTP2Client() async throws {
        try await Self.withH2CWorkers(["w1"], frontendExtra: "    h2c: true") { harness, _ in
            let client = try await HTTP2FrameClient.connect(port: harness.port)
            client.send(1, "/echo?trailers=1")
            try await waitUntil(timeout: .seconds(10)) { client.log(1).ended }
            let frames = client.log(1).frames
            #expect(frames.first == "HEADERS" && frames.last == "HEADERS END", "\(frames)")
            #expect(frames.dropFirst().dropLast().allSatisfy { $0.hasPrefix("DATA") && !$0.hasSuffix("END") }, "\(frames)")
            try await client.close()
        }
    }

    @Test("health checks go over HTTP/2: a healthy server stays up, one answering 503 goes down")
    func healthChecks() async throws {
        let check = "    health_check: { path: /health, interval: 100ms, timeout: 2s, rise: 1, fall: 2 }"
        try await Self.withH2CWorkers(["w1", "w2"], behaviours: ["w2": WorkerBehaviour(healthy: false)], backendExtra: check) { harness, workers in
            try await waitUntil(timeout: .seconds(15)) { try await harness.proxy.stats().first?.servers.map(\.state) == [.up, .down] }
            // Several rounds of probes later, w1 is still up: its probes pass over HTTP/2.
            try await Task.sleep(for: .milliseconds(500))
            #expect(try await harness.proxy.stats().first?.servers.map(\.state) == [.up, .down])
            #expect(workers[0].requestsServed >= 3)
            for _ in 0..<3 {
                #expect(try Self.echo(try await harness.send("/echo"))["worker"] as? String == "w1")
            }
        }
    }

    @Test("a server that is not there is skipped for the next while retries last")
    func deadServerSkipped() async throws {
        let dead = try refusingPort()
        try await Self.withH2CWorkers(["w1"]) { harness, workers in
            var config = harness.proxy.config
            var down = config.backends[0].servers[0]
            down.name = "down"
            down.address.port = dead
            config.backends[0].servers.insert(down, at: 0)
            try await harness.proxy.reload(to: config)
            for _ in 0..<4 {
                let response = try await harness.send("/echo")
                #expect(response.status == .ok)
                #expect(try Self.echo(response)["worker"] as? String == "w1")
            }
            _ = workers
        }
    }

    /// A gRPC call's request block (no body: what matters here is what Fulcrum answers).
    static func grpcCall(_ path: String) -> [(String, String)] {
        [
            (":method", "POST"), (":scheme", "http"), (":authority", "localhost"), (":path", path),
            ("content-type", "application/grpc"), ("te", "trailers"),
        ]
    }

    @Test("Fulcrum's own answers to gRPC calls are gRPC statuses: 14 UNAVAILABLE with no server, 4 DEADLINE_EXCEEDED on a timeout")
    func grpcErrors() async throws {
        let timeouts = "{ connect: 1s, response: 300ms }"
        try await Self.withH2CWorkers(["w1"], frontendExtra: "    h2c: true", backendExtra: "    retries: 0", timeouts: timeouts) { harness, _ in
            let client = try await HTTP2FrameClient.connect(port: harness.port)
            client.send(1, "", block: Self.grpcCall("/work?delay_ms=2000"))
            try await waitUntil(timeout: .seconds(10)) { client.log(1).ended }
            // Trailers-Only: one HEADERS frame that ends the stream.
            #expect(client.log(1).frames == ["HEADERS END"])
            #expect(client.log(1).status == "200")
            #expect(client.log(1).field("content-type") == "application/grpc")
            #expect(client.log(1).field("grpc-status") == "4")
            #expect(client.log(1).field("grpc-message") == "The server did not answer in time.")

            var config = harness.proxy.config
            config.backends[0].servers[0].address.port = try refusingPort()
            try await harness.proxy.reload(to: config)
            client.send(3, "", block: Self.grpcCall("/pkg.Service/Method"))
            try await waitUntil(timeout: .seconds(10)) { client.log(3).ended }
            #expect(client.log(3).frames == ["HEADERS END"])
            #expect(client.log(3).field("grpc-status") == "14")
            // Not a gRPC call: the error page, as ever.
            client.send(5, "/plain")
            try await waitUntil(timeout: .seconds(10)) { client.log(5).ended }
            #expect(client.log(5).status == "503")
            #expect(client.log(5).field("grpc-status") == nil)
            try await client.close()
        }
    }

    @Test("a gRPC call's grpc-timeout caps the response timeout: DEADLINE_EXCEEDED after it; TE: trailers reaches the server")
    func grpcDeadline() async throws {
        try await Self.withH2CWorkers(["w1"], frontendExtra: "    h2c: true") { harness, _ in
            let client = try await HTTP2FrameClient.connect(port: harness.port)
            let clock = ContinuousClock()
            let start = clock.now
            client.send(1, "", block: Self.grpcCall("/work?delay_ms=5000") + [("grpc-timeout", "200m")])
            try await waitUntil(timeout: .seconds(10)) { client.log(1).ended }
            let elapsed = clock.now - start
            #expect(client.log(1).field("grpc-status") == "4")
            // The backend's response timeout is 5 s; the call's deadline ended it.
            // (Far short of the server's 5 s, with room for a busy machine.)
            #expect(elapsed >= .milliseconds(190) && elapsed < .seconds(4), "\(elapsed)")

            client.send(3, "", block: Self.grpcCall("/echo") + [("grpc-timeout", "5S")])
            try await waitUntil(timeout: .seconds(10)) { client.log(3).ended }
            #expect(client.log(3).status == "200")
            try await client.close()
        }
        try await Self.withH2CWorkers(["w1"]) { harness, _ in
            let response = try await harness.send("/echo", headers: [("TE", "trailers"), ("Connection", "TE")])
            let headers = (try Self.echo(response)["headers"] as? [[String]] ?? []).map { ($0[0].lowercased(), $0[1]) }
            #expect(headers.contains { $0 == ("te", "trailers") }, "\(headers)")
            let gzip = try await harness.send("/echo", headers: [("TE", "gzip"), ("Connection", "TE")])
            let without = (try Self.echo(gzip)["headers"] as? [[String]] ?? []).map { $0[0].lowercased() }
            #expect(!without.contains("te"), "\(without)")
        }
    }

    @Test("a client that cancels a call resets its stream to the server, which stops working on it")
    func cancellation() async throws {
        try await Self.withH2CWorkers(["w1"], frontendExtra: "    h2c: true") { harness, workers in
            let client = try await HTTP2FrameClient.connect(port: harness.port)
            client.send(1, "", block: Self.grpcCall("/work?delay_ms=5000"))
            try await waitUntil(timeout: .seconds(10)) { workers[0].workInProgress.working == 1 }
            client.reset(1)
            // Long before the server's 5 s: its stream was reset, and its handler stopped.
            try await waitUntil(timeout: .seconds(2)) { workers[0].workInProgress.working == 0 }
            // The connection to the server goes on: the next call is answered.
            client.send(3, "/health")
            try await waitUntil(timeout: .seconds(10)) { client.log(3).ended }
            #expect(client.log(3).status == "200")
            #expect(workers[0].connectionsAccepted == 1)
            try await client.close()
        }
    }

    @Test("a stream the server refused goes to another server, even a POST's; a POST whose connection dropped does not")
    func refusedStreams() async throws {
        let refusing = try await FaultyHTTP2Server.start(.refuseStream)
        let dropping = try await FaultyHTTP2Server.start(.dropConnection)
        defer {
            Task {
                try await refusing.shutdown()
                try await dropping.shutdown()
            }
        }
        try await Self.withH2CWorkers(["w1"], faulty: [refusing], backendExtra: "    retries: 1") { harness, workers in
            for round in 1...3 {
                let response = try await harness.send(.POST, "/echo", body: .bytes(ByteBuffer(string: "payload")))
                #expect(response.status == .ok)
                #expect(try Self.echo(response)["body_bytes"] as? Int == 7)
                #expect(refusing.requestsReceived == round)
            }
            #expect(workers[0].requestsServed == 3)
        }
        try await Self.withH2CWorkers(["w1"], faulty: [dropping], backendExtra: "    retries: 1") { harness, workers in
            let post = try await harness.send(.POST, "/echo", body: .bytes(ByteBuffer(string: "payload")))
            #expect(post.status == .badGateway)
            #expect(dropping.requestsReceived == 1)
            // An idempotent request may go again.
            let get = try await harness.send("/echo")
            #expect(get.status == .ok)
            #expect(dropping.requestsReceived == 2)
            #expect(workers[0].requestsServed == 1)
        }
    }

    @Test("health_check grpc: true calls grpc.health.v1.Health/Check: SERVING stays up, NOT_SERVING goes down")
    func grpcHealthChecks() async throws {
        let check = "    health_check: { grpc: true, interval: 100ms, timeout: 2s, rise: 1, fall: 2 }"
        try await Self.withH2CWorkers(["w1", "w2"], behaviours: ["w2": WorkerBehaviour(healthy: false)], backendExtra: check) { harness, workers in
            try await waitUntil(timeout: .seconds(15)) { try await harness.proxy.stats().first?.servers.map(\.state) == [.up, .down] }
            try await Task.sleep(for: .milliseconds(500))
            #expect(try await harness.proxy.stats().first?.servers.map(\.state) == [.up, .down])
            // Its probes were answered: several rounds of them.
            #expect(workers[0].requestsServed >= 3)
        }
    }
}
