import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import FulcrumWorker

@Suite("Worker endpoints")
struct WorkerEndpointTests {
    // MARK: /health and /control

    @Test func healthIsOKByDefault() async throws {
        try await withWorker { worker, client in
            let response = try await client.send("/health", to: worker)
            #expect(response.status == .ok)
            #expect(response.text == "ok")
        }
    }

    @Test func healthTurns503AfterPostControlAndBackAfterUpdate() async throws {
        try await withWorker(behaviour: WorkerBehaviour(delayMilliseconds: 42, errorRate: 0.25)) { worker, client in
            let control = try await client.send(
                .POST,
                "/control",
                to: worker,
                body: .bytes(ByteBuffer(string: #"{"healthy": false}"#))
            )
            #expect(control.status == .ok)
            // Fields missing from the update keep their values.
            let expected = WorkerBehaviour(delayMilliseconds: 42, errorRate: 0.25, healthy: false)
            #expect(try JSONDecoder().decode(WorkerBehaviour.self, from: Data(control.body.readableBytesView)) == expected)
            #expect(worker.behaviour == expected)

            let unhealthy = try await client.send("/health", to: worker)
            #expect(unhealthy.status == .serviceUnavailable)
            #expect(unhealthy.text == "unhealthy")

            worker.update(WorkerBehaviour(healthy: true))
            let healthy = try await client.send("/health", to: worker)
            #expect(healthy.status == .ok)
        }
    }

    @Test func getControlReturnsTheBehaviourAsSnakeCaseJSON() async throws {
        let behaviour = WorkerBehaviour(delayMilliseconds: 7, jitterMilliseconds: 3, errorRate: 0.5, healthy: false)
        try await withWorker(behaviour: behaviour) { worker, client in
            let response = try await client.send("/control", to: worker)
            #expect(response.status == .ok)
            #expect(response.headers.first(name: "Content-Type") == "application/json")
            let json = try response.jsonObject()
            #expect(json["delay_ms"] as? Int == 7)
            #expect(json["jitter_ms"] as? Int == 3)
            #expect(json["error_rate"] as? Double == 0.5)
            #expect(json["healthy"] as? Bool == false)
        }
    }

    @Test(arguments: [
        "not json",
        "",
        #"{"delay_ms": "slow"}"#,
        #"{"error_rate": 1.5}"#,
        #"{"delay_ms": -1}"#,
    ])
    func postControlRejectsBadUpdates(body: String) async throws {
        let behaviour = WorkerBehaviour(delayMilliseconds: 5)
        try await withWorker(behaviour: behaviour) { worker, client in
            let response = try await client.send(.POST, "/control", to: worker, body: .bytes(ByteBuffer(string: body)))
            #expect(response.status == .badRequest)
            #expect(worker.behaviour == behaviour)
        }
    }

    // MARK: /work

    @Test func workWaitsForTheConfiguredDelay() async throws {
        try await withWorker(name: "slow", behaviour: WorkerBehaviour(delayMilliseconds: 200)) { worker, client in
            let start = ContinuousClock.now
            let response = try await client.send("/work", to: worker)
            let elapsed = ContinuousClock.now - start
            #expect(response.status == .ok)
            #expect(response.text == "work done by slow in 200 ms\n")
            #expect(elapsed >= .milliseconds(200))
        }
    }

    @Test func workDelayQueryParameterOverridesTheBehaviour() async throws {
        try await withWorker(behaviour: WorkerBehaviour(delayMilliseconds: 20_000)) { worker, client in
            let start = ContinuousClock.now
            let response = try await client.send("/work?delay_ms=150", to: worker)
            let elapsed = ContinuousClock.now - start
            #expect(response.status == .ok)
            #expect(elapsed >= .milliseconds(150))
            #expect(elapsed < .seconds(10))
        }
    }

    @Test func workFailsAtErrorRateOne() async throws {
        try await withWorker(behaviour: WorkerBehaviour(delayMilliseconds: 0, errorRate: 1)) { worker, client in
            for _ in 0..<5 {
                let response = try await client.send("/work", to: worker)
                #expect(response.status == .internalServerError)
            }
        }
    }

    @Test func workSucceedsAtErrorRateZero() async throws {
        try await withWorker(behaviour: WorkerBehaviour(delayMilliseconds: 0, errorRate: 0)) { worker, client in
            for _ in 0..<5 {
                let response = try await client.send("/work", to: worker)
                #expect(response.status == .ok)
            }
        }
    }

    @Test func errorRateChangedOverControlAppliesToTheNextRequest() async throws {
        try await withWorker { worker, client in
            #expect(try await client.send("/work", to: worker).status == .ok)
            let control = try await client.send(
                .POST,
                "/control",
                to: worker,
                body: .bytes(ByteBuffer(string: #"{"error_rate": 1}"#))
            )
            #expect(control.status == .ok)
            #expect(try await client.send("/work", to: worker).status == .internalServerError)
        }
    }

    // MARK: Every endpoint

    @Test func everyResponseNamesTheWorker() async throws {
        try await withWorker(name: "w-7") { worker, client in
            let requests: [(HTTPMethod, String, HTTPResponseStatus)] = [
                (.GET, "/health", .ok),
                (.GET, "/work", .ok),
                (.PUT, "/echo", .ok),
                (.GET, "/echo?status=503", .serviceUnavailable),
                (.GET, "/control", .ok),
                (.POST, "/sink", .ok),
                (.GET, "/bytes?n=10", .ok),
                (.GET, "/bytes", .badRequest),
                (.GET, "/work?delay_ms=soon", .badRequest),
                (.DELETE, "/health", .methodNotAllowed),
                (.GET, "/nowhere", .notFound),
            ]
            for (method, path, status) in requests {
                let response = try await client.send(method, path, to: worker)
                #expect(response.status == status, "\(method) \(path)")
                #expect(response.worker == "w-7", "\(method) \(path)")
            }
            #expect(worker.requestsServed == requests.count)
        }
    }

    // MARK: /echo

    @Test func echoReflectsTheRequest() async throws {
        try await withWorker(name: "echoer") { worker, client in
            let response = try await client.send(
                .PATCH,
                "/echo?a=1&b=two",
                to: worker,
                headers: [("X-Repeat", "first"), ("X-Other", "x"), ("X-Repeat", "second")],
                body: .bytes(ByteBuffer(string: "héllo wörld"))
            )
            #expect(response.status == .ok)
            let json = try response.jsonObject()
            #expect(json["worker"] as? String == "echoer")
            #expect(json["method"] as? String == "PATCH")
            #expect(json["path"] as? String == "/echo?a=1&b=two")
            #expect(json["version"] as? String == "HTTP/1.1")
            #expect(json["body"] as? String == "héllo wörld")
            #expect(json["body_bytes"] as? Int == "héllo wörld".utf8.count)

            let headers = try #require(json["headers"] as? [[String]])
            let custom = headers.filter { $0[0].lowercased().hasPrefix("x-") }
            #expect(custom == [["X-Repeat", "first"], ["X-Other", "x"], ["X-Repeat", "second"]])
            #expect(headers.contains { $0[0].lowercased() == "host" })
        }
    }

    @Test func echoAnswersWithTheRequestedStatus() async throws {
        try await withWorker { worker, client in
            let teapot = try await client.send("/echo?status=418", to: worker)
            #expect(teapot.status == .imATeapot)
            #expect(try teapot.jsonObject()["path"] as? String == "/echo?status=418")

            let noContent = try await client.send("/echo?status=204", to: worker)
            #expect(noContent.status == .noContent)
            #expect(noContent.body.readableBytes == 0)

            #expect(try await client.send("/echo?status=99", to: worker).status == .badRequest)
        }
    }

    @Test func echoRejectsBodiesOver16MiB() async throws {
        try await withWorker { worker, client in
            let body = [UInt8](repeating: 0x61, count: WorkerHTTPHandler.maxEchoBodySize + 1)
            let response = try await client.send(.POST, "/echo", to: worker, body: .bytes(body))
            #expect(response.status == .payloadTooLarge)

            // The oversized body was drained, so the connection still works.
            #expect(try await client.send("/health", to: worker).status == .ok)
        }
    }

    // MARK: /sink and /bytes

    @Test func sinkChecksumsAStreamedUpload() async throws {
        let payload = pseudoRandomBytes(count: 10 * 1024 * 1024, seed: 0xF00D)
        var expected = FNV1a64()
        expected.update(payload)

        try await withWorker { worker, client in
            let response = try await client.send(
                .POST,
                "/sink",
                to: worker,
                body: .stream(ChunkedBody(bytes: payload, chunkSize: 100_000), length: .known(Int64(payload.count)))
            )
            #expect(response.status == .ok)
            let json = try response.jsonObject()
            #expect(json["bytes"] as? Int == payload.count)
            #expect(json["checksum"] as? String == expected.hexDigest)
        }
    }

    @Test func sinkAcceptsChunkedUploads() async throws {
        let payload = pseudoRandomBytes(count: 300_000, seed: 99)
        var expected = FNV1a64()
        expected.update(payload)

        try await withWorker { worker, client in
            let response = try await client.send(
                .PUT,
                "/sink",
                to: worker,
                body: .stream(ChunkedBody(bytes: payload, chunkSize: 7_000), length: .unknown)
            )
            let json = try response.jsonObject()
            #expect(json["bytes"] as? Int == payload.count)
            #expect(json["checksum"] as? String == expected.hexDigest)
        }
    }

    @Test func bytesStreamsThePattern() async throws {
        let count = 10 * 1024 * 1024 + 123  // not a multiple of the chunk size
        let seed = 7
        var expected = FNV1a64()
        expected.update((0..<count).lazy.map { WorkerServer.patternByte(index: $0, seed: seed) })

        try await withWorker { worker, client in
            let request = HTTPClientRequest(url: "http://127.0.0.1:\(worker.port)/bytes?n=\(count)&seed=\(seed)")
            let response = try await client.execute(request, timeout: .seconds(60))
            #expect(response.status == .ok)
            #expect(response.headers.first(name: "Content-Length") == String(count))
            #expect(response.headers.first(name: "X-Worker") == "w-test")

            var received = FNV1a64()
            var receivedBytes = 0
            for try await part in response.body {
                received.update(part)
                receivedBytes += part.readableBytes
            }
            #expect(receivedBytes == count)
            #expect(received.hexDigest == expected.hexDigest)
        }
    }

    @Test func bytesWithZeroLengthIsEmpty() async throws {
        try await withWorker { worker, client in
            let response = try await client.send("/bytes?n=0", to: worker)
            #expect(response.status == .ok)
            #expect(response.body.readableBytes == 0)
        }
    }
}
