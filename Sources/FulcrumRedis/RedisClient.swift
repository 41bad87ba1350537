import DequeModule
import NIOCore
import NIOPosix

/// One event loop's connection to Redis: commands are pipelined on it (written at once, the
/// replies matched in order), and each gets its reply, or an error, within `timeout`.
///
/// Failing fast is the point, for a caller that has a fallback: a connection that cannot be
/// made, or a command that times out (the connection is closed then, with what it carried),
/// makes the client rest for `restAfterFailure`, during which commands fail at once rather
/// than each waiting out the timeout. A connection that closes is made again by the next
/// command. Confined to its event loop, like the handlers that use it: no locks.
///
/// The hot path is plain: a command is bytes appended to the connection, flushed once per
/// turn of the loop; its reply goes to a closure, not a promise; one timer per client watches
/// the oldest command's deadline, instead of one per command.
package final class RedisClient {
    /// Where Redis is, and how to log in and pick the database.
    package struct Endpoint: Sendable, Equatable {
        package var address: SocketAddress
        package var username: String?
        package var password: String?
        package var database: Int

        package init(address: SocketAddress, username: String? = nil, password: String? = nil, database: Int = 0) {
            self.address = address
            self.username = username
            self.password = password
            self.database = database
        }
    }

    /// What a command's caller is told, once.
    package typealias Reply = (Result<RESPValue, RedisError>) -> Void

    private struct Command {
        var bytes: ByteBuffer
        var reply: Reply
        var deadline: NIODeadline
    }

    private enum State {
        case idle
        /// Commands wait for the connection, in order.
        case connecting
        case connected(any Channel)
        /// After a failure: commands fail at once until the deadline.
        case resting(until: NIODeadline, reason: String)
    }

    package let endpoint: Endpoint
    package let eventLoop: any EventLoop
    private let timeout: TimeAmount
    private let restAfterFailure: TimeAmount
    private var state = State.idle
    /// Commands written and waiting for their replies, oldest first; while connecting, the
    /// commands waiting to be written.
    private var inFlight = Deque<Command>()
    /// Fires at the oldest command's deadline.
    private var timer: Scheduled<Void>?
    /// Whether a flush is scheduled: the commands written while the loop handles its current
    /// events leave in one `write` system call, and their replies come back in one read.
    private var flushScheduled = false

    package init(endpoint: Endpoint, eventLoop: any EventLoop, timeout: TimeAmount, restAfterFailure: TimeAmount = .seconds(1)) {
        self.endpoint = endpoint
        self.eventLoop = eventLoop
        self.timeout = timeout
        self.restAfterFailure = restAfterFailure
    }

    /// Sends a command; `reply` is called once, on `eventLoop`, with the reply (Redis's own
    /// error replies as `.server`) or why there is none, within the timeout. It may be called
    /// before this returns (no connection, resting). Call on `eventLoop`.
    package func send(_ arguments: [String], reply: @escaping Reply) {
        eventLoop.preconditionInEventLoop()
        if case .resting(let until, let reason) = state, NIODeadline.now() < until {
            reply(.failure(.unavailable(reason)))
            return
        }
        var bytes = ByteBufferAllocator().buffer(capacity: 64)
        bytes.writeRESPCommand(arguments)
        inFlight.append(Command(bytes: bytes, reply: reply, deadline: .now() + timeout))
        switch state {
        case .connected(let channel):
            channel.write(bytes, promise: nil)
            scheduleFlush(channel)
        case .connecting:
            break
        case .idle, .resting:
            state = .connecting
            connect()
        }
        if timer == nil { armTimer() }
    }

    /// `send(_:reply:)` as a future.
    package func send(_ arguments: [String]) -> EventLoopFuture<RESPValue> {
        let promise = eventLoop.makePromise(of: RESPValue.self)
        send(arguments) { result in
            switch result {
            case .success(.error(let message)): promise.fail(RedisError.server(message))
            case .success(let value): promise.succeed(value)
            case .failure(let error): promise.fail(error)
            }
        }
        return promise.futureResult
    }

    /// Closes the connection (commands in flight fail).
    package func close() {
        eventLoop.preconditionInEventLoop()
        let previous = state
        state = .idle
        if case .connected(let channel) = previous { channel.close(promise: nil) }
        failAll(.connectionClosed)
    }

    // MARK: The connection's events (RESPReplyHandler)

    /// A reply arrived on `channel`; false when no command waits for one (the stream is out
    /// of step).
    func received(_ value: RESPValue, on channel: any Channel) -> Bool {
        guard case .connected(let current) = state, current === channel else { return true }
        guard let command = inFlight.popFirst() else { return false }
        if case .error(let message) = value {
            command.reply(.failure(.server(message)))
        } else {
            command.reply(.success(value))
        }
        return true
    }

    /// `channel` broke (a protocol error, a failed write): rest, and fail what it carried.
    func failed(_ channel: any Channel, because reason: String) {
        guard case .connected(let current) = state, current === channel else { return }
        rest(because: reason)
        failAll(.connectionClosed)
    }

    /// `channel` closed: the next command connects again.
    func closed(_ channel: any Channel) {
        guard case .connected(let current) = state, current === channel else { return }
        state = .idle
        failAll(.connectionClosed)
    }

    // MARK: Private

    private func connect() {
        ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(to: endpoint.address)
            .assumeIsolated()
            .whenComplete { [self] result in
                guard case .connecting = state else {
                    // Closed (or timed out) while connecting.
                    if case .success(let channel) = result { channel.close(promise: nil) }
                    return
                }
                switch result {
                case .success(let channel):
                    connected(channel)
                case .failure(let error):
                    rest(because: "cannot connect to \(endpoint.address): \(error)")
                    failAll(.unavailable("cannot connect: \(error)"))
                }
            }
    }

    private func connected(_ channel: any Channel) {
        do {
            try channel.pipeline.syncOperations.addHandler(RESPReplyHandler(client: self))
        } catch {
            channel.close(promise: nil)
            rest(because: "cannot set the connection up: \(error)")
            failAll(.unavailable("\(error)"))
            return
        }
        state = .connected(channel)
        // Logging in and choosing the database go first on the pipeline: their replies come
        // first, and a refusal closes the connection before any command's reply is trusted.
        var setup: [[String]] = []
        if let password = endpoint.password {
            setup.append(endpoint.username.map { ["AUTH", $0, password] } ?? ["AUTH", password])
        }
        if endpoint.database != 0 { setup.append(["SELECT", String(endpoint.database)]) }
        var setupCommands: [Command] = []
        for arguments in setup {
            var bytes = ByteBufferAllocator().buffer(capacity: 32)
            bytes.writeRESPCommand(arguments)
            setupCommands.append(
                Command(
                    bytes: bytes,
                    reply: { [self] result in
                        guard case .failure(.server(let message)) = result else { return }
                        failed(channel, because: "\(arguments[0]) refused: \(message)")
                        channel.close(promise: nil)
                    },
                    deadline: .now() + timeout
                )
            )
        }
        inFlight.insert(contentsOf: setupCommands, at: 0)
        for command in inFlight { channel.write(command.bytes, promise: nil) }
        channel.flush()
    }

    private func scheduleFlush(_ channel: any Channel) {
        guard !flushScheduled else { return }
        flushScheduled = true
        eventLoop.assumeIsolated().execute { [self] in
            flushScheduled = false
            channel.flush()
        }
    }

    private func armTimer() {
        guard let oldest = inFlight.first else { return }
        timer = eventLoop.assumeIsolated().scheduleTask(deadline: oldest.deadline) { [self] in
            timer = nil
            expire()
        }
    }

    /// The timer fired: if the oldest command is past its deadline, Redis is slow or gone.
    /// Fail it, drop the connection and what it carries (its callers fall back now rather
    /// than after their own timeouts), and rest.
    private func expire() {
        guard let oldest = inFlight.first else { return }
        guard oldest.deadline <= .now() else {
            armTimer()
            return
        }
        let previous = state
        rest(because: "no reply within \(timeout.nanoseconds / 1_000_000) ms")
        if case .connected(let channel) = previous { channel.close(promise: nil) }
        inFlight.removeFirst().reply(.failure(.timeout))
        failAll(.connectionClosed)
    }

    private func failAll(_ error: RedisError) {
        timer?.cancel()
        timer = nil
        while let command = inFlight.popFirst() { command.reply(.failure(error)) }
    }

    private func rest(because reason: String) {
        state = .resting(until: .now() + restAfterFailure, reason: reason)
    }
}
