/// A complete, validated Fulcrum configuration.
///
/// A `Config` is an immutable value: it is produced by `ConfigLoader` from YAML (every
/// problem reported at once, with its path and line) and then handed to the data plane,
/// which compiles it into a runtime snapshot. Nothing in here does I/O.
package struct Config: Sendable, Equatable {
    package var global: GlobalConfig
    package var frontends: [FrontendConfig]
    package var backends: [BackendConfig]

    package init(global: GlobalConfig = GlobalConfig(), frontends: [FrontendConfig], backends: [BackendConfig]) {
        self.global = global
        self.frontends = frontends
        self.backends = backends
    }

    /// The backend with this name, if any.
    package func backend(named name: String) -> BackendConfig? {
        backends.first { $0.name == name }
    }
}

/// Process-wide settings (`global:`).
package struct GlobalConfig: Sendable, Equatable {
    /// Event-loop threads (`workers: auto | N`).
    package var workers: WorkerCount
    package var log: LogConfig
    /// How long `fulcrum run` lets in-flight requests finish after SIGINT/SIGTERM
    /// (`grace_period`, default 10s).
    package var gracePeriod: Duration
    /// The admin REST API (`admin`); nil: none.
    package var admin: AdminConfig?

    package init(workers: WorkerCount = .auto, log: LogConfig = LogConfig(), gracePeriod: Duration = .seconds(10)) {
        self.workers = workers
        self.log = log
        self.gracePeriod = gracePeriod
    }
}

