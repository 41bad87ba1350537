/// A pool of servers and how to balance across them (`backends[]`).
package struct BackendConfig: Sendable, Equatable {
    package var name: String
    /// Whether its servers take HTTP requests or TCP connections (`mode: tcp`, for `mode: tcp`
    /// frontends; health checks then only connect).
    package var mode: ProxyMode = .http
    package var algorithm: AlgorithmName
    /// How many other servers to try when a connection cannot be made (default 2).
    package var retries: Int
    package var timeouts: BackendTimeouts
    package var servers: [ServerConfig]
    /// The decision engine's thresholds when `algorithm` is `.adaptive`.
    package var adaptive: AdaptiveOptions
    /// Active health checks of the servers; nil: none (servers are always considered up).
    package var healthCheck: HealthCheckConfig?
    /// Passive outlier detection (ejection on failures in live traffic); nil: off.
    package var outlier: OutlierConfig?
    /// How much retries may add to the servers' load.
    package var retryBudget = RetryBudgetConfig()
    /// How requests to its `h2` and `h2c` servers share connections; nil: the defaults.
    package var http2: HTTP2UpstreamLimits?
    /// What `algorithm: hash` hashes (`hash_key`, default the client's address).
    package var hashKey: HashKey = .source
    /// How far above the average in-flight load a server may go before `hash` passes its keys
    /// on (`hash_balance_factor`, default 1.25; 0: no bound).
    package var hashBalanceFactor = 1.25
    /// Cookie-based session persistence; nil: none.
    package var sticky: StickyConfig?
    /// `slow_start`: how long a server that comes back ramps from 10 % of its weight to all
    /// of it (each server's own `slow_start` overrides it); nil: none.
    package var slowStart: Duration?
    /// Where requests wait when every server is at its limit; nil: the default queue, if any
    /// server has a limit (`effectiveQueue`).
    package var queue: QueueConfig?
    /// Servers built from a service's SRV records, besides `servers` (`servers_from`); nil: none.
    package var serversFrom: ServersFromConfig?
    /// How often the names its servers are given by are asked again (`resolve_every`,
    /// default 30s).
    package var resolveEvery: Duration = .seconds(30)

    /// The queue requests wait in: the configured one, or the default one when a server has a
    /// limit; nil when no server has one (no request ever waits).
    package var effectiveQueue: QueueConfig? {
        guard servers.contains(where: { $0.inFlightLimit != nil }) || serversFrom?.template.inFlightLimit != nil else { return nil }
        return queue ?? QueueConfig()
    }

    package init(
        name: String,
        algorithm: AlgorithmName = .roundRobin,
        retries: Int = 2,
        timeouts: BackendTimeouts = BackendTimeouts(),
        servers: [ServerConfig],
        adaptive: AdaptiveOptions = AdaptiveOptions()
    ) {
        self.adaptive = adaptive
        self.name = name
        self.algorithm = algorithm
        self.retries = retries
        self.timeouts = timeouts
        self.servers = servers
    }
}

/// The balancing algorithms, by their YAML names.
package enum AlgorithmName: String, Sendable, Equatable, CaseIterable {
    case roundRobin = "round_robin"
    case weightedRoundRobin = "weighted_round_robin"
    case leastConnections = "least_connections"
    case random = "random"
    case powerOfTwo = "power_of_two"
    case leastResponseTime = "least_response_time"
    case peakEWMA = "peak_ewma"
    /// Consistent hashing of a request key (`hash_key`), with bounded loads.
    case hash = "hash"
    /// Not an algorithm of its own: the decision engine picks one of the others at run time.
    case adaptive = "adaptive"

    /// Whether it can balance a `mode: tcp` backend, which has no responses to time.
    package var worksWithoutResponses: Bool {
        switch self {
        case .roundRobin, .weightedRoundRobin, .leastConnections, .random, .powerOfTwo, .hash: true
        case .leastResponseTime, .peakEWMA, .adaptive: false
        }
    }
}

/// What `algorithm: hash` hashes, per request (`hash_key`).
package enum HashKey: Sendable, Equatable {
    /// `src`: the client's address (for a `mode: tcp` backend, the only key there is).
    case source
    /// `uri`: the path and query.
    case uri
    /// `header:NAME`: the first value of the header (names are case-insensitive).
    case header(String)
    /// `cookie:NAME`: the cookie's value.
    case cookie(String)
    /// `query:NAME`: the query parameter's value.
    case query(String)

    /// Reads `src`, `uri`, `header:NAME`, `cookie:NAME` or `query:NAME`.
    package init?(_ text: String) {
        switch text {
        case "src": self = .source
        case "uri": self = .uri
        default:
            guard let colon = text.firstIndex(of: ":") else { return nil }
            let name = String(text[text.index(after: colon)...])
            guard !name.isEmpty, !name.contains(where: { $0 == " " || $0 == ":" }) else { return nil }
            switch text[..<colon] {
            case "header": self = .header(name.lowercased())
            case "cookie": self = .cookie(name)
            case "query": self = .query(name)
            default: return nil
            }
        }
    }

    /// As written in the file.
    package var text: String {
        switch self {
        case .source: "src"
        case .uri: "uri"
        case .header(let name): "header:\(name)"
        case .cookie(let name): "cookie:\(name)"
        case .query(let name): "query:\(name)"
        }
    }
}

