import AsyncHTTPClient
import Foundation
import FulcrumWorker
import NIOCore
import NIOHTTP1
import Testing

/// Which failures are retried on another server, and custom error pages.
@Suite("Retries and error pages", .serialized)
struct RetryAndErrorPageTests {
    private static let fast = WorkerBehaviour(delayMilliseconds: 0)

    @Test("a GET that reached a server which hung up is retried on the next server")
    func idempotentRequestRetried() async throws {
        let hangUp = try await HangUpServer()
        try await withProxy(workers: [Self.fast], yaml: { ports in simpleConfig([hangUp.port, ports[0]]) }) { harness in
            for _ in 0..<4 {
                let response = try await harness.send("/work")
                #expect(response.status == .ok)
                #expect(response.worker == "w1")
            }
            #expect(hangUp.accepted >= 1)
        }
        try await hangUp.close()
    }

    @Test("a POST that reached a server which hung up is not retried: 502")
    func nonIdempotentRequestNotRetried() async throws {
        let hangUp = try await HangUpServer()
        try await withProxy(workers: [Self.fast], yaml: { ports in simpleConfig([hangUp.port, ports[0]]) }) { harness in
            var statuses: [UInt] = []
            for _ in 0..<4 {
                statuses.append(try await harness.send(.POST, "/echo", body: .bytes(ByteBuffer(string: "x"))).status.code)
            }
            // Round robin alternates: the hang-up server's turns give 502, the worker's 200.
            #expect(statuses.sorted() == [200, 200, 502, 502], "\(statuses)")
            #expect(harness.workers[0].requestsServed == 2)
        }
        try await hangUp.close()
    }

    @Test("a frontend's error_files replace the built-in HTML page")
    func customErrorPage() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-pages-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let page = directory.appendingPathComponent("503.html")
        try "<html><body>We'll be right back.</body></html>".write(to: page, atomically: true, encoding: .utf8)
        let dead = try refusingPort()
        try await withProxy(
            workers: [],
            yaml: { _ in
                simpleConfig([dead], frontendExtra: "    error_files: { 503: \"\(page.path)\" }")
            }
        ) { harness in
            let response = try await harness.send("/anything")
            #expect(response.status == .serviceUnavailable)
            #expect(response.text == "<html><body>We'll be right back.</body></html>")
            // JSON clients still get JSON.
            let json = try await harness.send("/anything", headers: [("Accept", "application/json")])
            #expect(try json.json["status"] as? Int == 503)
        }
    }
}
