import FulcrumACME
import FulcrumBalancing
import FulcrumConfig
import NIOCore

/// The immutable, compiled form of a `Config` that the data plane works from.
///
/// The control plane builds a snapshot (resolving addresses, compiling ACLs, reading error
/// files) and publishes it to every event loop; each loop picks it up at a request boundary,
/// and a request in flight finishes on the snapshot it started with. Everything the hot path
/// needs is reachable by index — no lookups by name per request.
package final class RuntimeSnapshot: Sendable {
    /// What the data plane serves: `declared` with the servers DNS gave in place of names
    /// (`Config.expandingServers`).
    package let config: Config
    /// The configuration as written (what the admin API shows and writes back).
    package let declared: Config
    let frontends: [RuntimeFrontend]
    let backends: [RuntimeBackend]
    /// Frontends that reloads renamed while a listen address stayed (so its socket, and the
    /// connections accepted under the old name, stayed too): old name → current name.
    let renamedFrontends: [String: String]

    /// Compiles `config`. Resolves server host names left in it (blocking: call off the event
    /// loops; `ServerDiscovery` has replaced them with addresses before).
    ///
    /// - Parameters:
    ///   - declared: the configuration as written, when `config` was expanded from it.
    ///   - previous: servers of `previous` with the same backend, name and address are reused,
    ///     so their live counters (and per-loop pools) carry over a reload.
    ///   - challenges: the ACME HTTP-01 answers the plain HTTP frontends serve, when a TLS
    ///     frontend obtains its certificates by ACME's HTTP-01.
    package init(config: Config, declared: Config? = nil, previous: RuntimeSnapshot? = nil, challenges: HTTP01Challenges? = nil) throws {
        self.config = config
        self.declared = declared ?? config
        var backends: [RuntimeBackend] = []
        var backendIndex: [String: Int] = [:]
        for backendConfig in config.backends {
            let earlier = previous?.backends.first { $0.name == backendConfig.name }
            backendIndex[backendConfig.name] = backends.count
            backends.append(try RuntimeBackend(config: backendConfig, previous: earlier))
        }
        self.backends = backends
        let usesHTTP01 = config.frontends.contains { $0.tls?.acme?.challenge == .http01 }
        self.frontends = try config.frontends.map { frontend in
            let earlier = previous?.frontends.first { $0.name == frontend.name }
            // A CA fetches HTTP-01 answers over plain HTTP, on port 80: every frontend without TLS.
            let answers = usesHTTP01 && frontend.tls == nil && frontend.mode == .http ? challenges : nil
            return try RuntimeFrontend(config: frontend, backendIndex: backendIndex, previous: earlier, challenges: answers)
        }
        self.renamedFrontends = previous.map { Self.renames(from: $0, to: config) } ?? [:]
    }

    /// Old frontend names whose connections a current frontend now serves: one that is gone
    /// but shared a listen address with a current one — and, through it, names from earlier
    /// reloads (a connection can stay idle across several).
    private static func renames(from previous: RuntimeSnapshot, to config: Config) -> [String: String] {
        let current = Set(config.frontends.map(\.name))
        var renames: [String: String] = [:]
        for old in previous.config.frontends where !current.contains(old.name) {
            let successor = config.frontends.first { frontend in frontend.listen.contains { old.listen.contains($0) } }
            if let successor { renames[old.name] = successor.name }
        }
        for (older, later) in previous.renamedFrontends where !current.contains(older) {
            if current.contains(later) {
                renames[older] = later
            } else if let latest = renames[later] {
                renames[older] = latest
            }
        }
        return renames
    }
}

/// A backend as the data plane sees it: servers with resolved addresses and shared counters.
final class RuntimeBackend: Sendable {
    let name: String
    let mode: ProxyMode
    let algorithm: AlgorithmName
    /// What `algorithm: hash` hashes, and how far above average a server's load may go.
    let hashKey: HashKey
    let hashBalanceFactor: Double
    /// Cookie-based session persistence (`sticky`); nil: none.
    let sticky: StickyCookie?
    /// Where requests wait when every server is at its limit; nil when no server has one
    /// (or in `mode: tcp`, where a connection does not wait).
    let queue: BackendQueue?
    /// Its `max` and `timeout` (the defaults without a queue).
    let queueSettings: QueueConfig
    let retries: Int
    let connectTimeout: TimeAmount
    let responseTimeout: TimeAmount
    let idleTimeout: TimeAmount
    let tunnelTimeout: TimeAmount
    let servers: [BalancedServer]
    let addresses: [SocketAddress]
    /// `host:port` as configured, for logs.
    let addressDescriptions: [String]
    /// TLS to each server (nil: plain HTTP), same indices as `servers`.
    let tls: [BackendTLS?]
    /// The PROXY protocol header each server's connections begin with (nil: none).
    let sendProxy: [ProxyProtocolVersion?]
    /// What each server speaks: HTTP/1.1, or HTTP/2 (`h2`, `h2c`).
    let protocols: [UpstreamProtocol]
    /// How requests share HTTP/2 connections.
    let http2Limits: HTTP2UpstreamLimits
    /// Each server's `max_connections` (nil: none), same indices as `servers`.
    let maxConnections: [Int?]
    /// Passive outlier detection, when configured.
    let outlierDetector: OutlierDetector?
    /// Whether active health checks run (ejected servers then return on a passing check).
    let hasHealthCheck: Bool
    let retryBudget: RetryBudgetConfig

