import Crypto
import FulcrumConfig
import FulcrumRedis
import FulcrumShield
import Logging
import NIOCore
import Synchronization

/// One event loop's way to the store (`global.store`) for rate limits with `shared: true`.
///
/// A decision is one `EVALSHA` of `script`: GCRA, exactly as `RateLimiter` counts, kept in
/// Redis as one timestamp per key and decided atomically there, on Redis's clock (`TIME`), so
/// every instance counts against the same schedule whatever its own clock says. Calls from a
/// loop are pipelined on its one connection (`RedisClient`). The answer is never an error:
/// a call that fails or times out comes back as `.failed`, for the limit's `on_error`.
final class SharedLimitStore {
    /// What the store said about one request.
    enum Outcome: Equatable {
        case decided(RateLimiter.Decision)
        /// No decision (the reason is counted and, now and then, logged).
        case failed(StoreCall)
    }

    /// GCRA over `KEYS[1]`: `ARGV[1]` the spacing between requests and `ARGV[2]` the
    /// tolerance (burst × spacing), in microseconds. Returns `{1, 0}` when the request passes
    /// (and counts it), `{0, wait}` when it is `wait` microseconds early. The stored value is
    /// the key's theoretical arrival time, expiring when the key is back to a full allowance.
    static let script = """
        if redis.replicate_commands then redis.replicate_commands() end
        local interval = tonumber(ARGV[1])
        local tolerance = tonumber(ARGV[2])
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
        local due = tonumber(redis.call('GET', KEYS[1]) or '0')
        if due < now then due = now end
        if due - now > tolerance then return {0, due - now - tolerance} end
        due = due + interval
        redis.call('SET', KEYS[1], string.format('%.0f', due), 'PX', math.floor((due - now) / 1000) + 1)
        return {1, 0}
        """

    static let scriptDigest = Insecure.SHA1.hash(data: Array(script.utf8)).map { byte in
        let hex = String(byte, radix: 16)
        return byte < 16 ? "0" + hex : hex
    }.joined()

    /// A failure is logged at most this often, over every loop.
    static let logInterval: TimeAmount = .seconds(10)

    /// What a limit does when the store gives no decision.
    let onError: StoreConfig.OnError
    private let client: RedisClient
    private let counters: TrafficCounters
    private let logger: Logger
    /// When a failure was last logged, in uptime nanoseconds, shared by the loops.
    private let lastLogged: SharedLimitStoreLog

    init(client: RedisClient, onError: StoreConfig.OnError, counters: TrafficCounters, log: SharedLimitStoreLog, logger: Logger) {
        self.client = client
        self.onError = onError
        self.counters = counters
        self.lastLogged = log
        self.logger = logger
    }

    /// A shared limit as the script takes it, worked out once when the shield is compiled:
    /// its keys' prefix and its two parameters, as text.
    struct Limit: Sendable {
        /// `fulcrum:FRONTEND:ratelimit:NAME:` or `fulcrum:FRONTEND:antibot:rate:`.
        let keyPrefix: String
        let interval: String
        let tolerance: String

        /// - Parameter storeName: `ratelimit:NAME`, or `antibot:rate`.
        init(_ config: RateLimitConfig, frontend: String, storeName: String) {
            keyPrefix = "fulcrum:\(frontend):\(storeName):"
            let period = UInt64(TimeAmount(config.period).nanoseconds / 1_000)
            let interval = (period + UInt64(config.requests) - 1) / UInt64(config.requests)
            self.interval = String(interval)
            // As `FrontendShield` configures the local limiter: `rate` in any window, plus `burst`.
            tolerance = String(UInt64(config.requests - 1 + config.burst) * interval)
        }
    }

    /// Decides on a request of `key` under `limit`: `decided` is called once, on the loop,
    /// within the store's timeout (perhaps before this returns), with a decision or why there
    /// is none.
    func check(_ limit: Limit, key: String, decided: @escaping (Outcome) -> Void) {
        let storeKey = limit.keyPrefix + key
        client.send(["EVALSHA", Self.scriptDigest, "1", storeKey, limit.interval, limit.tolerance]) { [self] result in
            // Not loaded on this server yet (or flushed): send the script itself, once.
            if case .failure(.server(let message)) = result, message.hasPrefix("NOSCRIPT") {
                client.send(["EVAL", Self.script, "1", storeKey, limit.interval, limit.tolerance]) { [self] result in
                    decided(outcome(of: result))
                }
            } else {
                decided(outcome(of: result))
            }
        }
    }

