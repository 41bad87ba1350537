import AsyncHTTPClient
import Foundation
import FulcrumProxy
import FulcrumWorker
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL
import Testing

/// HTTP/2 to clients: h2 negotiated by ALPN on TLS listeners, h2c with prior knowledge on
/// plain ones (`h2c: true`); each stream forwarded to the HTTP/1.1 workers behind.
@Suite("HTTP/2 frontends", .serialized)
struct HTTP2Tests {
    /// A TLS frontend (certificate for localhost, made here) before `workers`.
    private static func withTLSProxy(
        workers: [WorkerBehaviour] = [WorkerBehaviour(delayMilliseconds: 0)],
        extra: String = "",
        accessLog: AccessLogWriter? = nil,
        _ body: (ProxyHarness, TestCertificateAuthority) async throws -> Void
    ) async throws {
        let authority = try TestCertificateAuthority()
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try pemFile(try authority.issue(commonName: "localhost", names: ["localhost"]))
            .write(to: directory.appendingPathComponent("localhost.pem"), atomically: true, encoding: .utf8)
        let yaml = { (ports: [Int]) in
            simpleConfig(ports, frontendExtra: "    tls: { certificates: \"\(directory.path)\" }\(extra)")
                .replacingOccurrences(of: "access: off", with: "access: combined")
        }
        try await withProxy(workers: workers, accessLog: accessLog, yaml: yaml) { harness in
            try await body(harness, authority)
        }
    }

