extension ConfigParser {
    static let backendKeys = [
        "name", "mode", "algorithm", "hash_key", "hash_balance_factor", "sticky", "slow_start", "queue", "retries", "timeouts", "servers",
        "servers_from", "resolve_every", "adaptive",
        "health_check", "outlier", "retry_budget", "http2",
    ]
    static let http2Keys = ["max_concurrent_streams", "max_connections"]
    static let outlierKeys = ["consecutive_failures", "base_ejection", "max_ejection", "max_ejected_percent"]
    static let retryBudgetKeys = ["ratio", "min_per_second"]
    static let healthCheckKeys = ["path", "interval", "timeout", "rise", "fall", "expect", "grpc", "send", "receive"]
    /// The most `send` and `receive` may hold: a probe, not a transfer.
    static let healthCheckPayloadLimit = 4096
    static let adaptiveKeys = [
        "evaluate_every", "min_switch_interval", "min_requests", "error_rate", "latency_spread", "in_flight_imbalance",
    ]
    static let backendTimeoutKeys = ["connect", "response", "idle", "tunnel"]
    static let serverKeys = [
        "name", "address", "weight", "slow_start", "max_connections", "max_requests", "protocol", "tls", "send_proxy",
    ]
    static let serverTLSKeys = ["verify", "ca", "sni", "client_certificate"]
    /// What a server takes besides its name, address and weight: what `servers_from` gives
    /// every server it builds.
    static let serverSettingKeys = ["slow_start", "max_connections", "max_requests", "protocol", "tls", "send_proxy"]
    static let serversFromKeys = ["srv"] + serverSettingKeys
    /// The shortest `resolve_every`: a nameserver is asked at most once a second per name.
    static let minimumResolveInterval = Duration.seconds(1)

    struct ParsedBackends {
        var configs: [BackendConfig] = []
        /// The backend names, or `nil` when the section could not be read at all, in which
        /// case references to backends are not checked (that would only add noise).
        var names: NameRegistry?
    }

    func parseBackends(_ reader: YAMLNodeReader?) -> ParsedBackends {
        guard let reader, let items = reader.sequence() else { return ParsedBackends() }
        guard !items.isEmpty else {
            reader.report("at least one backend is required")
            return ParsedBackends()
        }
        var names = NameRegistry(kind: "backend")
        var configs: [BackendConfig] = []
        for item in items {
            if let backend = parseBackend(item, names: &names) {
                configs.append(backend)
            }
        }
        return ParsedBackends(configs: configs, names: names)
    }

