import FulcrumRedis
import FulcrumTestSupport
import NIOCore
import NIOPosix
import Testing

@Suite(
    "RedisClient against a real redis-server",
    .enabled(if: RedisServerProcess.executable != nil, "redis-server is not installed (apt-get install redis-server): skipped")
)
struct RedisClientTests {
    private let loop = MultiThreadedEventLoopGroup.singleton.next()

    /// A client on `loop`, reached from the test's tasks through the loop.
    private struct Client: Sendable {
        let bound: NIOLoopBound<RedisClient>

        func send(_ arguments: [String]) async throws -> RESPValue {
            try await bound.eventLoop.flatSubmit { bound.value.send(arguments) }.get()
        }

        func close() async throws {
            try await bound.eventLoop.submit { bound.value.close() }.get()
        }
    }

    private func makeClient(
        port: Int,
        password: String? = nil,
        database: Int = 0,
        timeout: TimeAmount = .seconds(10),
        rest: TimeAmount = .seconds(1)
    ) async throws -> Client {
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        let loop = self.loop
        let bound = try await loop.submit {
            NIOLoopBound(
                RedisClient(
                    endpoint: .init(address: address, password: password, database: database),
                    eventLoop: loop,
                    timeout: timeout,
                    restAfterFailure: rest
                ),
                eventLoop: loop
            )
        }.get()
        return Client(bound: bound)
    }

    private func send(_ client: Client, _ arguments: [String]) async throws -> RESPValue {
        try await client.send(arguments)
    }

    @Test("Pipelined commands get their own replies, in order")
    func pipelining() async throws {
        let redis = try await RedisServerProcess.start()
        let client = try await makeClient(port: redis.port)
        // 200 commands written before any reply is read.
        let loop = self.loop
        let replies = try await loop.flatSubmit {
            let futures = (0..<200).map { _ in client.bound.value.send(["INCR", "counter"]) }
            return EventLoopFuture.whenAllSucceed(futures, on: loop)
        }.get()
        #expect(replies == (1...200).map { .integer($0) })
        #expect(try await send(client, ["GET", "counter"]).string == "200")
        try await client.close()
    }

    @Test("Redis's error replies fail the command, not the connection")
    func serverErrors() async throws {
        let redis = try await RedisServerProcess.start()
        let client = try await makeClient(port: redis.port)
        await #expect(throws: RedisError.self) { try await send(client, ["NOSUCHCOMMAND"]) }
        #expect(try await send(client, ["PING"]) == .simpleString("PONG"))
        try await client.close()
    }

    @Test("SELECT from the URL's database")
    func database() async throws {
        let redis = try await RedisServerProcess.start()
        let client = try await makeClient(port: redis.port, database: 3)
        _ = try await send(client, ["SET", "where", "three"])
        let plain = try await makeClient(port: redis.port)
        #expect(try await send(plain, ["GET", "where"]) == .bulkString(nil))
        _ = try await send(plain, ["SELECT", "3"])
        #expect(try await send(plain, ["GET", "where"]).string == "three")
        try await client.close()
        try await plain.close()
    }

    /// The error `arguments` fail with (an issue when they succeed).
    private func failure(_ client: Client, _ arguments: [String]) async -> RedisError? {
        do {
            _ = try await send(client, arguments)
            Issue.record("\(arguments) succeeded")
            return nil
        } catch {
            return error as? RedisError
        }
    }

    @Test("No server: fails at once, rests (failing without trying), and connects when it is back")
    func unavailable() async throws {
        let redis = try await RedisServerProcess.start()
        redis.kill()
        // A long rest, which no load outlasts between two calls.
        let resting = try await makeClient(port: redis.port, rest: .seconds(60))
        guard case .unavailable(let first) = await failure(resting, ["PING"]) else { throw RedisServerError("not unavailable") }
        #expect(first.hasPrefix("cannot connect: "), "\(first)")
        // Resting: the next one fails with the rest's reason, without trying.
        guard case .unavailable(let reason) = await failure(resting, ["PING"]) else { throw RedisServerError("not resting") }
        #expect(reason.hasPrefix("cannot connect to "), "\(reason)")
        try await resting.close()
        let client = try await makeClient(port: redis.port)
        #expect(await failure(client, ["PING"]) != nil)
        try await redis.restart()
        try await Task.sleep(for: .milliseconds(1_100))
        #expect(try await send(client, ["PING"]) == .simpleString("PONG"))
        // Killed with the connection open: the next command fails, and once the rest is over
        // and the server back, one connects again.
        redis.kill()
        #expect(await failure(client, ["PING"]) != nil)
        try await redis.restart()
        try await Task.sleep(for: .milliseconds(1_100))
        #expect(try await send(client, ["PING"]) == .simpleString("PONG"))
        try await client.close()
    }

    @Test("A paused server: the command times out after the timeout, and the client rests")
    func timeout() async throws {
        let redis = try await RedisServerProcess.start()
        // Connected first, with a timeout no load reaches; then a client that times out soon,
        // on the paused server, and rests longer than any load stretches two calls apart.
        let client = try await makeClient(port: redis.port)
        #expect(try await send(client, ["PING"]) == .simpleString("PONG"))
        let hasty = try await makeClient(port: redis.port, timeout: .milliseconds(300), rest: .seconds(60))
        redis.pause()
        let start = ContinuousClock.now
        #expect(await failure(hasty, ["PING"]) == .timeout)
        #expect(ContinuousClock.now - start >= .milliseconds(290))
        // Resting: fails with the rest's reason, without waiting for another timeout.
        guard case .unavailable(let resting) = await failure(hasty, ["PING"]) else { throw RedisServerError("not resting") }
        #expect(resting.hasPrefix("no reply within 300 ms"), "\(resting)")
        redis.resume()
        #expect(try await send(client, ["PING"]) == .simpleString("PONG"))
        try await hasty.close()
        try await client.close()
    }

    @Test("The harness knows its own redis-server from a server that holds the port")
    func harnessIdentifiesItsServer() async throws {
        let redis = try await RedisServerProcess.start()
        #expect(redisProcessIdentifier(port: redis.port) == redis.processIdentifier)
        // A listener that is not Redis: no process id, so start() would try another port.
        let other = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let otherPort = other.localAddress!.port!
        let answer = try await NIOThreadPool.singleton.runIfActive { redisProcessIdentifier(port: otherPort) }
        #expect(answer == nil)
        try await other.close()
        redis.kill()
    }

    @Test("AUTH from the URL: a wrong password is refused, the right one is let in")
    func authentication() async throws {
        let redis = try await RedisServerProcess.start()
        let admin = try await makeClient(port: redis.port)
        _ = try await send(admin, ["CONFIG", "SET", "requirepass", "sesame"])
        try await admin.close()
        let wrong = try await makeClient(port: redis.port, password: "wrong")
        await #expect(throws: RedisError.self) { try await send(wrong, ["PING"]) }
        let right = try await makeClient(port: redis.port, password: "sesame")
        #expect(try await send(right, ["PING"]) == .simpleString("PONG"))
        try await wrong.close()
        try await right.close()
    }
}