    /// `check(_:key:decided:)` as a future, for rate limit `limit` of `frontend` (tests).
    func check(frontend: String, limit: RateLimitConfig, key: String) -> EventLoopFuture<Outcome> {
        let promise = client.eventLoop.makePromise(of: Outcome.self)
        check(Limit(limit, frontend: frontend, storeName: "ratelimit:\(limit.name)"), key: key) { promise.succeed($0) }
        return promise.futureResult
    }

    private func outcome(of result: Result<RESPValue, RedisError>) -> Outcome {
        switch result {
        case .success(let reply):
            return outcome(of: reply)
        case .failure(let error):
            let call: StoreCall =
                switch error {
                case .timeout: .timeout
                case .connectionClosed, .unavailable: .unavailable
                case .server: .error
                }
            failed(call, error: error)
            return .failed(call)
        }
    }

    private func outcome(of reply: RESPValue) -> Outcome {
        guard case .array(let values?) = reply, values.count == 2, case .integer(let passed) = values[0],
            case .integer(let wait) = values[1]
        else {
            failed(.error, error: SharedLimitStoreError(reply: reply))
            return .failed(.error)
        }
        guard passed == 0 else {
            counters.storeCall(.allowed)
            return .decided(.allowed)
        }
        counters.storeCall(.limited)
        return .decided(.limited(retryAfterSeconds: max(1, (wait + 999_999) / 1_000_000)))
    }

    private func failed(_ call: StoreCall, error: any Error) {
        counters.storeCall(call)
        let now = Int64(NIODeadline.now().uptimeNanoseconds)
        if lastLogged.claim(now: now, interval: Self.logInterval.nanoseconds) {
            logger.warning(
                "store: a shared rate limit fell back to its on_error (counted in fulcrum_store_errors_total; logged at most every 10 s)",
                metadata: ["store": "\(client.endpoint.address)", "reason": "\(call.rawValue)", "error": "\(error)"]
            )
        }
    }
}

/// What every loop's `SharedLimitStore` is made from: the store's address, resolved once at
/// start (off the event loops), its timeout, and the log they share.
struct SharedLimitStoreSetup: Sendable {
    let endpoint: RedisClient.Endpoint
    let timeout: TimeAmount
    let onError: StoreConfig.OnError
    let log = SharedLimitStoreLog()

    /// Resolves `config`'s host; blocks (call it on a thread pool).
    init(_ config: StoreConfig) throws {
        let url = config.redis
        do {
            endpoint = RedisClient.Endpoint(
                address: try SocketAddress.makeAddressResolvingHost(url.host, port: url.port),
                username: url.username,
                password: url.password,
                database: url.database
            )
        } catch {
            throw StartupError.unresolvableStore(address: url.description, reason: "\(error)")
        }
        timeout = TimeAmount(config.timeout)
        onError = config.onError
    }

    /// One loop's store. Call on `eventLoop`.
    func makeStore(on eventLoop: any EventLoop, counters: TrafficCounters, logger: Logger) -> SharedLimitStore {
        SharedLimitStore(
            client: RedisClient(endpoint: endpoint, eventLoop: eventLoop, timeout: timeout),
            onError: onError,
            counters: counters,
            log: log,
            logger: logger
        )
    }
}

/// When a store failure was last logged, shared by every loop's `SharedLimitStore`.
final class SharedLimitStoreLog: Sendable {
    private let last = Atomic<Int64>(.min)

    /// Whether the caller logs now: true at most once per `interval`.
    func claim(now: Int64, interval: Int64) -> Bool {
        let previous = last.load(ordering: .relaxed)
        guard previous == .min || now - previous >= interval else { return false }
        return last.compareExchange(expected: previous, desired: now, ordering: .relaxed).exchanged
    }
}

struct SharedLimitStoreError: Error, CustomStringConvertible {
    let reply: RESPValue
    var description: String { "the script answered \(reply), not {passed, wait}" }
}
