import FulcrumBalancing
import FulcrumProxy

/// A backend as `GET /api/backends` shows it.
struct BackendView: Encodable {
    let name: String
    /// `http`, or `tcp` (whose servers' requests are connections).
    let mode: String
    /// As configured (`adaptive` included).
    let algorithm: String
    /// The algorithm picking now: for `adaptive`, the decision engine's (or the operator's) choice.
    let activeAlgorithm: String
    /// For `adaptive` backends: whether an operator pinned `activeAlgorithm`.
    let pinned: Bool?
    /// `sticky`: the cookie that binds clients to servers; absent without it.
    let sticky: StickyView?
    /// The queue requests wait in when every server is at its limit; absent without limits.
    let queue: QueueView?
    let servers: [ServerView]

    struct QueueView: Encodable {
        /// Requests waiting now.
        let length: Int
        let max: Int
        let timeoutMilliseconds: Int64
        /// Since the backend was configured: requests that waited and went to a server, that
        /// waited `timeout` and got 503, that found the queue full and got 503.
        let served: Int
        let timedOut: Int
        let rejected: Int
        /// The mean wait of the requests served from the queue.
        let meanWaitMilliseconds: Double?

        init(_ stats: QueueStats) {
            length = stats.length
            max = stats.max
            timeoutMilliseconds = Int64(stats.timeout / .milliseconds(1))
            served = stats.served
            timedOut = stats.timedOut
            rejected = stats.rejected
            meanWaitMilliseconds = stats.served > 0 ? Double(stats.waitedNanoseconds) / Double(stats.served) / 1e6 : nil
        }
    }

    struct StickyView: Encodable {
        let cookie: String
        /// `insert` or `prefix`.
        let mode: String
    }

    init(_ stats: BackendStats, pinned: Bool?) {
        name = stats.name
        mode = stats.mode
        algorithm = stats.configuredAlgorithm
        activeAlgorithm = stats.algorithm
        self.pinned = pinned
        sticky = stats.sticky.map { StickyView(cookie: $0.cookie, mode: $0.mode) }
        queue = stats.queue.map(QueueView.init)
        servers = stats.servers.map(ServerView.init)
    }
}

/// A server's state and live numbers (the window is the last 15–20 s).
struct ServerView: Encodable {
    let name: String
    let address: String
    let `protocol`: String
    let state: String
    let weight: Int
    let inFlight: Int
    let connectionsOpen: Int
    let requestsPerSecond: Double
    let errorRate: Double
    let ewmaMilliseconds: Double?
    let p50Milliseconds: Double?
    let p95Milliseconds: Double?
    let p99Milliseconds: Double?
    let totals: Totals
    /// With `sticky`: the cookie value that names this server (a hash of its name).
    let stickyValue: String?
    /// While a slow start ramps the server up after it came back: how far, in percent.
    let rampPercent: Int?
    /// The requests it may have in flight at once (`max_requests`, `max_connections`).
    let limit: Int?

    struct Totals: Encodable {
        let requests: Int
        let responses5xx: Int
        let connectFailures: Int
        let timeouts: Int
        let noResponses: Int
    }

    init(_ stats: ServerStats) {
        name = stats.name
        address = stats.address
        `protocol` = stats.protocol
        state = stats.state.rawValue
        weight = stats.weight
        inFlight = stats.inFlight
        connectionsOpen = stats.connectionsOpen
        let metrics = stats.metrics
        requestsPerSecond = metrics.requestRate
        errorRate = metrics.errorRate
        ewmaMilliseconds = metrics.ewmaMilliseconds
        p50Milliseconds = metrics.percentileMilliseconds(50)
        p95Milliseconds = metrics.percentileMilliseconds(95)
        p99Milliseconds = metrics.percentileMilliseconds(99)
        stickyValue = stats.stickyValue
        rampPercent = stats.rampPercent
        limit = stats.limit
        totals = Totals(
            requests: metrics.totals.requests,
            responses5xx: metrics.totals.responses5xx,
            connectFailures: metrics.totals.connectFailures,
            timeouts: metrics.totals.timeouts,
            noResponses: metrics.totals.noResponses
        )
    }
}