    @Test("AsyncHTTPClient negotiates h2 by ALPN; 100 concurrent requests all succeed; the access log says HTTP/2")
    func asyncHTTPClientOverH2() async throws {
        let lines = NIOLockedValueBox<[String]>([])
        let accessLog = AccessLogWriter { batch in
            lines.withLockedValue { $0 += String(buffer: batch).split(separator: "\n").map(String.init) }
        }
        try await Self.withTLSProxy(accessLog: accessLog) { harness, authority in
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .certificates([try authority.nioCertificate])
            let client = HTTPClient(
                eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
                configuration: HTTPClient.Configuration(tlsConfiguration: tls)
            )
            do {
                let versions = try await withThrowingTaskGroup(of: (HTTPResponseStatus, HTTPVersion).self) { group in
                    for index in 0..<100 {
                        group.addTask {
                            let response = try await client.execute(
                                HTTPClientRequest(url: "https://localhost:\(harness.port)/work?delay_ms=50&n=\(index)"),
                                timeout: .seconds(20)
                            )
                            _ = try await response.body.collect(upTo: 1 << 20)
                            return (response.status, response.version)
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(versions.count == 100)
                #expect(versions.allSatisfy { $0.0 == .ok && $0.1 == .http2 }, "\(versions.filter { $0.0 != .ok || $0.1 != .http2 })")
            } catch {
                try await client.shutdown()
                throw error
            }
            try await client.shutdown()
            try await waitUntil(timeout: .seconds(15)) { lines.withLockedValue { $0.count } >= 100 }
            let logged = lines.withLockedValue { $0 }
            #expect(logged.count == 100)
            #expect(logged.allSatisfy { $0.contains("\"GET /work?delay_ms=50&n=") && $0.contains(" HTTP/2.0\" 200 ") }, "\(logged.first ?? "")")
        }
    }

    @Test("one connection carries 100 streams at once; the server announces its stream limit")
    func concurrentStreamsOnOneConnection() async throws {
        try await Self.withTLSProxy { harness, authority in
            let client = try await HTTP2TestClient.connect(port: harness.port, trusting: authority)
            let clock = ContinuousClock()
            let start = clock.now
            // 100 requests of 300 ms each: one after another they would take 30 s.
            let statuses = try await withThrowingTaskGroup(of: UInt.self) { group in
                for _ in 0..<100 {
                    group.addTask { try await client.request("/work?delay_ms=300").head.status.code }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let elapsed = clock.now - start
            #expect(statuses == Array(repeating: 200, count: 100))
            #expect(elapsed < .seconds(10), "\(elapsed)")
            #expect(client.frames.settings.contains(HTTP2Setting(parameter: .maxConcurrentStreams, value: 100)))
            try await client.close()
        }
    }

    @Test("request and response bodies stream both ways; headers are forwarded as for HTTP/1.1")
    func bodiesAndHeaders() async throws {
        try await Self.withTLSProxy { harness, authority in
            let client = try await HTTP2TestClient.connect(port: harness.port, trusting: authority)
            let upload = ByteBuffer(repeating: UInt8(ascii: "x"), count: 300_000)
            let echo = try await client.request(.POST, "/echo", headers: [("x-test", "yes")], body: upload)
            #expect(echo.head.status == .ok)
            let json = try JSONSerialization.jsonObject(with: Data(echo.body.readableBytesView)) as? [String: Any]
            #expect(json?["body_bytes"] as? Int == 300_000)
            #expect(json?["version"] as? String == "HTTP/1.1")
            let headers = (json?["headers"] as? [[String]]) ?? []
            func header(_ name: String) -> String? { headers.first { $0.first?.lowercased() == name }?.last }
            #expect(header("x-test") == "yes")
            #expect(header("host") == "localhost")
            #expect(header("x-forwarded-proto") == "https")
            #expect(header("transfer-encoding") == "chunked")  // an HTTP/2 body has no length

            let download = try await client.request("/bytes?n=2000000")
            #expect(download.head.status == .ok)
            #expect(download.body.readableBytes == 2_000_000)
            // A HEAD response announces a length and has no body.
            let headOnly = try await client.request(.HEAD, "/bytes?n=1000")
            #expect(headOnly.head.status == .ok)
            #expect(headOnly.head.headers["content-length"] == ["1000"])
            #expect(headOnly.body.readableBytes == 0)
            // Errors are pages as usual.
            let missing = try await client.request("/echo?status=404")
            #expect(missing.head.status == .notFound)
            try await client.close()
        }
    }

    @Test("limits.max_concurrent_streams is announced in SETTINGS")
    func configuredStreamLimit() async throws {
        try await Self.withTLSProxy(extra: "\n    limits: { max_concurrent_streams: 7 }") { harness, authority in
            let client = try await HTTP2TestClient.connect(port: harness.port, trusting: authority)
            #expect(try await client.request("/health").head.status == .ok)
            #expect(client.frames.settings.contains(HTTP2Setting(parameter: .maxConcurrentStreams, value: 7)))
            try await client.close()
        }
    }

    @Test("h2c: true serves HTTP/2 with prior knowledge and HTTP/1.1 on one listener; without it, h2c is refused")
    func priorKnowledge() async throws {
        let yaml = { (ports: [Int]) in simpleConfig(ports, frontendExtra: "    h2c: true") }
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: yaml) { harness async throws in
            let client = try await HTTP2TestClient.connect(port: harness.port)
            let response = try await client.request("/echo")
            #expect(response.head.status == .ok)
            let json = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
            let headers = (json?["headers"] as? [[String]]) ?? []
            #expect(headers.first { $0.first?.lowercased() == "x-forwarded-proto" }?.last == "http")
            try await client.close()
            #expect(try await harness.send("/health").status == .ok)
        }
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: { simpleConfig($0) }) { harness in
            let client = try await HTTP2TestClient.connect(port: harness.port)
            await #expect(throws: (any Error).self) { try await client.request("/echo") }
            try? await client.close()
        }
    }

    private static func openConnections(_ harness: ProxyHarness) async throws -> Int {
        try await harness.proxy.traffic().activeConnections["test", default: 0]
    }

    @Test("a connection that ends before choosing its protocol is closed, and does not hold up a shutdown")
    func undecidedConnections() async throws {
        try await Self.withTLSProxy { harness, _ in
            // No TLS handshake at all: connect, then half-close.
            let (_, closed) = try await RawClient.exchange(port: harness.port, chunks: [], timeout: .seconds(3), halfClose: true)
            #expect(closed)
            // Connected, silent, when the shutdown begins: the proxy has accepted it (a fixed
            // sleep instead let a busy machine begin the shutdown before the connection).
            try await waitUntil(timeout: .seconds(10)) { try await Self.openConnections(harness) == 0 }
            async let silent = RawClient.exchange(port: harness.port, chunks: [], timeout: .seconds(6))
            try await waitUntil(timeout: .seconds(10)) { try await Self.openConnections(harness) == 1 }
            let clock = ContinuousClock()
            let start = clock.now
            await harness.proxy.shutdown(gracePeriod: .seconds(5))
            #expect(clock.now - start < .seconds(3))
            #expect(try await silent.closedByServer)
        }
        let yaml = { (ports: [Int]) in simpleConfig(ports, frontendExtra: "    h2c: true") }
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: yaml) { harness async throws in
            // Half of the HTTP/2 preface, then the end of input.
            let (_, closed) = try await RawClient.exchange(port: harness.port, chunks: ["PRI * HTTP"], timeout: .seconds(3), halfClose: true)
            #expect(closed)
        }
    }

    @Test("shutdown sends GOAWAY and lets the stream in flight finish")
    func goAwayOnShutdown() async throws {
        try await Self.withTLSProxy { harness, authority in
            let client = try await HTTP2TestClient.connect(port: harness.port, trusting: authority)
            #expect(try await client.request("/health").head.status == .ok)
            async let slow = client.request("/work?delay_ms=1000")
            // The stream is at the server when the shutdown begins.
            try await waitUntil(timeout: .seconds(15)) { try await harness.proxy.requestsInFlight()["app"]?["w1"] == 1 }
            let clock = ContinuousClock()
            let start = clock.now
            async let drained: Void = harness.proxy.shutdown(gracePeriod: .seconds(5))
            #expect(try await slow.head.status == .ok)
            // The connection closes when its last stream ends, not at the end of the grace period.
            await drained
            #expect(clock.now - start < .seconds(4))
            #expect(client.frames.goAways >= 1)
            try await waitUntil(timeout: .seconds(15)) { !client.channel.isActive }
        }
    }
}