/// The admin REST API's listener (`global.admin`).
package struct AdminConfig: Sendable, Equatable {
    package var listen: ListenAddress
    /// The environment variable that holds the Bearer token (`token_env`). Without one, the API
    /// only reads (and only on a loopback address).
    package var tokenEnvironmentVariable: String?
    /// Write configuration changes made through the API back to the file (`config_writeback`,
    /// default false), so a restart keeps them.
    package var configWriteback = false

    package init(listen: ListenAddress, tokenEnvironmentVariable: String? = nil, configWriteback: Bool = false) {
        self.listen = listen
        self.tokenEnvironmentVariable = tokenEnvironmentVariable
        self.configWriteback = configWriteback
    }

    /// Whether `listen` is a loopback address (127.0.0.0/8, ::1, localhost).
    package var isLoopback: Bool {
        let host = listen.host.lowercased()
        return host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

/// The number of event-loop threads.
package enum WorkerCount: Sendable, Equatable {
    /// One per core.
    case auto
    case fixed(Int)
}

/// Logging settings (`global.log`).
package struct LogConfig: Sendable, Equatable {
    package var level: LogLevel
    package var access: AccessLogFormat

    package init(level: LogLevel = .info, access: AccessLogFormat = .off) {
        self.level = level
        self.access = access
    }
}

/// Log levels, named as swift-log names them.
package enum LogLevel: String, Sendable, Equatable, CaseIterable {
    case trace, debug, info, notice, warning, error, critical
}

/// Access-log formats (`global.log.access`).
package enum AccessLogFormat: String, Sendable, Equatable, CaseIterable {
    case off
    /// Apache/nginx "combined" format, plus backend, server and duration.
    case combined
    /// One JSON object per line.
    case json
}

/// A listener and its routing (`frontends[]`).
package struct FrontendConfig: Sendable, Equatable {
    package var name: String
    package var listen: [ListenAddress]
    package var timeouts: FrontendTimeouts
    package var limits: FrontendLimits
    /// Named conditions, in file order.
    package var acls: [ACL]
    /// Evaluated in order; the first rule whose condition holds decides.
    package var rules: [Rule]
    /// Used when no rule decides. `nil` only when there is at least one rule.
    package var defaultBackend: String?
    /// Custom error pages: status code → file path (`error_files: { 503: ./503.html }`).
    package var errorFiles: [Int: String]
    /// TLS on every address of the frontend; nil: plain HTTP.
    package var tls: FrontendTLSConfig?
    /// Answer every request with `308` to `https://host:PORT/path` (`redirect_to_https`).
    package var redirectToHTTPSPort: Int?
    /// A plain listener also accepts HTTP/2 with prior knowledge (`h2c`, default false).
    /// (TLS listeners offer HTTP/2 by ALPN, `tls.alpn`.)
    package var h2c = false
    /// Per-client request limits (`rate_limits`), checked in order before the rules.
    package var rateLimits: [RateLimitConfig] = []
    /// The anti-bot shield (`antibot`), checked after the rate limits, before the rules.
    package var antibot: AntibotConfig?

    package init(
        name: String,
        listen: [ListenAddress],
        timeouts: FrontendTimeouts = FrontendTimeouts(),
        limits: FrontendLimits = FrontendLimits(),
        acls: [ACL] = [],
        rules: [Rule] = [],
        defaultBackend: String?,
        errorFiles: [Int: String] = [:]
    ) {
        self.name = name
        self.listen = listen
        self.timeouts = timeouts
        self.limits = limits
        self.acls = acls
        self.rules = rules
        self.defaultBackend = defaultBackend
        self.errorFiles = errorFiles
    }
}

/// TLS on a frontend (`frontends[].tls`): certificates from a watched directory, chosen per
/// connection by SNI.
package struct FrontendTLSConfig: Sendable, Equatable {
    /// A directory of certificates: every `*.pem` (chain and key in one file) or
    /// `NAME.crt` + `NAME.key` pair. Absolute after loading.
    package var certificatesDirectory: String
    /// The host name whose certificate is served when SNI is missing or matches nothing; nil:
    /// the first certificate by file name.
    package var defaultCertificate: String?
    package var minimumVersion: TLSVersionName = .v1_2
    /// Protocols offered by ALPN, in preference order (HTTP/2 first, as browsers expect).
    package var alpn: [String] = ["h2", "http/1.1"]

    package init(certificatesDirectory: String) {
        self.certificatesDirectory = certificatesDirectory
    }
}

/// The lowest TLS version a frontend accepts (`min_version`).
package enum TLSVersionName: String, Sendable, Equatable, CaseIterable {
    case v1_2 = "1.2"
    case v1_3 = "1.3"
}

/// `host:port` a frontend listens on. `host` is an IP literal or a name (IPv6 without brackets).
package struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    package var host: String
    package var port: Int

    package init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    package var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Client-side timeouts of a frontend (`frontends[].timeouts`).
package struct FrontendTimeouts: Sendable, Equatable {
    /// A keep-alive connection with no request in progress is closed after this long.
    package var clientIdle: Duration
    /// Once the first byte of a request arrives, its whole head must arrive within this (else 408).
    package var headerRead: Duration

    package init(clientIdle: Duration = .seconds(60), headerRead: Duration = .seconds(10)) {
        self.clientIdle = clientIdle
        self.headerRead = headerRead
    }
}

/// Request limits of a frontend (`frontends[].limits`).
package struct FrontendLimits: Sendable, Equatable {
    /// Largest request head (request line + headers) in bytes, else 431 (`max_header_size`, default 64 KB).
    package var maxHeaderBytes: Int
    /// Largest request body in bytes, else 413 (`max_body_size`; `nil`, the default, means unlimited).
    package var maxBodyBytes: Int?
    /// Streams an HTTP/2 client may have open at once on one connection
    /// (`max_concurrent_streams`, default 100; announced in SETTINGS).
    package var maxConcurrentStreams = 100

    package init(maxHeaderBytes: Int = 64 * 1024, maxBodyBytes: Int? = nil) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
    }
}

/// A named condition on a request (`frontends[].acls.NAME`).
///
/// An ACL matches when *every* criterion it lists matches; a criterion that lists several
/// values matches when *any* of them does (HAProxy: several values of one ACL are OR-ed).
package struct ACL: Sendable, Equatable {
    package var name: String
    package var criteria: [ACLCriterion]

    package init(name: String, criteria: [ACLCriterion]) {
        self.name = name
        self.criteria = criteria
    }
}

/// One test an ACL applies to a request.
package enum ACLCriterion: Sendable, Equatable {
    /// `path_prefix: /api/` or a list: the path (without query) starts with one of them.
    case pathPrefix([String])
    /// `path: /login` or a list: the path (without query) equals one of them.
    case path([String])
    /// `path_regex: '\.(css|js)$'`: the path (without query) matches the regular expression.
    /// The pattern was compiled once during validation, so it is known to be valid.
    case pathRegex(String)
    /// `host: blog.example.com` or a list: the Host header (port removed, case-insensitive) is one of them.
    /// A leading `*.` matches any subdomain (`*.example.com`).
    case host([String])
    /// `method: [POST, PUT]` (upper-cased during loading).
    case method([String])
    /// `header: { name: X-Beta, equals: "1" }` (or `prefix:`, `contains:`, `exists: true`).
    case header(name: String, match: HeaderMatch)
    /// `src: ["10.0.0.0/8", "::1/128"]`: the client address is in one of the blocks.
    case source([CIDRBlock])
}

/// How a header criterion compares the header's value (first value when repeated).
package enum HeaderMatch: Sendable, Equatable {
    case equals(String)
    case prefix(String)
    case contains(String)
    /// Matches when the header is present (`exists: true`) or absent (`exists: false`).
    case exists(Bool)
}

/// An IPv4 or IPv6 network, `10.0.0.0/8` or `2001:db8::/32`. A bare address means /32 or /128.
package struct CIDRBlock: Sendable, Equatable, CustomStringConvertible {
    /// Network address bytes: 4 for IPv4, 16 for IPv6. Host bits are zero.
    package var network: [UInt8]
    package var prefixLength: Int

    package init(network: [UInt8], prefixLength: Int) {
        self.network = network
        self.prefixLength = prefixLength
    }

    /// Whether `address` (4 or 16 bytes) lies in this block. An IPv4-mapped IPv6
    /// address (`::ffff:a.b.c.d`) matches IPv4 blocks.
    package func contains(_ address: [UInt8]) -> Bool {
        var bytes = address
        if bytes.count == 16, network.count == 4,
           bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
            bytes = Array(bytes[12..<16])
        }
        guard bytes.count == network.count else { return false }
        var remaining = prefixLength
        for index in 0..<bytes.count where remaining > 0 {
            let bits = min(8, remaining)
            let mask: UInt8 = bits == 8 ? 0xff : ~(0xff >> UInt8(bits))
            if bytes[index] & mask != network[index] { return false }
            remaining -= bits
        }
        return true
    }

    package var description: String {
        if network.count == 4 {
            return network.map(String.init).joined(separator: ".") + "/\(prefixLength)"
        }
        var groups: [String] = []
        for index in stride(from: 0, to: 16, by: 2) {
            groups.append(String(UInt16(network[index]) << 8 | UInt16(network[index + 1]), radix: 16))
        }
        return groups.joined(separator: ":") + "/\(prefixLength)"
    }
}

