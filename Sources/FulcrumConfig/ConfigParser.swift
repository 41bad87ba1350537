/// Walks a composed YAML document and builds a `Config`, reporting every problem it finds
/// to `diagnostics` instead of stopping at the first.
///
/// The walk is split by section: this file has the document and `global`,
/// `ConfigParser+Backends.swift` the backends, `ConfigParser+Frontends.swift` the
/// frontends and `ConfigParser+Routing.swift` their ACLs and rules.
///
/// Where a value is invalid the parser keeps a placeholder and carries on, so the `Config`
/// it returns is only meaningful when nothing was reported; `ConfigLoader` checks that.
struct ConfigParser {
    let diagnostics: ConfigDiagnostics
    /// Directory that relative `error_files` paths are resolved against; `nil` leaves
    /// them as written (relative to the working directory).
    let baseDirectory: String?
    /// Whether `global.store` is configured (rate limits may be `shared` then).
    var storeConfigured = false

    static let documentKeys = ["global", "frontends", "backends"]
    static let globalKeys = ["workers", "log", "grace_period", "max_connections", "admin", "store", "dns"]
    static let storeKeys = ["redis", "timeout", "on_error"]
    static let dnsKeys = ["nameservers", "timeout", "family"]
    static let adminKeys = ["listen", "token_env", "config_writeback"]
    static let logKeys = ["level", "access"]

    func parseDocument(_ root: YAMLNodeReader) -> Config? {
        guard let document = root.mapping(allowedKeys: Self.documentKeys) else { return nil }
        var global = GlobalConfig()
        var parser = self
        if let reader = document["global"] {
            // A broken store is reported once, not again at each shared limit.
            parser.storeConfigured = parseGlobal(reader, into: &global)
        }
        // Backends first: frontends and their rules refer to backends by name.
        let backends = parser.parseBackends(document.required("backends"))
        let frontends = parser.parseFrontends(document.required("frontends"), backends: backends)
        return Config(global: global, frontends: frontends, backends: backends.configs)
    }

    /// Returns whether `global` has a `store` (valid or not).
    private func parseGlobal(_ reader: YAMLNodeReader, into global: inout GlobalConfig) -> Bool {
        guard let mapping = reader.mapping(allowedKeys: Self.globalKeys) else { return false }
        if let workers = mapping["workers"].flatMap(parseWorkers) {
            global.workers = workers
        }
        if let log = mapping["log"]?.mapping(allowedKeys: Self.logKeys) {
            if let level = log["level"]?.choice(LogLevel.self, named: "log level") {
                global.log.level = level
            }
            if let access = log["access"]?.choice(AccessLogFormat.self, named: "access log format") {
                global.log.access = access
            }
        }
        // Zero is a legitimate grace period: stop at once, dropping in-flight requests.
        if let gracePeriod = mapping["grace_period"]?.duration(allowZero: true) {
            global.gracePeriod = gracePeriod
        }
        if let admin = mapping["admin"] {
            global.admin = parseAdmin(admin)
        }
        if let cap = mapping["max_connections"].flatMap(parseConnectionCap) {
            global.maxConnections = cap
        }
        if let dns = mapping["dns"] {
            global.dns = parseDNS(dns)
        }
        guard let store = mapping["store"] else { return false }
        global.store = parseStore(store)
        return true
    }

    /// `dns: { nameservers: ["127.0.0.1:5353"], timeout: 2s, family: ipv4_preferred }`.
    private func parseDNS(_ reader: YAMLNodeReader) -> DNSConfig? {
        guard let mapping = reader.mapping(allowedKeys: Self.dnsKeys) else { return nil }
        var dns = DNSConfig()
        if let items = mapping["nameservers"]?.sequence() {
            for item in items {
                guard let text = item.nonEmptyString() else { continue }
                if parseIPAddress(text) != nil {
                    dns.nameservers.append(ServerAddress(host: text, port: 53))
                } else if let address = try? HostAndPort(parsing: text), parseIPAddress(address.host) != nil {
                    dns.nameservers.append(ServerAddress(host: address.host, port: address.port))
                } else {
                    item.report("\(quoted(text)) is not a nameserver: expected an IP address, with a port or not (127.0.0.1, [::1]:53)")
                }
            }
        }
        if let timeout = mapping["timeout"]?.duration() {
            if timeout > .seconds(30) {
                mapping["timeout"]?.report("a nameserver's timeout is at most 30s")
            } else {
                dns.timeout = timeout
            }
        }
        if let family = mapping["family"]?.choice(AddressFamilyPreference.self, named: "address family") {
            dns.family = family
        }
        return dns
    }

