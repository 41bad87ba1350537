/// Writes a `Config` back in the configuration file's own format: as YAML, to save a
/// configuration changed through the admin API, and as JSON, for `GET /api/config`.
///
/// The output is made for `ConfigLoader` to read back: for any `Config` that `ConfigLoader`
/// produced, loading either rendering gives an equal `Config`, and rendering that again gives
/// the same text. (One exception, which no rendering can avoid: a string that starts with
/// U+FEFF loses it, because Yams decodes every scalar with Foundation, which takes a leading
/// U+FEFF for a byte order mark.)
///
/// What is written:
///
/// - Every setting, defaults included, so that the document shows what is in effect without
///   the reader having to know the defaults. Only settings that are absent from the `Config`
///   (`nil`: no `admin`, no `health_check`, no `tls`, no body limit...) are left out, because
///   absence is the only way the file says "none". `adaptive` is written only for
///   `algorithm: adaptive`, the only place the parser takes it.
/// - Keys in the order the parser's schema lists them; ACLs, their criteria, rules and every
///   list in the order the `Config` has them (the file's order, which decides routing);
///   `error_files` by status.
/// - Durations, sizes and CIDR blocks in the file's syntax (`1m`, `1500ms`, `64KB`,
///   `2001:db8::/32`), in the largest unit that states them exactly.
/// - Paths as the `Config` holds them: absolute when it was loaded from a file, since the
///   loader resolves them against the file's directory.
///
/// Comments, anchors and the layout of the original file are not kept: a `Config` does not
/// have them.
///
/// A `Config` built by hand can hold values the file cannot express, and these do not come
/// back as they were: values the parser would reject (a negative duration, a weight above
/// 256, `adaptive` thresholds on another algorithm...), values it normalizes (an upper-case
/// host, a CIDR block with host bits set), durations finer than a nanosecond, and
/// `AdaptiveOptions.hysteresis`, which is not configurable.
package enum ConfigRenderer {
    /// The configuration as YAML, in the file format `ConfigParser` reads: block style, with
    /// small collections of plain values in flow style on one line (`{ connect: 2s, ... }`),
    /// as the documentation writes them. Strings are quoted when YAML would read them as
    /// something else (a number, a boolean, null) or they hold characters that YAML gives a
    /// meaning to.
    package static func yaml(_ config: Config) -> String {
        document(config).yamlText()
    }

    /// The same document as JSON (pretty-printed, two-space indentation, keys in the same
    /// order as the YAML), which `ConfigParser` also reads since JSON is YAML.
    package static func json(_ config: Config) -> String {
        document(config).jsonText()
    }

    // MARK: Document

    static func document(_ config: Config) -> ConfigDocument {
        .mapping([
            "global": global(config.global),
            "frontends": .list(config.frontends.map(frontend)),
            "backends": .list(config.backends.map(backend)),
        ])
    }

    private static func global(_ global: GlobalConfig) -> ConfigDocument {
        let workers: ConfigDocument =
            switch global.workers {
            case .auto: .string("auto")
            case .fixed(let count): .int(count)
            }
        let maxConnections: ConfigDocument =
            switch global.maxConnections {
            case .auto: .string("auto")
            case .fixed(let count): .int(count)
            }
        return .mapping([
            "workers": workers,
            "log": .mapping([
                "level": .string(global.log.level.rawValue),
                "access": .string(global.log.access.rawValue),
            ]),
            "grace_period": duration(global.gracePeriod),
            "max_connections": maxConnections,
            "admin": global.admin.map { admin in
                .mapping([
                    "listen": .string(admin.listen.description),
                    "token_env": admin.tokenEnvironmentVariable.map(ConfigDocument.string),
                    "config_writeback": .bool(admin.configWriteback),
                ])
            },
            "store": global.store.map { store in
                .mapping([
                    "redis": .string(store.redis.text),
                    "timeout": duration(store.timeout),
                    "on_error": .string(store.onError.rawValue),
                ])
            },
            "dns": global.dns.map { dns in
                .mapping([
                    "nameservers": .list(dns.nameservers.map { .string($0.port == 53 ? $0.host : $0.description) }),
                    "timeout": duration(dns.timeout),
                    "family": .string(dns.family.rawValue),
                ])
            },
        ])
    }

    // MARK: Frontends

    private static func frontend(_ frontend: FrontendConfig) -> ConfigDocument {
        // A TCP frontend has no HTTP settings to write, not even their defaults: the parser
        // refuses them there.
        let http = frontend.mode == .http
        let trusted = frontend.forwarding.trustedProxies
        return .mapping([
            "name": .string(frontend.name),
            // Written only for TCP: HTTP is the default, and most files never name a mode.
            "mode": frontend.mode == .tcp ? .string(frontend.mode.rawValue) : nil,
            "listen": .strings(frontend.listen.map(\.description)),
            "timeouts": .mapping([
                "client_idle": duration(frontend.timeouts.clientIdle),
                "header_read": duration(frontend.timeouts.headerRead),
                "park_after": duration(frontend.timeouts.parkAfter),
            ]),
            "limits": http
                ? .mapping([
                    "max_header_size": byteSize(frontend.limits.maxHeaderBytes),
                    "max_body_size": frontend.limits.maxBodyBytes.map(byteSize),
                    "max_concurrent_streams": .int(frontend.limits.maxConcurrentStreams),
                ]) : nil,
            "acls": .map(frontend.acls.map { (key: $0.name, value: criteria($0.criteria)) }),
            "rules": .list(frontend.rules.map(rule)),
            "default_backend": frontend.defaultBackend.map(ConfigDocument.string),
            "error_files": http ? errorFiles(frontend.errorFiles) : nil,
            "tls": frontend.tls.map(frontendTLS),
            "redirect_to_https": frontend.redirectToHTTPSPort.map(ConfigDocument.int),
            "h2c": http ? .bool(frontend.h2c) : nil,
            "max_connections": frontend.maxConnections.map(ConfigDocument.int),
            "rate_limits": frontend.rateLimits.isEmpty
                ? nil : .map(frontend.rateLimits.map { (key: $0.name, value: rateLimit($0)) }),
            "antibot": frontend.antibot.map(antibot),
            "accept_proxy": frontend.acceptProxyFrom.map { .mapping(["from": .strings($0.map(cidrBlock))]) },
            // The parser takes client_ip_header only with trusted_proxies.
            "trusted_proxies": trusted.isEmpty ? nil : .strings(trusted.map(cidrBlock)),
            "client_ip_header": trusted.isEmpty ? nil : .string(frontend.forwarding.clientIPHeader.rawValue),
            "forwarded": http ? .string(frontend.forwarding.headers.rawValue) : nil,
            "x_real_ip": http ? .bool(frontend.forwarding.xRealIP) : nil,
        ])
    }

    private static func rateLimit(_ limit: RateLimitConfig) -> ConfigDocument {
        let key =
            switch limit.key {
            case .source: "src"
            case .header(let name): "header:\(name)"
            case .cookie(let name): "cookie:\(name)"
            }
        return .mapping([
            "key": .string(key),
            "rate": .string("\(limit.requests)/\(formatDuration(limit.period))"),
            "burst": .int(limit.burst),
            "max_entries": .int(limit.maxEntries),
            "action": .string(limit.action.rawValue),
            "tarpit": duration(limit.tarpit),
            "shared": limit.shared ? .bool(true) : nil,
            "if": .strings(limit.ifACLs),
            "unless": .strings(limit.unlessACLs),
        ])
    }

    private static func antibot(_ antibot: AntibotConfig) -> ConfigDocument {
        .mapping([
            "mode": .string(antibot.mode.rawValue),
            "challenge": .mapping([
                "difficulty": .int(antibot.difficulty),
                "cookie_ttl": duration(antibot.cookieTTL),
                "secret_env": antibot.secretEnvironmentVariable.map(ConfigDocument.string),
            ]),
            "threshold": .int(antibot.threshold),
            "rate": .string("\(antibot.rate.requests)/\(formatDuration(antibot.rate.period))"),
            "shared": antibot.sharedRate ? .bool(true) : nil,
            "allow": antibotAllow(antibot),
            "deny_user_agents": .strings(antibot.denyUserAgents),
            "if": .strings(antibot.ifACLs),
            "unless": .strings(antibot.unlessACLs),
        ])
    }

    private static func antibotAllow(_ antibot: AntibotConfig) -> ConfigDocument? {
        guard !antibot.allowSources.isEmpty || antibot.allowSourceFile != nil || !antibot.verifiedBots.isEmpty else {
            return nil
        }
        return .mapping([
            "src": antibot.allowSources.isEmpty ? nil : .strings(antibot.allowSources.map(cidrBlock)),
            "src_file": antibot.allowSourceFile.map { .string($0.path) },
            "verified_bots": antibot.verifiedBots.isEmpty ? nil : .list(antibot.verifiedBots.map(verifiedBot)),
        ])
    }

    /// A built-in crawler by its name; any other in full.
    private static func verifiedBot(_ bot: VerifiedBot) -> ConfigDocument {
        if VerifiedBot.builtIn.contains(bot) { return .string(bot.name) }
        return .mapping([
            "name": .string(bot.name),
            "user_agent": .string(bot.userAgent),
            "domains": .strings(bot.domains),
        ])
    }

    /// `error_files`, by status: a dictionary has no order of its own, and this is the one a
    /// reader expects. (The statuses are keys, so strings, as JSON requires.)
    private static func errorFiles(_ files: [Int: String]) -> ConfigDocument {
        .map(files.sorted { $0.key < $1.key }.map { (key: String($0.key), value: ConfigDocument.string($0.value)) })
    }

    private static func frontendTLS(_ tls: FrontendTLSConfig) -> ConfigDocument {
        .mapping([
            "certificates": .string(tls.certificatesDirectory),
            "default_certificate": tls.defaultCertificate.map(ConfigDocument.string),
            "min_version": .string(tls.minimumVersion.rawValue),
            "alpn": .strings(tls.alpn),
            "profile": .string(tls.profile.rawValue),
            "ciphers": tls.ciphers.map(ConfigDocument.string),
            "hsts": tls.hsts.map { hsts in
                .mapping([
                    // Seconds, as the header says it.
                    "max_age": .int(hsts.maxAgeSeconds),
                    "include_subdomains": .bool(hsts.includeSubdomains),
                    "preload": .bool(hsts.preload),
                ])
            },
            "acme": tls.acme.map { acme in
                .mapping([
                    "directory": .string(acme.directory),
                    "email": acme.email.map(ConfigDocument.string),
                    "domains": .strings(acme.domains),
                    "challenge": .string(acme.challenge.rawValue),
                    "ca": acme.caFile.map(ConfigDocument.string),
                ])
            },
        ])
    }

    /// An ACL's criteria, one key each, in the ACL's order. (The parser keeps a criterion per
    /// key of the mapping, so an ACL has at most one of each kind.)
    private static func criteria(_ criteria: [ACLCriterion]) -> ConfigDocument {
        .map(
            criteria.map { criterion -> (key: String, value: ConfigDocument) in
                switch criterion {
                case .pathPrefix(let prefixes): (key: "path_prefix", value: .strings(prefixes))
                case .path(let paths): (key: "path", value: .strings(paths))
                case .pathRegex(let pattern): (key: "path_regex", value: .string(pattern))
                case .host(let hosts): (key: "host", value: .strings(hosts))
                case .method(let methods): (key: "method", value: .strings(methods))
                case .header(let name, let match): (key: "header", value: header(name: name, match: match))
                case .source(let blocks): (key: "src", value: .strings(blocks.map(cidrBlock)))
                case .serverName(let names): (key: "sni", value: .strings(names))
                case .applicationProtocol(let names): (key: "alpn", value: .strings(names))
                }
            }
        )
    }

    private static func header(name: String, match: HeaderMatch) -> ConfigDocument {
        let test: (key: String, value: ConfigDocument) =
            switch match {
            case .equals(let value): (key: "equals", value: .string(value))
            case .prefix(let value): (key: "prefix", value: .string(value))
            case .contains(let value): (key: "contains", value: .string(value))
            case .exists(let present): (key: "exists", value: .bool(present))
            }
        return .map([(key: "name", value: .string(name)), test])
    }

    private static func rule(_ rule: Rule) -> ConfigDocument {
        let action: (key: String, value: ConfigDocument) =
            switch rule.action {
            case .useBackend(let backend): (key: "use_backend", value: .string(backend))
            case .deny(let status): (key: "deny", value: .int(status))
            case .redirect(let to, let code):
                (key: "redirect", value: .map([(key: "to", value: .string(to)), (key: "code", value: .int(code))]))
            case .tarpit(let delay): (key: "tarpit", value: duration(delay))
            case .setHeader(let name, let value):
                (key: "set_header", value: .map([(key: "name", value: .string(name)), (key: "value", value: .string(value))]))
            case .deleteHeader(let name): (key: "del_header", value: .string(name))
            }
        return .map([
            action,
            (key: "if", value: .strings(rule.ifACLs)),
            (key: "unless", value: .strings(rule.unlessACLs)),
        ])
    }

    // MARK: Backends

    private static func backend(_ backend: BackendConfig) -> ConfigDocument {
        .mapping([
            "name": .string(backend.name),
            "mode": backend.mode == .tcp ? .string(backend.mode.rawValue) : nil,
            "algorithm": .string(backend.algorithm.rawValue),
            // The parser rejects these on any other algorithm.
            "hash_key": backend.algorithm == .hash ? .string(backend.hashKey.text) : nil,
            "hash_balance_factor": backend.algorithm == .hash ? .double(backend.hashBalanceFactor) : nil,
            "sticky": backend.sticky.map(sticky),
            "slow_start": backend.slowStart.map(duration),
            "queue": backend.queue.map { queue in
                .mapping(["max": .int(queue.max), "timeout": duration(queue.timeout)])
            },
            "retries": .int(backend.retries),
            "timeouts": .mapping([
                "connect": duration(backend.timeouts.connect),
                "response": duration(backend.timeouts.response),
                "idle": duration(backend.timeouts.idle),
                "tunnel": duration(backend.timeouts.tunnel),
            ]),
            // Left out with `servers_from` and no servers of its own (the parser allows that).
            "servers": backend.serversFrom != nil && backend.servers.isEmpty ? nil : .list(backend.servers.map(server)),
            "servers_from": backend.serversFrom.map(serversFrom),
            // Written where it matters: when a server follows DNS, or when it was set.
            "resolve_every": backend.followsDNS || backend.resolveEvery != .seconds(30) ? duration(backend.resolveEvery) : nil,
            // The parser rejects `adaptive` on any other algorithm.
            "adaptive": backend.algorithm == .adaptive ? adaptive(backend.adaptive) : nil,
            "health_check": backend.healthCheck.map { healthCheck($0, mode: backend.mode) },
            "outlier": backend.outlier.map(outlier),
            "retry_budget": .mapping([
                "ratio": .double(backend.retryBudget.ratio),
                "min_per_second": .int(backend.retryBudget.minPerSecond),
            ]),
            "http2": backend.http2.map { limits in
                .mapping([
                    "max_concurrent_streams": .int(limits.maxConcurrentStreams),
                    "max_connections": .int(limits.maxConnections),
                ])
            },
        ])
    }

    /// (The parser takes the cookie's attributes only in mode `insert`.)
    private static func sticky(_ sticky: StickyConfig) -> ConfigDocument {
        let insert = sticky.mode == .insert
        return .mapping([
            "cookie": .string(sticky.cookie),
            "mode": .string(sticky.mode.rawValue),
            "ttl": insert ? sticky.ttl.map(duration) : nil,
            "secure": insert ? sticky.secure.map { .bool($0) } : nil,
            "httponly": insert ? .bool(sticky.httpOnly) : nil,
            "samesite": insert ? sticky.sameSite.map { .string($0.rawValue) } : nil,
        ])
    }

    /// The configurable thresholds; `hysteresis` is not one of them.
    private static func adaptive(_ options: AdaptiveOptions) -> ConfigDocument {
        .mapping([
            "evaluate_every": duration(options.evaluateEvery),
            "min_switch_interval": duration(options.minSwitchInterval),
            "min_requests": .int(options.minimumRequests),
            "error_rate": .double(options.errorRate),
            "latency_spread": .double(options.latencySpread),
            "in_flight_imbalance": .double(options.inFlightImbalance),
        ])
    }

    /// (A TCP backend's check has no path and no status to expect; an HTTP one sends and
    /// receives no bytes of its own.)
    private static func healthCheck(_ check: HealthCheckConfig, mode: ProxyMode) -> ConfigDocument {
        let expect =
            check.expect.lowerBound == check.expect.upperBound
            ? "\(check.expect.lowerBound)"
            : "\(check.expect.lowerBound)-\(check.expect.upperBound)"
        let http = mode == .http
        let get = http && !check.grpc
        return .mapping([
            "path": get ? .string(check.path) : nil,
            "interval": duration(check.interval),
            "timeout": duration(check.timeout),
            "rise": .int(check.rise),
            "fall": .int(check.fall),
            "expect": get ? .string(expect) : nil,
            "grpc": check.grpc ? .bool(true) : nil,
            "send": http ? nil : check.send.map { .string($0) },
            "receive": http ? nil : check.receive.map { .string($0) },
        ])
    }

    private static func outlier(_ outlier: OutlierConfig) -> ConfigDocument {
        .mapping([
            "consecutive_failures": .int(outlier.consecutiveFailures),
            "base_ejection": duration(outlier.baseEjection),
            "max_ejection": duration(outlier.maxEjection),
            "max_ejected_percent": .int(outlier.maxEjectedPercent),
        ])
    }

    private static func server(_ server: ServerConfig) -> ConfigDocument {
        .mapping(
            entries: [("name", .string(server.name)), ("address", .string(server.address.description)), ("weight", .int(server.weight))]
                + serverSettings(server)
        )
    }

    private static func serversFrom(_ servers: ServersFromConfig) -> ConfigDocument {
        .mapping(entries: [("srv", .string(servers.srv))] + serverSettings(servers.template))
    }

    /// What a server has besides its name, address and weight (`servers_from` gives these to
    /// every server it builds).
    private static func serverSettings(_ server: ServerConfig) -> [(String, ConfigDocument?)] {
        [
            ("slow_start", server.slowStart.map(duration)),
            ("max_connections", server.maxConnections.map { .int($0) }),
            ("max_requests", server.maxRequests.map { .int($0) }),
            ("protocol", server.upstreamProtocol == .http1 ? nil : .string(server.upstreamProtocol.rawValue)),
            (
                "tls",
                server.tls.map { tls in
                    .mapping([
                        "verify": .bool(tls.verify),
                        "ca": tls.caFile.map(ConfigDocument.string),
                        "sni": tls.serverName.map(ConfigDocument.string),
                        "client_certificate": tls.clientCertificateFile.map(ConfigDocument.string),
                    ])
                }
            ),
            ("send_proxy", server.sendProxy.map { .string($0.rawValue) }),
        ]
    }

    // MARK: Values

    private static func duration(_ duration: Duration) -> ConfigDocument {
        .string(formatDuration(duration))
    }

    /// Sizes are always strings with a unit (`64KB`, `1000B`), so that the JSON gives the key
    /// one type whatever the value.
    private static func byteSize(_ bytes: Int) -> ConfigDocument {
        .string(formatByteSize(bytes))
    }

    private static func cidrBlock(_ block: CIDRBlock) -> String {
        formatCIDRBlock(block)
    }
}