/// Active health checks (`backends[].health_check`): each server is probed on its own
/// schedule; `fall` failures in a row take it out of rotation, `rise` successes bring it back.
package struct HealthCheckConfig: Sendable, Equatable {
    /// The path requested with `GET` (default `/health`).
    package var path: String = "/health"
    /// Time between the end of one probe and the start of the next (jittered by ±10 %).
    package var interval: Duration = .seconds(2)
    /// A probe without a complete status line within this time fails.
    package var timeout: Duration = .seconds(1)
    /// Successes in a row that bring a down server back.
    package var rise = 2
    /// Failures in a row that take an up server out.
    package var fall = 3
    /// The statuses that count as healthy (default 200–399).
    package var expect: ClosedRange<Int> = 200...399
    /// The probe is gRPC's `grpc.health.v1.Health/Check` instead of a `GET` (servers with
    /// `protocol: h2` or `h2c`); `path` and `expect` do not apply.
    package var grpc = false
    /// `mode: tcp`: what a probe writes once connected (HAProxy's `tcp-check send`), if
    /// anything.
    package var send: String?
    /// `mode: tcp`: what the server's bytes must contain for the probe to pass (HAProxy's
    /// `tcp-check expect string`); without it, a probe passes once connected and `send` is
    /// written.
    package var receive: String?

    package init() {}
}

/// How requests to a backend's HTTP/2 servers (`protocol: h2` or `h2c`) are multiplexed
/// (`backends[].http2`): each event loop keeps up to `maxConnections` connections to each
/// server, and opens another only when every one carries `maxConcurrentStreams` requests (or
/// the fewer the server allows). Beyond that, requests wait for a stream to end.
package struct HTTP2UpstreamLimits: Sendable, Equatable {
    /// Requests at once on one connection (the server's SETTINGS may allow fewer).
    package var maxConcurrentStreams = 100
    /// Connections per server and event loop.
    package var maxConnections = 4

    package init() {}
}

/// Passive outlier detection (`backends[].outlier`): a server whose live exchanges fail
/// `consecutive_failures` times in a row is taken out for `base_ejection`, twice as long
/// each time it happens again soon after, up to `max_ejection`.
package struct OutlierConfig: Sendable, Equatable {
    /// Connect errors, timeouts and 5xx responses in a row that eject a server.
    package var consecutiveFailures = 5
    /// The first ejection's length.
    package var baseEjection: Duration = .seconds(10)
    /// The longest ejection.
    package var maxEjection: Duration = .seconds(300)
    /// At most this share of a backend's servers is ejected at once (at least one, and never
    /// the last server in rotation).
    package var maxEjectedPercent = 50

    package init() {}
}

/// The retry budget (`backends[].retry_budget`): retries of requests a server already
/// received may add at most `ratio` to the backend's requests, plus `min_per_second` per
/// event loop so a quiet backend can retry too.
package struct RetryBudgetConfig: Sendable, Equatable {
    /// Retries per request (default 0.2: at most 20 % more load).
    package var ratio = 0.2
    /// Retries always allowed per second and event loop (default 10, as Finagle).
    package var minPerSecond = 10

    package init() {}
}

/// Thresholds of `algorithm: adaptive` (`backends[].adaptive`); docs/config.md explains
/// each rule they belong to.
package struct AdaptiveOptions: Sendable, Equatable {
    /// How often the engine evaluates, over a window of this length.
    package var evaluateEvery: Duration = .seconds(5)
    /// The shortest time between two switches.
    package var minSwitchInterval: Duration = .seconds(60)
    /// Fewer requests than this in a window: keep the algorithm.
    package var minimumRequests = 50
    /// A server's error rate from which failures are steered around (with `peak_ewma`).
    package var errorRate = 0.1
    /// Slowest ÷ fastest p95 from which to balance by latency (`peak_ewma`).
    package var latencySpread = 3.0
    /// Busiest ÷ idlest in-flight (per weight, + 1) from which to use `least_connections`.
    package var inFlightImbalance = 2.0
    /// For the algorithm in use, its rule's threshold is multiplied by this, so leaving it
    /// takes a clear change (not configurable: documented as 0.75).
    package var hysteresis = 0.75

    package init() {}
}

/// Server-side timeouts of a backend (`backends[].timeouts`).
package struct BackendTimeouts: Sendable, Equatable {
    /// Establishing a TCP connection to a server (default 2s); past it the next server is tried.
    package var connect: Duration
    /// Waiting for the server: the response head after the request was sent, and any gap
    /// between response bytes (default 30s); past it the client gets 504.
    package var response: Duration
    /// A pooled keep-alive connection unused for this long is closed (`idle`, default 30s).
    package var idle: Duration
    /// A WebSocket tunnel with no byte either way for this long is closed (`tunnel`, default 1h).
    package var tunnel: Duration = .seconds(3600)

    package init(connect: Duration = .seconds(2), response: Duration = .seconds(30), idle: Duration = .seconds(30)) {
        self.connect = connect
        self.response = response
        self.idle = idle
    }
}
