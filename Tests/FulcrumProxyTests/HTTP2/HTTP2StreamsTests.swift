import FulcrumWorker
import NIOHTTP2
import Testing

/// An HTTP/2 connection's streams run on the connection (`HTTP2StreamsHandler`): flow control
/// both ways, resets, and malformed blocks, each one stream's business and not its
/// connection's. Over h2c, with a client that writes frames itself (`HTTP2FrameClient`).
@Suite("HTTP/2 streams on their connection", .serialized)
struct HTTP2StreamsTests {
    private static func yaml(_ ports: [Int]) -> String { simpleConfig(ports, frontendExtra: "    h2c: true") }
    private static let worker = WorkerBehaviour(delayMilliseconds: 0)

    @Test("a stream the client gives no window waits, and does not hold up the connection's other streams")
    func shutWindow() async throws {
        try await withProxy(workers: [Self.worker], yaml: { Self.yaml($0) }) { harness in
            let client = try await HTTP2FrameClient.connect(port: harness.port, initialWindow: 0)
            client.send(1, "/bytes?n=1000000")
            client.send(3, "/bytes?n=1000")
            // HEADERS are not flow-controlled: both responses start.
            try await waitUntil(timeout: .seconds(10)) { client.log(1).status == "200" && client.log(3).status == "200" }
            client.grant(3, 1000)
            try await waitUntil(timeout: .seconds(10)) { client.log(3).ended }
            #expect(client.log(3).body == 1000)
            // Stream 1 still has no window: nothing of its body was sent.
            #expect(client.log(1).body == 0 && !client.log(1).ended)
            client.grant(1, 1_000_000)
            try await waitUntil(timeout: .seconds(10)) { client.log(1).ended }
            #expect(client.log(1).body == 1_000_000)
            #expect(client.log(1).reset == nil && client.log(3).reset == nil)
            try await client.close()
        }
    }

    @Test("a stream the client resets mid-response gives its server's in-flight count back; the connection goes on")
    func resetMidResponse() async throws {
        try await withProxy(workers: [Self.worker], yaml: { Self.yaml($0) }) { harness in
            let client = try await HTTP2FrameClient.connect(port: harness.port)
            client.send(1, "/work?delay_ms=3000")
            try await waitUntil(timeout: .seconds(10)) { try await harness.proxy.requestsInFlight()["app"]?["w1"] == 1 }
            client.reset(1)
            // Long before the server's 3 s: the reset ended the exchange.
            try await waitUntil(timeout: .seconds(2)) { try await harness.proxy.requestsInFlight()["app"]?["w1"] == 0 }
            client.send(3, "/health")
            try await waitUntil(timeout: .seconds(10)) { client.log(3).ended }
            #expect(client.log(3).status == "200")
            #expect(client.log(1).status == nil)
            try await client.close()
        }
    }

    @Test("a malformed request block resets its own stream only; CONNECT gets 405")
    func malformedBlocks() async throws {
        try await withProxy(workers: [Self.worker], yaml: { Self.yaml($0) }) { harness in
            let client = try await HTTP2FrameClient.connect(port: harness.port)
            let base = [(":method", "GET"), (":scheme", "http"), (":authority", "localhost"), (":path", "/echo")]
            // No :method.
            client.send(1, "", block: Array(base.dropFirst()))
            // A CR LF in a value, which HTTP/1.1 would read as the end of the field.
            client.send(3, "", block: base + [("x-injected", "a\r\nx-evil: 1")])
            // An upper-case name.
            client.send(5, "", block: base + [("X-Upper", "1")])
            // A connection-specific field.
            client.send(7, "", block: base + [("transfer-encoding", "chunked")])
            client.send(9, "", block: [(":method", "CONNECT"), (":authority", "example.com:443")])
            client.send(11, "/health")
            try await waitUntil(timeout: .seconds(10)) {
                [1, 3, 5, 7].allSatisfy { client.log($0).reset != nil } && client.log(9).ended && client.log(11).ended
            }
            for id in [1, 3, 5, 7] {
                #expect(client.log(id).status == nil, "stream \(id) was answered")
            }
            #expect(client.log(9).status == "405")
            #expect(client.log(11).status == "200")
            try await client.close()
        }
    }

    @Test("a connection with no stream open closes after client_idle, with GOAWAY; a stream in flight keeps it open")
    func idleClose() async throws {
        // client_idle long enough that a busy machine still reads the stream's HEADERS within it.
        let yaml = { (ports: [Int]) in simpleConfig(ports, frontendExtra: "    h2c: true\n    timeouts: { client_idle: 1500ms }") }
        try await withProxy(workers: [Self.worker], yaml: yaml) { harness in
            let client = try await HTTP2FrameClient.connect(port: harness.port)
            let clock = ContinuousClock()
            let start = clock.now
            // Longer than client_idle: an open stream is not idleness.
            client.send(1, "/work?delay_ms=2000")
            try await waitUntil(timeout: .seconds(10)) { client.log(1).ended }
            #expect(client.log(1).status == "200")
            try await waitUntil(timeout: .seconds(10)) { !client.channel.isActive }
            let open = clock.now - start
            #expect(open >= .milliseconds(3400) && open < .seconds(8), "open for \(open)")
            #expect(client.goAways == 1)
        }
    }

    @Test("a response ends its stream on its own last frame: HEADERS without a body, the last DATA with one")
    func endStreamOnLastFrame() async throws {
        try await withProxy(workers: [Self.worker], yaml: { Self.yaml($0) }) { harness in
            let client = try await HTTP2FrameClient.connect(port: harness.port)
            client.send(1, "/health", method: "HEAD")
            client.send(3, "/echo?status=204")
            client.send(5, "/bytes?n=60000")
            client.send(7, "/nowhere")  // answered by the worker with a 404 and a short body
            try await waitUntil(timeout: .seconds(10)) { [1, 3, 5, 7].allSatisfy { client.log($0).ended } }
            #expect(client.log(1).frames == ["HEADERS END"])
            #expect(client.log(3).frames == ["HEADERS END"])
            for id in [5, 7] {
                let frames = client.log(id).frames
                #expect(frames.first == "HEADERS" && frames.last?.hasSuffix(" END") == true, "stream \(id): \(frames)")
                #expect(!frames.contains("DATA 0 END"), "stream \(id) ended on an empty frame: \(frames)")
            }
            #expect(client.log(5).body == 60000)
            try await client.close()
        }
    }
}
