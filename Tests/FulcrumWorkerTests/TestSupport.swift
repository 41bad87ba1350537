import AsyncHTTPClient
import Foundation
// Re-exported: every test file reads `CollectedResponse` without importing it itself.
@_exported import FulcrumTestSupport
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import FulcrumWorker

/// Starts a worker on an ephemeral port with its own event loop group (one thread unless told
/// otherwise), plus an `HTTPClient` on that group, runs `body`, then shuts client, worker and group
/// down, whether `body` succeeded or not.
///
/// - Parameters:
///   - maxConnectionsPerHost: the client's HTTP/1 connection pool size.
///   - numberOfThreads: the group's event loops; more than one spreads the worker's connections.
func withWorker<Result>(
    name: String = "w-test",
    behaviour: WorkerBehaviour = WorkerBehaviour(delayMilliseconds: 0),
    maxConnectionsPerHost: Int = 8,
    numberOfThreads: Int = 1,
    _ body: (WorkerServer, HTTPClient) async throws -> Result
) async throws -> Result {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: numberOfThreads)
    let worker: WorkerServer
    do {
        worker = try await WorkerServer.start(name: name, behaviour: behaviour, group: group)
    } catch {
        try await group.shutdownGracefully()
        throw error
    }

    var configuration = HTTPClient.Configuration()
    configuration.connectionPool = .init(
        idleTimeout: .seconds(30),
        concurrentHTTP1ConnectionsPerHostSoftLimit: maxConnectionsPerHost
    )
    configuration.timeout = .init(connect: .seconds(5), read: .seconds(30))
    let client = HTTPClient(eventLoopGroup: group, configuration: configuration)

    let outcome: Swift.Result<Result, any Error>
    do {
        outcome = .success(try await body(worker, client))
    } catch {
        outcome = .failure(error)
    }
    try await client.shutdown()
    try await worker.shutdown()
    try await group.shutdownGracefully()
    return try outcome.get()
}

extension HTTPClient {
    /// Sends a `GET` to `worker` and collects the response.
    func send(_ path: String, to worker: WorkerServer) async throws -> CollectedResponse {
        try await self.send(.GET, path, to: worker)
    }

    /// Sends a request to `worker` and collects the response.
    func send(
        _ method: HTTPMethod,
        _ path: String,
        to worker: WorkerServer,
        headers: [(String, String)] = [],
        body: HTTPClientRequest.Body? = nil
    ) async throws -> CollectedResponse {
        try await send(method, url: "http://127.0.0.1:\(worker.port)\(path)", headers: headers, body: body)
    }
}

// MARK: - Deterministic bodies

/// Bytes from a fixed xorshift generator, so uploads aren't trivially regular.
func pseudoRandomBytes(count: Int, seed: UInt64) -> [UInt8] {
    var state = seed | 1
    return (0..<count).map { _ in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state)
    }
}

/// An async sequence that hands out `bytes` in `chunkSize` pieces, to drive streamed uploads.
struct ChunkedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    let bytes: [UInt8]
    let chunkSize: Int

    struct AsyncIterator: AsyncIteratorProtocol {
        let bytes: [UInt8]
        let chunkSize: Int
        var offset = 0

        mutating func next() async -> ByteBuffer? {
            guard self.offset < self.bytes.count else { return nil }
            let end = Swift.min(self.offset + self.chunkSize, self.bytes.count)
            defer { self.offset = end }
            return ByteBuffer(bytes: self.bytes[self.offset..<end])
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(bytes: self.bytes, chunkSize: self.chunkSize)
    }
}

// MARK: - Raw connections

/// A bare TCP connection, for tests that need to control exactly what goes over the wire.
struct RawConnection {
    struct TimedOut: Error {}

    let channel: any Channel
    /// Completed with everything received once the connection closes.
    private let received: EventLoopPromise<ByteBuffer>

    static func connect(
        to worker: WorkerServer,
        group: any EventLoopGroup,
        autoRead: Bool = true
    ) async throws
        -> RawConnection
    {
        let received = group.next().makePromise(of: ByteBuffer.self)
        do {
            let channel = try await ClientBootstrap(group: received.futureResult.eventLoop)
                .channelOption(.autoRead, value: autoRead)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(CollectingHandler(received: received))
                    }
                }
                .connect(host: "127.0.0.1", port: worker.port)
                .get()
            return RawConnection(channel: channel, received: received)
        } catch {
            received.fail(error)  // NIO insists that every promise is completed
            throw error
        }
    }

    func send(_ text: String) async throws {
        try await self.channel.writeAndFlush(ByteBuffer(string: text))
    }

    /// Waits for the server to close the connection and returns everything it sent.
    ///
    /// - Throws: ``TimedOut`` (after closing the connection itself) if the server doesn't close it in time.
    func receiveUntilClosed(timeout: TimeAmount = .seconds(10)) async throws -> ByteBuffer {
        let timer = self.channel.eventLoop.scheduleTask(in: timeout) { [received, channel] in
            received.fail(TimedOut())
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        return try await self.received.futureResult.get()
    }

    func close() async {
        try? await self.channel.close()
    }

    private final class CollectingHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer

        private var buffer = ByteBuffer()
        private let received: EventLoopPromise<ByteBuffer>

        init(received: EventLoopPromise<ByteBuffer>) {
            self.received = received
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var part = self.unwrapInboundIn(data)
            self.buffer.writeBuffer(&part)
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.received.succeed(self.buffer)
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}

/// One HTTP/1.x response parsed from raw bytes.
struct RawResponse {
    var version: String
    var status: Int
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        self.headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    var text: String { String(decoding: self.body, as: UTF8.self) }

    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    /// Splits a byte stream into the responses it holds. Every response must carry a
    /// `Content-Length` (the worker never uses chunked framing) unless its request was a `HEAD`,
    /// which `headRequests` marks by response index.
    static func parseAll(_ buffer: ByteBuffer, headRequests: Set<Int> = []) throws -> [RawResponse] {
        var bytes = buffer.readableBytesView[...]
        var responses: [RawResponse] = []
        let separator: [UInt8] = Array("\r\n\r\n".utf8)

        while !bytes.isEmpty {
            guard let headEnd = bytes.firstRange(of: separator) else {
                throw Malformed(description: "incomplete head: \(String(decoding: bytes, as: UTF8.self))")
            }
            let lines = String(decoding: bytes[..<headEnd.lowerBound], as: UTF8.self)
                .components(separatedBy: "\r\n")
            let statusLine = lines[0].split(separator: " ", maxSplits: 2)
            guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
                throw Malformed(description: "bad status line: \(lines[0])")
            }
            let headers = lines.dropFirst().map { line in
                let colon = line.firstIndex(of: ":")!
                return (
                    name: String(line[..<colon]),
                    value: line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                )
            }
            var response = RawResponse(version: String(statusLine[0]), status: status, headers: headers, body: [])
            bytes = bytes[headEnd.upperBound...]

            if !headRequests.contains(responses.count) {
                guard let length = response.header("Content-Length").flatMap({ Int($0) }) else {
                    throw Malformed(description: "no Content-Length in \(lines)")
                }
                guard bytes.count >= length else {
                    throw Malformed(description: "body truncated: \(bytes.count) of \(length) bytes")
                }
                response.body = Array(bytes.prefix(length))
                bytes = bytes.dropFirst(length)
            }
            responses.append(response)
        }
        return responses
    }
}