    init(config: BackendConfig, previous: RuntimeBackend?) throws {
        self.name = config.name
        self.mode = config.mode
        self.algorithm = config.algorithm
        self.hashKey = config.hashKey
        self.hashBalanceFactor = config.hashBalanceFactor
        self.sticky = config.sticky.map { StickyCookie($0, backend: config.name, servers: config.servers.map(\.name)) }
        self.retries = config.retries
        self.connectTimeout = TimeAmount(config.timeouts.connect)
        self.responseTimeout = TimeAmount(config.timeouts.response)
        self.idleTimeout = TimeAmount(config.timeouts.idle)
        self.tunnelTimeout = TimeAmount(config.timeouts.tunnel)
        var servers: [BalancedServer] = []
        var addresses: [SocketAddress] = []
        for server in config.servers {
            let address: SocketAddress
            do {
                address = try SocketAddress.makeAddressResolvingHost(server.address.host, port: server.address.port)
            } catch {
                throw StartupError.unresolvableServer(
                    backend: config.name,
                    server: server.name,
                    address: server.address.description,
                    reason: describeNetworkError(error)
                )
            }
            let slowStart = (server.slowStart ?? config.slowStart).flatMap { $0 > .zero ? $0 : nil }
            if let previous,
                let index = previous.servers.firstIndex(where: { $0.name == server.name }),
                previous.addressDescriptions[index] == server.address.description
            {
                let kept = previous.servers[index]
                kept.setWeight(server.weight)
                kept.setSlowStart(slowStart)
                kept.setLimit(server.inFlightLimit)
                servers.append(kept)
            } else {
                let added = BalancedServer(name: server.name, weight: server.weight)
                added.setSlowStart(slowStart)
                added.setLimit(server.inFlightLimit)
                // Added by a reload: cold. (At start every server is new, and none is cold
                // compared with the others.)
                if previous != nil { added.beginSlowStart() }
                servers.append(added)
            }
            addresses.append(address)
        }
        self.servers = servers
        self.addresses = addresses
        // A reload keeps the queue, and its waiters, whatever its settings become.
        let queueSettings = config.mode == .tcp ? nil : config.effectiveQueue
        self.queue = queueSettings.map { _ in previous?.queue ?? BackendQueue() }
        self.queueSettings = queueSettings ?? QueueConfig()
        self.addressDescriptions = config.servers.map(\.address.description)
        self.tls = try config.servers.map { server in
            try server.tls.map {
                try BackendTLS(
                    $0,
                    host: server.address.host,
                    http2: server.upstreamProtocol == .h2,
                    backend: config.name,
                    server: server.name
                )
            }
        }
        self.sendProxy = config.servers.map(\.sendProxy)
        self.protocols = config.servers.map(\.upstreamProtocol)
        self.http2Limits = config.http2 ?? HTTP2UpstreamLimits()
        self.maxConnections = config.servers.map(\.maxConnections)
        self.hasHealthCheck = config.healthCheck != nil
        self.retryBudget = config.retryBudget
        self.outlierDetector = config.outlier.map { outlier in
            OutlierDetector(
                settings: OutlierDetector.Settings(
                    consecutiveFailures: outlier.consecutiveFailures,
                    baseEjection: TimeAmount(outlier.baseEjection).nanoseconds,
                    maximumEjection: TimeAmount(outlier.maxEjection).nanoseconds,
                    maxEjectedPercent: outlier.maxEjectedPercent
                ),
                servers: servers
            )
        }
    }

    /// How requests to the HTTP/2 server at `index` share connections: the backend's limits,
    /// with the server's `max_connections` capping the connections each loop opens.
    func http2Limits(server index: Int) -> HTTP2UpstreamLimits {
        var limits = http2Limits
        if let cap = maxConnections[index] { limits.maxConnections = min(limits.maxConnections, cap) }
        return limits
    }

    /// The index of the server named `name`.
    func serverIndex(named name: String) -> Int? {
        servers.firstIndex { $0.name == name }
    }
}

/// A frontend as the data plane sees it per request: its router, body limit and error pages.
/// (Its timeouts and header limit are set on each connection's handlers when it is accepted.)
final class RuntimeFrontend: Sendable {
    let name: String
    let router: Router
    let maxBodyBytes: Int?
    let errorPages: ErrorPages
    /// `redirect_to_https`: the HTTPS port every request is sent to with a 308.
    let redirectToHTTPSPort: Int?
    /// Rate limits and the anti-bot shield; nil when there are neither.
    let shield: FrontendShield?
    /// Trusted proxies and the forwarding headers to write; nil for the defaults.
    let forwarding: ForwardingPolicy?
    /// The ACME HTTP-01 answers it serves before anything else; nil: none.
    let challenges: HTTP01Challenges?

    /// - Parameter previous: the frontend of the same name before a reload: its unchanged
    ///   rate limits keep their counts.
    init(config: FrontendConfig, backendIndex: [String: Int], previous: RuntimeFrontend? = nil, challenges: HTTP01Challenges? = nil) throws {
        self.name = config.name
        self.challenges = challenges
        let router = try Router(config: config, backendIndex: backendIndex)
        self.router = router
        self.maxBodyBytes = config.limits.maxBodyBytes
        self.errorPages = try ErrorPages(customFiles: config.errorFiles)
        self.redirectToHTTPSPort = config.redirectToHTTPSPort
        self.shield = try FrontendShield.compile(config, router: router, previous: previous?.shield)
        self.forwarding = ForwardingPolicy(config.forwarding)
    }
}

extension TimeAmount {
    /// Converts a Swift `Duration` (as the config carries them) to NIO's `TimeAmount`.
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
