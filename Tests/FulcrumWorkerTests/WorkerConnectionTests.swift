import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import FulcrumWorker

@Suite("Worker connections")
struct WorkerConnectionTests {
    @Test func keepAliveServesManyRequestsOnOneConnection() async throws {
        try await withWorker(maxConnectionsPerHost: 1) { worker, client in
            for path in ["/health", "/work", "/echo", "/bytes?n=100000", "/control"] {
                let response = try await client.send(path, to: worker)
                #expect(response.status == .ok, "\(path)")
            }
            #expect(worker.connectionsAccepted == 1)
            #expect(worker.requestsServed == 5)
        }
    }

    @Test func connectionCloseClosesTheConnectionAfterTheResponse() async throws {
        try await withWorker { worker, _ in
            let connection = try await RawConnection.connect(to: worker, group: MultiThreadedEventLoopGroup.singleton)
            try await connection.send("GET /health HTTP/1.1\r\nHost: worker\r\nConnection: close\r\n\r\n")

            let responses = try RawResponse.parseAll(try await connection.receiveUntilClosed())
            try #require(responses.count == 1)
            #expect(responses[0].status == 200)
            #expect(responses[0].header("Connection") == "close")
            #expect(responses[0].text == "ok")
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await withWorker(name: "piper") { worker, _ in
            let connection = try await RawConnection.connect(to: worker, group: MultiThreadedEventLoopGroup.singleton)
            // One write, so the server sees all four requests at once; the slow one goes first.
            try await connection.send(
                "GET /work?delay_ms=100 HTTP/1.1\r\nHost: w\r\n\r\n"
                    + "GET /bytes?n=200000&seed=3 HTTP/1.1\r\nHost: w\r\n\r\n"
                    + "HEAD /bytes?n=5000000 HTTP/1.1\r\nHost: w\r\n\r\n"
                    + "POST /echo HTTP/1.1\r\nHost: w\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
            )

            let responses = try RawResponse.parseAll(try await connection.receiveUntilClosed(), headRequests: [2])
            try #require(responses.count == 4)
            #expect(responses.allSatisfy { $0.header("X-Worker") == "piper" })
            #expect(responses[0].text == "work done by piper in 100 ms\n")
            #expect(responses[1].body == (0..<200_000).map { WorkerServer.patternByte(index: $0, seed: 3) })
            #expect(responses[2].header("Content-Length") == "5000000")
            #expect(responses[3].text.contains(#""body":"hello""#))
            #expect(responses[3].header("Connection") == "close")
            #expect(worker.connectionsAccepted == 1)
        }
    }

    @Test func http10ClosesAfterTheResponseByDefault() async throws {
        try await withWorker { worker, _ in
            let connection = try await RawConnection.connect(to: worker, group: MultiThreadedEventLoopGroup.singleton)
            try await connection.send("GET /health HTTP/1.0\r\n\r\n")

            let responses = try RawResponse.parseAll(try await connection.receiveUntilClosed())
            try #require(responses.count == 1)
            #expect(responses[0].version == "HTTP/1.0")
            #expect(responses[0].status == 200)
            #expect(responses[0].header("Content-Length") == "2")
            #expect(responses[0].text == "ok")
        }
    }

    @Test func http10KeepAliveIsHonoured() async throws {
        try await withWorker { worker, _ in
            let connection = try await RawConnection.connect(to: worker, group: MultiThreadedEventLoopGroup.singleton)
            try await connection.send(
                "GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /bytes?n=1000 HTTP/1.0\r\n\r\n"
            )

            let responses = try RawResponse.parseAll(try await connection.receiveUntilClosed())
            try #require(responses.count == 2)
            #expect(responses[0].header("Connection") == "keep-alive")
            #expect(responses[0].text.contains(#""version":"HTTP/1.0""#))
            #expect(responses[1].version == "HTTP/1.0")
            #expect(responses[1].body.count == 1000)
        }
    }

    @Test func bytesStopsWritingWhileTheClientDoesNotRead() async throws {
        try await withWorker { worker, _ in
            // The client never reads, so the socket buffers fill up and the channel turns unwritable.
            let connection = try await RawConnection.connect(
                to: worker,
                group: MultiThreadedEventLoopGroup.singleton,
                autoRead: false
            )
            try await connection.send("GET /bytes?n=\(1 << 30) HTTP/1.1\r\nHost: w\r\n\r\n")
            try await Task.sleep(for: .milliseconds(500))

            // Without backpressure the whole gigabyte would be queued at once. With it, only what the
            // kernel's socket buffers hold (a few MiB on loopback) plus a watermark's worth is.
            let queued = worker.streamedBodyBytes
            #expect(queued > 0)
            #expect(queued < 128 * 1024 * 1024)
            await connection.close()
        }
    }

    @Test func shutdownClosesOpenConnectionsAndTheListener() async throws {
        try await withWorker { worker, _ in
            let idle = try await RawConnection.connect(to: worker, group: MultiThreadedEventLoopGroup.singleton)
            let waiting = try await RawConnection.connect(to: worker, group: MultiThreadedEventLoopGroup.singleton)
            try await waiting.send("GET /work?delay_ms=60000 HTTP/1.1\r\nHost: w\r\n\r\n")
            // Make sure the server has accepted both before shutting down.
            while worker.connectionsAccepted < 2 {
                try await Task.sleep(for: .milliseconds(10))
            }

            try await worker.shutdown()

            #expect(try await idle.receiveUntilClosed().readableBytes == 0)
            #expect(try await waiting.receiveUntilClosed().readableBytes == 0)
            await #expect(throws: (any Error).self) {
                try await RawConnection.connect(to: worker, group: MultiThreadedEventLoopGroup.singleton)
            }
            // `withWorker` shuts the worker down again, which must be harmless.
        }
    }
}