    private func parseBackend(_ reader: YAMLNodeReader, names: inout NameRegistry) -> BackendConfig? {
        guard let mapping = reader.mapping(allowedKeys: Self.backendKeys) else { return nil }
        let name = parseName(mapping.required("name"), into: &names)
        var backend = BackendConfig(name: name ?? "", servers: [])
        if let mode = mapping["mode"]?.choice(ProxyMode.self, named: "mode") {
            backend.mode = mode
        }

        if let algorithm = mapping["algorithm"]?.choice(AlgorithmName.self, named: "algorithm") {
            backend.algorithm = algorithm
        }
        if let adaptiveReader = mapping["adaptive"] {
            if backend.algorithm != .adaptive {
                adaptiveReader.report("applies only to algorithm: adaptive")
            } else if let options = parseAdaptiveOptions(adaptiveReader) {
                backend.adaptive = options
            }
        }
        parseHashSettings(mapping, into: &backend)
        if let stickyReader = mapping["sticky"] {
            backend.sticky = parseSticky(stickyReader)
        }
        if let slowStart = mapping["slow_start"]?.duration() {
            backend.slowStart = slowStart
        }
        if let queueReader = mapping["queue"] {
            backend.queue = parseQueue(queueReader)
        }
        if let healthReader = mapping["health_check"], let healthCheck = parseHealthCheck(healthReader) {
            backend.healthCheck = healthCheck
        }
        if let http2Reader = mapping["http2"], let limits = http2Reader.mapping(allowedKeys: Self.http2Keys) {
            var http2 = HTTP2UpstreamLimits()
            if let streams = limits["max_concurrent_streams"]?.integer(in: 1...10_000) { http2.maxConcurrentStreams = streams }
            if let connections = limits["max_connections"]?.integer(in: 1...64) { http2.maxConnections = connections }
            backend.http2 = http2
        }
        if let outlierReader = mapping["outlier"], let outlier = parseOutlier(outlierReader) {
            backend.outlier = outlier
        }
        if let budgetReader = mapping["retry_budget"]?.mapping(allowedKeys: Self.retryBudgetKeys) {
            if let ratio = budgetReader["ratio"]?.number(in: 0...10) { backend.retryBudget.ratio = ratio }
            if let floor = budgetReader["min_per_second"]?.integer(in: 0...10_000) { backend.retryBudget.minPerSecond = floor }
        }
        if let retries = mapping["retries"]?.integer(atLeast: 0) {
            backend.retries = retries
        }
        if let timeouts = mapping["timeouts"]?.mapping(allowedKeys: Self.backendTimeoutKeys) {
            if let connect = timeouts["connect"]?.duration() {
                backend.timeouts.connect = connect
            }
            if let response = timeouts["response"]?.duration() {
                backend.timeouts.response = response
            }
            if let idle = timeouts["idle"]?.duration() {
                backend.timeouts.idle = idle
            }
            if let tunnel = timeouts["tunnel"]?.duration() {
                backend.timeouts.tunnel = tunnel
            }
        }
        if let reader = mapping["servers_from"] {
            backend.serversFrom = parseServersFrom(reader)
        }
        if let reader = mapping["resolve_every"], let interval = reader.duration() {
            if interval < Self.minimumResolveInterval {
                reader.report("is at least 1s: each name is asked at most once a second")
            } else {
                backend.resolveEvery = interval
            }
        }
        // With `servers_from`, `servers` may be left out: the records give them all.
        let serversReader = mapping["servers_from"] == nil ? mapping.required("servers") : mapping["servers"]
        if let serversReader, let items = serversReader.sequence() {
            if items.isEmpty, mapping["servers_from"] == nil {
                serversReader.report("a backend needs at least one server")
            }
            // Server names only need to be unique within their backend: the same machine
            // may well serve in several backends.
            var serverNames = NameRegistry(kind: "server")
            for item in items {
                if let server = parseServer(item, names: &serverNames) {
                    backend.servers.append(server)
                    if backend.mode == .tcp, server.tls != nil {
                        item.mapping(allowedKeys: nil)?["tls"]?.report("TLS to servers is for mode: http (in mode: tcp, TLS passes through)")
                    }
                    if backend.mode == .tcp, server.upstreamProtocol != .http1 {
                        item.mapping(allowedKeys: nil)?["protocol"]?.report("is for mode: http (in mode: tcp, bytes pass as they are)")
                    }
                }
            }
        }
        if backend.mode == .tcp {
            checkTCPBackend(backend, mapping: mapping)
        } else {
            let check = mapping["health_check"]?.mapping(allowedKeys: nil)
            for key in ["send", "receive"] {
                check?[key]?.report("applies only to mode: tcp (an HTTP health check sends a GET for path)")
            }
            let http1 = backend.servers.filter { $0.upstreamProtocol == .http1 }.map(\.name)
            if backend.healthCheck?.grpc == true, !http1.isEmpty {
                check?["grpc"]?.report(
                    "gRPC health checks need servers that speak HTTP/2 (protocol: h2 or h2c); \(http1.joined(separator: ", ")) speak HTTP/1.1"
                )
            }
        }
        return backend
    }