/// One routing rule (`frontends[].rules[]`): an action guarded by ACL names.
package struct Rule: Sendable, Equatable {
    package var action: RuleAction
    /// Every ACL named here must match (empty = no requirement).
    package var ifACLs: [String]
    /// No ACL named here may match (empty = no requirement).
    package var unlessACLs: [String]

    package init(action: RuleAction, ifACLs: [String] = [], unlessACLs: [String] = []) {
        self.action = action
        self.ifACLs = ifACLs
        self.unlessACLs = unlessACLs
    }
}

/// What a rule does when its condition holds.
///
/// `use_backend`, `deny`, `redirect` and `tarpit` decide the request: the first rule whose
/// condition holds and that has one of them wins. `set_header` and `del_header` change the
/// request's headers (as the server receives them) and rule evaluation goes on.
package enum RuleAction: Sendable, Equatable {
    /// `use_backend: NAME`: forward to that backend.
    case useBackend(String)
    /// `deny: 403`: answer with this status (an error page) without contacting a backend.
    case deny(status: Int)
    /// `redirect: { to: "https://example.com{path}", code: 301 }`: answer with a redirect to
    /// `to`, in which `{host}`, `{path}`, `{query}` (with its `?`, or empty) and `{uri}`
    /// (path and query) are replaced with the request's.
    case redirect(to: String, code: Int)
    /// `tarpit: 10s`: hold the request this long, then answer 403 and close the connection
    /// (HAProxy's `http-request tarpit`): a client that floods is slowed down at the cost of
    /// one idle connection, not of a backend request.
    case tarpit(Duration)
    /// `set_header: { name: X-Env, value: prod }`: replace (or add) a request header.
    case setHeader(name: String, value: String)
    /// `del_header: X-Internal`: remove a request header.
    case deleteHeader(String)

    /// Whether the action decides the request (the rest do their part and go on).
    package var isFinal: Bool {
        switch self {
        case .useBackend, .deny, .redirect, .tarpit: true
        case .setHeader, .deleteHeader: false
        }
    }
}

/// A pool of servers and how to balance across them (`backends[]`).
package struct BackendConfig: Sendable, Equatable {
    package var name: String
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
    /// Not an algorithm of its own: the decision engine picks one of the others at run time.
    case adaptive = "adaptive"
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

/// One server of a backend (`backends[].servers[]`).
package struct ServerConfig: Sendable, Equatable {
    package var name: String
    package var address: ServerAddress
    /// Relative share of requests, 0…256 (default 1). Used by every weight-aware algorithm.
    /// 0 makes the server a backup: it is chosen only when no server with a positive weight can be.
    package var weight: Int
    /// TLS to the server (`tls`); nil: plain HTTP.
    package var tls: ServerTLSConfig?

    package init(name: String, address: ServerAddress, weight: Int = 1) {
        self.name = name
        self.address = address
        self.weight = weight
    }
}

/// TLS to one server (`servers[].tls`).
package struct ServerTLSConfig: Sendable, Equatable {
    /// Verify the server's certificate chain and name (default true; `false` only explicitly).
    package var verify = true
    /// PEM file of the CAs to trust instead of the system's (absolute after loading).
    package var caFile: String?
    /// The name sent by SNI and checked against the certificate; default: the address's host
    /// when it is a name.
    package var serverName: String?
    /// PEM file with a client certificate chain and its key, for mutual TLS.
    package var clientCertificateFile: String?

    package init() {}
}

/// `host:port` of a server. `host` is an IP literal or a name resolved when the config is
/// applied (IPv6 without brackets here).
package struct ServerAddress: Sendable, Equatable, CustomStringConvertible {
    package var host: String
    package var port: Int

    package init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    package var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