/// One decision of the adaptive engine (a switch, or a reason to keep the algorithm).
struct DecisionView: Encodable {
    /// How long ago it was made.
    let secondsAgo: Double
    let from: String
    let to: String
    let switched: Bool
    let rule: String
    let explanation: String

    init(_ decision: AdaptiveDecision, now: ContinuousClock.Instant) {
        let age = now - decision.time
        secondsAgo = Double(age.components.seconds) + Double(age.components.attoseconds) / 1e18
        from = decision.from.rawValue
        to = decision.to.rawValue
        switched = decision.switched
        rule = decision.rule.rawValue
        explanation = decision.explanation
    }
}

/// `PATCH /api/backends/{b}/servers/{s}`.
struct ServerChange: Decodable {
    let state: String?
    let weight: Int?

    init(from decoder: any Decoder) throws {
        let body = try StrictJSONObject(decoder, keys: ["state", "weight"])
        state = try body.value("state", expected: "a string")
        weight = try body.value("weight", expected: "an integer")
    }
}

/// `PUT /api/backends/{b}/algorithm`: `{"algorithm": "least_connections", "pin": true}`;
/// `{"pin": false}` alone lets the engine choose again.
struct AlgorithmChange: Decodable {
    let algorithm: String?
    let pin: Bool?

    init(from decoder: any Decoder) throws {
        let body = try StrictJSONObject(decoder, keys: ["algorithm", "pin"])
        algorithm = try body.value("algorithm", expected: "a string")
        pin = try body.value("pin", expected: "true or false")
    }
}

/// A JSON body read as strictly as the configuration file: an unknown key (a typo such as
/// `wieght`) or a `null` is refused with a 400 naming it, never ignored — ignoring it would
/// apply part of what the caller meant.
struct StrictJSONObject {
    private struct Key: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    private let container: KeyedDecodingContainer<Key>

    init(_ decoder: any Decoder, keys: [String]) throws {
        do {
            container = try decoder.container(keyedBy: Key.self)
        } catch {
            throw AdminProblem(.badRequest, "The body must be a JSON object with any of: \(keys.joined(separator: ", ")).")
        }
        if let unknown = container.allKeys.first(where: { !keys.contains($0.stringValue) }) {
            throw AdminProblem(
                .badRequest,
                "Unknown key \"\(unknown.stringValue)\"; expected any of: \(keys.joined(separator: ", ")).",
                field: unknown.stringValue
            )
        }
    }

    /// The value under `key`, nil when the key is absent; `expected` says what it should be.
    func value<Value: Decodable>(_ key: String, expected: String) throws -> Value? {
        let codingKey = Key(stringValue: key)
        guard container.contains(codingKey) else { return nil }
        guard try !container.decodeNil(forKey: codingKey) else {
            throw AdminProblem(.badRequest, "\"\(key)\" is null; leave the key out instead.", field: key)
        }
        do {
            return try container.decode(Value.self, forKey: codingKey)
        } catch {
            throw AdminProblem(.badRequest, "\"\(key)\" must be \(expected).", field: key)
        }
    }
}

/// What a configuration change through the API did (`PUT /api/config`, adding or removing a
/// server).
struct ReloadView: Encodable {
    let changed: Bool
    let summary: String
    let listenersAdded: [String]
    let listenersRemoved: [String]
    let backendsAdded: [String]
    let backendsRemoved: [String]
    let serversAdded: [String]
    let serversRemoved: [String]
    let serversChanged: [String]
    /// The file the configuration was written to (`config_writeback`).
    let writtenTo: String?
    /// Set when writing back failed; the change is applied all the same.
    let writebackError: String?

    init(_ outcome: ReloadOutcome) {
        let summary = outcome.summary
        changed = summary.changed
        self.summary = summary.description
        listenersAdded = summary.listenersAdded
        listenersRemoved = summary.listenersRemoved
        backendsAdded = summary.backendsAdded
        backendsRemoved = summary.backendsRemoved
        serversAdded = summary.serversAdded
        serversRemoved = summary.serversRemoved
        serversChanged = summary.serversChanged
        writtenTo = outcome.writtenTo
        writebackError = outcome.writebackError
    }
}

/// A server added through the API: its live view and the reload that added it.
struct ServerChangeView: Encodable {
    let server: ServerView?
    let reload: ReloadView
}