    private func parseHealthCheck(_ reader: YAMLNodeReader) -> HealthCheckConfig? {
        guard let mapping = reader.mapping(allowedKeys: Self.healthCheckKeys) else { return nil }
        var check = HealthCheckConfig()
        if let pathReader = mapping["path"], let path = pathReader.nonEmptyString() {
            if path.hasPrefix("/"), !path.contains(where: { $0 == " " || $0 == "\r" || $0 == "\n" }) {
                check.path = path
            } else {
                pathReader.report("\(quoted(path)) is not a request path (it must start with / and contain no spaces)")
            }
        }
        if let interval = mapping["interval"]?.duration() { check.interval = interval }
        if let timeout = mapping["timeout"]?.duration() { check.timeout = timeout }
        if let rise = mapping["rise"]?.integer(in: 1...100) { check.rise = rise }
        if let fall = mapping["fall"]?.integer(in: 1...100) { check.fall = fall }
        for (key, path) in [("send", \HealthCheckConfig.send), ("receive", \HealthCheckConfig.receive)] {
            guard let reader = mapping[key], let text = reader.nonEmptyString() else { continue }
            if text.utf8.count <= Self.healthCheckPayloadLimit {
                check[keyPath: path] = text
            } else {
                reader.report("is \(text.utf8.count) bytes; at most \(Self.healthCheckPayloadLimit) are allowed")
            }
        }
        if let grpc = mapping["grpc"]?.bool() {
            check.grpc = grpc
            if grpc {
                for key in ["path", "expect"] {
                    mapping[key]?.report("does not apply with grpc: true (the probe calls grpc.health.v1.Health/Check)")
                }
            }
        }
        if let expectReader = mapping["expect"], let text = expectReader.string() {
            if let range = Self.statusRange(text) {
                check.expect = range
            } else {
                expectReader.report("\(quoted(text)) is not a status or status range (expected 200 or 200-399, within 100…599)")
            }
        }
        return check
    }

    private func parseOutlier(_ reader: YAMLNodeReader) -> OutlierConfig? {
        guard let mapping = reader.mapping(allowedKeys: Self.outlierKeys) else { return nil }
        var outlier = OutlierConfig()
        if let failures = mapping["consecutive_failures"]?.integer(in: 1...1000) { outlier.consecutiveFailures = failures }
        if let base = mapping["base_ejection"]?.duration() { outlier.baseEjection = base }
        if let maximumReader = mapping["max_ejection"], let maximum = maximumReader.duration() {
            if maximum >= outlier.baseEjection {
                outlier.maxEjection = maximum
            } else {
                maximumReader.report("must not be shorter than base_ejection")
            }
        } else if outlier.baseEjection > outlier.maxEjection {
            outlier.maxEjection = outlier.baseEjection
        }
        if let percent = mapping["max_ejected_percent"]?.integer(in: 1...100) { outlier.maxEjectedPercent = percent }
        return outlier
    }