    /// `store: { redis: "redis://127.0.0.1:6379/0", timeout: 50ms, on_error: local }`.
    private func parseStore(_ reader: YAMLNodeReader) -> StoreConfig? {
        guard let mapping = reader.mapping(allowedKeys: Self.storeKeys) else { return nil }
        guard let urlReader = mapping.required("redis"), let text = urlReader.nonEmptyString() else { return nil }
        let url: RedisURL
        do {
            url = try RedisURL(parsing: text)
        } catch {
            urlReader.report(error.message)
            return nil
        }
        var store = StoreConfig(redis: url)
        if let timeout = mapping["timeout"]?.duration() {
            if timeout > .seconds(10) {
                mapping["timeout"]?.report("a store's timeout is at most 10s: every request with a shared limit may wait it out")
            } else {
                store.timeout = timeout
            }
        }
        if let onError = mapping["on_error"]?.choice(StoreConfig.OnError.self, named: "store on_error") {
            store.onError = onError
        }
        return store
    }

    /// `admin: { listen: 127.0.0.1:9090, token_env: FULCRUM_ADMIN_TOKEN }`. Anyone who can
    /// reach the admin API can reconfigure the proxy, so a listener beyond loopback needs a token.
    private func parseAdmin(_ reader: YAMLNodeReader) -> AdminConfig? {
        guard let mapping = reader.mapping(allowedKeys: Self.adminKeys) else { return nil }
        guard let listenReader = mapping.required("listen"), let address = parseHostAndPort(listenReader) else { return nil }
        var admin = AdminConfig(listen: ListenAddress(host: address.host, port: address.port))
        if let variable = mapping["token_env"]?.nonEmptyString() {
            admin.tokenEnvironmentVariable = variable
        }
        if let writeback = mapping["config_writeback"], let enabled = writeback.bool() {
            admin.configWriteback = enabled
        }
        if !admin.isLoopback, admin.tokenEnvironmentVariable == nil {
            listenReader.report("an admin listener beyond loopback needs a token (set token_env)")
        }
        return admin
    }

    private func parseWorkers(_ reader: YAMLNodeReader) -> WorkerCount? {
        guard let text = reader.string(expected: "\"auto\" or a number of threads") else { return nil }
        if text.lowercased() == "auto" {
            return .auto
        }
        if let count = Int(text), count > 0 {
            return .fixed(count)
        }
        reader.report("must be \"auto\" or a positive number of threads, found \(quoted(text))")
        return nil
    }

    private func parseConnectionCap(_ reader: YAMLNodeReader) -> ConnectionCap? {
        guard let text = reader.string(expected: "\"auto\" or a number of connections") else { return nil }
        if text.lowercased() == "auto" {
            return .auto
        }
        if let count = Int(text), count > 0 {
            return .fixed(count)
        }
        reader.report("must be \"auto\" or a positive number of connections, found \(quoted(text))")
        return nil
    }

    // MARK: Names

    /// A required name (of a frontend, backend or server), recorded in `names` so that a
    /// second use in the same scope is reported.
    func parseName(_ reader: YAMLNodeReader?, into names: inout NameRegistry) -> String? {
        guard let reader, let name = reader.nonEmptyString() else { return nil }
        // Record it even when malformed: a later reference to it should not also fail as
        // "undefined", which would only repeat the same mistake.
        names.record(name, at: reader)
        if let error = ConfigName.error(in: name, kind: names.kind) {
            reader.report(error)
            return nil
        }
        return name
    }

    /// Reports `reader` if it names something that `known` does not define. With no
    /// `known` names (their section was unreadable and has been reported) nothing is said.
    func checkReference(_ name: String, at reader: YAMLNodeReader, in known: NameRegistry?) {
        guard let known, !known.contains(name) else { return }
        let defined =
            known.namesInOrder.isEmpty
            ? "no \(known.kind)s are defined"
            : "defined \(known.kind)s: \(known.namesInOrder.joined(separator: ", "))"
        reader.report("undefined \(known.kind) \(quoted(name)); \(defined)")
    }
}

/// The names defined in one scope (the backends of a file, the servers of a backend...),
/// in file order, with the line of each first definition so that a repeat can point at it.
struct NameRegistry {
    /// What the names name, for messages: "backend", "server", "ACL".
    let kind: String
    private(set) var namesInOrder: [String] = []
    private var firstLines: [String: Int] = [:]

    init(kind: String) {
        self.kind = kind
    }

    func contains(_ name: String) -> Bool {
        namesInOrder.contains(name)
    }

    /// Records `name`, reporting it at `reader` if the scope already has it.
    mutating func record(_ name: String, at reader: YAMLNodeReader) {
        if contains(name) {
            let first = firstLines[name].map { " (first defined at line \($0))" } ?? ""
            reader.report("duplicate \(kind) name \(quoted(name))\(first)")
            return
        }
        namesInOrder.append(name)
        firstLines[name] = reader.line
    }
}
