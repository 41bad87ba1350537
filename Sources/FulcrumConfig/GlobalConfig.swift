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
    /// Client connections open at once over every frontend (`max_connections`, HAProxy's
    /// global `maxconn`). Above it, new connections wait in the kernel's backlog.
    package var maxConnections: ConnectionCap = .auto
    /// Where limits shared by several instances are counted (`store`); nil: nowhere.
    package var store: StoreConfig?
    /// How server names are resolved (`dns`); nil: the defaults (`DNSConfig()`).
    package var dns: DNSConfig?

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

/// `global.max_connections`: a number, or `auto`, derived at start from the descriptor limit
/// as HAProxy derives its `maxconn` (see `ConnectionCap.automatic(descriptorLimit:)`).
package enum ConnectionCap: Sendable, Equatable {
    case auto
    case fixed(Int)

    /// The cap `auto` stands for under a descriptor limit: half of what is left after a
    /// reserve for listeners, the admin API, logs and health checks, because a proxied
    /// connection holds two descriptors (the client's and a server's).
    package static func automatic(descriptorLimit: Int) -> Int {
        let reserve = min(max(descriptorLimit / 4, 8), 100)
        return max(1, (descriptorLimit - reserve) / 2)
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