    /// `200` or `200-399`, within 100…599.
    private static func statusRange(_ text: String) -> ClosedRange<Int>? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false).map { $0.filter { $0 != " " } }
        guard (1...2).contains(parts.count), let low = Int(parts[0]), let high = Int(parts.last!),
            100 <= low, low <= high, high <= 599
        else { return nil }
        return low...high
    }

    private func parseAdaptiveOptions(_ reader: YAMLNodeReader) -> AdaptiveOptions? {
        guard let mapping = reader.mapping(allowedKeys: Self.adaptiveKeys) else { return nil }
        var options = AdaptiveOptions()
        if let every = mapping["evaluate_every"]?.duration() { options.evaluateEvery = every }
        if let interval = mapping["min_switch_interval"]?.duration(allowZero: true) { options.minSwitchInterval = interval }
        if let requests = mapping["min_requests"]?.integer(atLeast: 1) { options.minimumRequests = requests }
        if let rate = mapping["error_rate"]?.number(in: 0.001...1) { options.errorRate = rate }
        if let spread = mapping["latency_spread"]?.number(in: 1.1...1000) { options.latencySpread = spread }
        if let imbalance = mapping["in_flight_imbalance"]?.number(in: 1.1...1000) { options.inFlightImbalance = imbalance }
        return options
    }

    func parseServer(_ reader: YAMLNodeReader, names: inout NameRegistry) -> ServerConfig? {
        guard let mapping = reader.mapping(allowedKeys: Self.serverKeys) else { return nil }
        let name = parseName(mapping.required("name"), into: &names)
        var server = ServerConfig(name: name ?? "", address: ServerAddress(host: "", port: 0))
        if let address = mapping.required("address").flatMap(parseHostAndPort) {
            server.address = ServerAddress(host: address.host, port: address.port)
        }
        // 0 is allowed and means "drained": the server stays configured but gets no new requests.
        if let weight = mapping["weight"]?.integer(in: ServerConfig.weights) {
            server.weight = weight
        }
        parseServerSettings(mapping, into: &server)
        return server
    }

    /// `servers_from: { srv: _http._tcp.example.internal, protocol: h2c }`.
    private func parseServersFrom(_ reader: YAMLNodeReader) -> ServersFromConfig? {
        guard let mapping = reader.mapping(allowedKeys: Self.serversFromKeys) else { return nil }
        guard let srvReader = mapping.required("srv"), let name = srvReader.nonEmptyString() else { return nil }
        guard name.utf8.count <= 253, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) else {
            srvReader.report("\(quoted(name)) is not a DNS name (letters, digits, \".\", \"_\" and \"-\", at most 253)")
            return nil
        }
        var servers = ServersFromConfig(srv: name)
        parseServerSettings(mapping, into: &servers.template)
        return servers
    }

    /// What a server takes besides its name, address and weight (`serverSettingKeys`).
    private func parseServerSettings(_ mapping: YAMLMappingReader, into server: inout ServerConfig) {
        if let slowStart = mapping["slow_start"]?.duration(allowZero: true) {
            server.slowStart = slowStart
        }
        if let maxConnections = mapping["max_connections"]?.integer(in: 1...1_000_000) {
            server.maxConnections = maxConnections
        }
        if let maxRequests = mapping["max_requests"]?.integer(in: 1...1_000_000) {
            server.maxRequests = maxRequests
        }
        if let tls = mapping["tls"]?.mapping(allowedKeys: Self.serverTLSKeys) {
            var settings = ServerTLSConfig()
            if let verify = tls["verify"]?.bool() { settings.verify = verify }
            if let ca = tls["ca"], let written = ca.nonEmptyString() {
                settings.caFile = resolve(written)
                checkReadableFile(settings.caFile!, written: written, at: ca)
            }
            if let sni = tls["sni"]?.nonEmptyString() { settings.serverName = sni }
            if let client = tls["client_certificate"], let written = client.nonEmptyString() {
                settings.clientCertificateFile = resolve(written)
                checkReadableFile(settings.clientCertificateFile!, written: written, at: client)
            }
            server.tls = settings
        }
        if let sendProxy = mapping["send_proxy"] {
            server.sendProxy = sendProxy.choice(ProxyProtocolVersion.self, named: "PROXY protocol version")
        }
        if let reader = mapping["protocol"], let upstreamProtocol = reader.choice(UpstreamProtocol.self, named: "protocol") {
            server.upstreamProtocol = upstreamProtocol
            if upstreamProtocol == .h2, server.tls == nil {
                reader.report("h2 is HTTP/2 over TLS: give the server tls (h2c is HTTP/2 without TLS)")
            } else if upstreamProtocol == .h2c, server.tls != nil {
                reader.report("h2c is HTTP/2 without TLS (over TLS, it is h2)")
            }
        }
    }

    /// `host:port`, reporting why it is not one.
    func parseHostAndPort(_ reader: YAMLNodeReader) -> HostAndPort? {
        guard let text = reader.string() else { return nil }
        do {
            return try HostAndPort(parsing: text)
        } catch {
            reader.report(error.message)
            return nil
        }
    }
}

extension ConfigParser {
    /// `hash_key` and `hash_balance_factor`, which only `algorithm: hash` takes.
    fileprivate func parseHashSettings(_ mapping: YAMLMappingReader, into backend: inout BackendConfig) {
        if let keyReader = mapping["hash_key"] {
            if backend.algorithm != .hash {
                keyReader.report("applies only to algorithm: hash")
            } else if let text = keyReader.string() {
                if let key = HashKey(text) {
                    backend.hashKey = key
                } else {
                    keyReader.report("expected src, uri, header:NAME, cookie:NAME or query:NAME, got \"\(text)\"")
                }
            }
        }
        if let factorReader = mapping["hash_balance_factor"] {
            if backend.algorithm != .hash {
                factorReader.report("applies only to algorithm: hash")
            } else if let factor = factorReader.number(in: 0...100) {
                if factor != 0, factor < 1 {
                    factorReader.report("expected 0 (no bound) or a factor of at least 1 (1.25: 25 % above the average load)")
                } else {
                    backend.hashBalanceFactor = factor
                }
            }
        }
    }
}
