internal import Foundation

extension ConfigParser {
    static let frontendKeys = [
        "name", "mode", "listen", "timeouts", "limits", "acls", "rules", "default_backend", "error_files", "tls",
        "redirect_to_https", "h2c", "rate_limits", "antibot", "max_connections", "accept_proxy", "trusted_proxies",
        "client_ip_header", "forwarded", "x_real_ip",
    ]
    /// What a `mode: tcp` frontend cannot have: it reads no request.
    static let httpOnlyFrontendKeys = [
        "limits", "error_files", "tls", "redirect_to_https", "h2c", "rate_limits", "antibot", "trusted_proxies",
        "client_ip_header", "forwarded", "x_real_ip",
    ]
    static let frontendTimeoutKeys = ["client_idle", "header_read", "park_after"]
    static let frontendLimitKeys = ["max_header_size", "max_body_size", "max_concurrent_streams"]

    /// Where each listen address was first used, to report two listeners on one address
    /// (the second bind would fail at start, far from the line that caused it).
    struct ListenerRegistry {
        private var firstUses: [String: (frontend: String, line: Int?)] = [:]

        /// Records `address`, reporting it at `reader` if a frontend already listens there.
        mutating func record(_ address: HostAndPort, written: String, frontend: String, at reader: YAMLNodeReader) {
            // Compare IP literals by their bytes, so that `[::1]` and `[0:0::1]` clash too.
            let host = parseIPAddress(address.host).map { "\($0)" } ?? address.host.lowercased()
            let key = "\(host) \(address.port)"
            if let first = firstUses[key] {
                let line = first.line.map { " at line \($0)" } ?? ""
                reader.report("\(quoted(written)) is already used by frontend \(quoted(first.frontend))\(line)")
                return
            }
            firstUses[key] = (frontend, reader.line)
        }
    }

    func parseFrontends(_ reader: YAMLNodeReader?, backends: ParsedBackends) -> [FrontendConfig] {
        guard let reader, let items = reader.sequence() else { return [] }
        if items.isEmpty {
            reader.report("at least one frontend is required")
        }
        var names = NameRegistry(kind: "frontend")
        var listeners = ListenerRegistry()
        var frontends: [FrontendConfig] = []
        for item in items {
            if let frontend = parseFrontend(item, backends: backends, names: &names, listeners: &listeners) {
                frontends.append(frontend)
            }
        }
        // HTTP-01 answers are kept in this process, and only its plain HTTP frontends serve them.
        let answersHTTP01 = frontends.contains { $0.tls == nil && $0.mode == .http }
        for frontend in frontends where frontend.tls?.acme?.challenge == .http01 && !answersHTTP01 {
            reader.report(
                "frontend \(quoted(frontend.name)) obtains its certificate by ACME HTTP-01, which a plain HTTP frontend answers (on port 80), and there is none: add one, or use challenge: tls-alpn-01"
            )
        }
        return frontends
    }

    private func parseFrontend(
        _ reader: YAMLNodeReader,
        backends: ParsedBackends,
        names: inout NameRegistry,
        listeners: inout ListenerRegistry
    ) -> FrontendConfig? {
        guard let mapping = reader.mapping(allowedKeys: Self.frontendKeys) else { return nil }
        let backendNames = backends.names
        let name = parseName(mapping.required("name"), into: &names)
        var frontend = FrontendConfig(name: name ?? "", listen: [], defaultBackend: nil)
        if let mode = mapping["mode"]?.choice(ProxyMode.self, named: "mode") {
            frontend.mode = mode
        }

        if let listen = mapping.required("listen") {
            frontend.listen = parseListen(listen, frontend: name ?? "", listeners: &listeners)
        }
        if let timeouts = mapping["timeouts"]?.mapping(allowedKeys: Self.frontendTimeoutKeys) {
            if let clientIdle = timeouts["client_idle"]?.duration() {
                frontend.timeouts.clientIdle = clientIdle
            }
            if let headerRead = timeouts["header_read"]?.duration() {
                frontend.timeouts.headerRead = headerRead
            }
            if let parkAfter = timeouts["park_after"]?.duration(allowZero: true) {
                frontend.timeouts.parkAfter = parkAfter
            }
        }
        if let limits = mapping["limits"]?.mapping(allowedKeys: Self.frontendLimitKeys) {
            if let reader = limits["max_header_size"], let size = reader.byteSize() {
                if size > 0 {
                    frontend.limits.maxHeaderBytes = size
                } else {
                    reader.report("must be greater than zero")
                }
            }
            // 0 is a valid body limit: it refuses every request with a non-empty body.
            if let size = limits["max_body_size"]?.byteSize() {
                frontend.limits.maxBodyBytes = size
            }
            if let streams = limits["max_concurrent_streams"]?.integer(in: 1...10_000) {
                frontend.limits.maxConcurrentStreams = streams
            }
        }

        if let connections = mapping["max_connections"]?.integer(atLeast: 1) {
            frontend.maxConnections = connections
        }

        // ACLs before rules: rules refer to ACLs by name.
        var aclNames: NameRegistry? = NameRegistry(kind: "ACL")
        if let acls = mapping["acls"] {
            (frontend.acls, aclNames) = parseACLs(acls)
        }
        // Whether the frontend has rules in the file, even invalid ones; an unreadable
        // `rules` was reported already and should not also cause a complaint below.
        var hasRules = false
        var ruleReaders: [YAMLNodeReader] = []
        if let rules = mapping["rules"] {
            if let items = rules.sequence() {
                frontend.rules = items.compactMap { parseRule($0, aclNames: aclNames, backendNames: backendNames) }
                ruleReaders = items
                hasRules = !items.isEmpty
            } else {
                hasRules = true
            }
        }

        if let rateLimits = mapping["rate_limits"] {
            frontend.rateLimits = parseRateLimits(rateLimits, aclNames: aclNames)
        }
        if let antibot = mapping["antibot"] {
            frontend.antibot = parseAntibot(antibot, aclNames: aclNames)
        }

        if let reader = mapping["default_backend"] {
            if let backend = reader.nonEmptyString() {
                checkReference(backend, at: reader, in: backendNames)
                checkMode(of: backend, at: reader, frontend: frontend.mode, backends: backends)
                frontend.defaultBackend = backend
            }
        } else if !hasRules {
            // Without rules and without a default backend, no request could be routed.
            diagnostics.report(
                "required when the frontend has no rules",
                path: "\(reader.path).default_backend",
                line: reader.line
            )
        }

        if let errorFiles = mapping["error_files"]?.mapping(allowedKeys: nil) {
            frontend.errorFiles = parseErrorFiles(errorFiles)
        }
        if let tls = mapping["tls"] {
            frontend.tls = parseFrontendTLS(tls)
        }
        if let redirect = mapping["redirect_to_https"], let port = redirect.integer(in: 1...65535) {
            if frontend.tls != nil {
                redirect.report("a TLS frontend cannot redirect to HTTPS")
            } else {
                frontend.redirectToHTTPSPort = port
            }
        }
        if let acceptProxy = mapping["accept_proxy"]?.mapping(allowedKeys: ["from"]),
            let from = acceptProxy.required("from")
        {
            frontend.acceptProxyFrom = parseCIDRBlocks(from)
        }
        parseForwarding(mapping, into: &frontend.forwarding)
        if let h2c = mapping["h2c"], let enabled = h2c.bool() {
            if enabled, frontend.tls != nil {
                h2c.report("h2c is HTTP/2 without TLS; a TLS frontend offers h2 by ALPN (tls.alpn)")
            } else {
                frontend.h2c = enabled
            }
        }
        checkModes(of: frontend, mapping: mapping, ruleReaders: ruleReaders, backends: backends)
        return frontend
    }

    private func parseListen(
        _ reader: YAMLNodeReader,
        frontend: String,
        listeners: inout ListenerRegistry
    ) -> [ListenAddress] {
        guard let items = reader.scalarOrSequence(expected: "an address or a list of addresses") else { return [] }
        if items.isEmpty {
            reader.report("a frontend must listen on at least one address")
        }
        var addresses: [ListenAddress] = []
        for item in items {
            guard let text = item.string(), let address = parseHostAndPort(item) else { continue }
            listeners.record(address, written: text, frontend: frontend, at: item)
            addresses.append(ListenAddress(host: address.host, port: address.port))
        }
        return addresses
    }

    /// `error_files: { 503: ./503.html }`. Each file must be readable now: finding out at
    /// the first outage that the page is missing would be too late.
    private func parseErrorFiles(_ mapping: YAMLMappingReader) -> [Int: String] {
        var files: [Int: String] = [:]
        for entry in mapping.entries {
            let status = Int(entry.key)
            if status.map(isErrorStatus) != true {
                diagnostics.report(
                    "\(quoted(entry.key)) is not an HTTP error status (expected 400…599)",
                    path: entry.value.path,
                    line: entry.keyLine
                )
            }
            guard let written = entry.value.nonEmptyString() else { continue }
            let path = resolve(written)
            checkReadableFile(path, written: written, at: entry.value)
            if let status {
                files[status] = path
            }
        }
        return files
    }

    /// `path` made absolute against the configuration file's directory, when there is one.
    func resolve(_ path: String) -> String {
        guard let baseDirectory, !path.hasPrefix("/") else { return path }
        let base = URL(fileURLWithPath: baseDirectory, isDirectory: true)
        return URL(fileURLWithPath: path, relativeTo: base).standardizedFileURL.path
    }

    func checkReadableFile(_ path: String, written: String, at reader: YAMLNodeReader) {
        let shown = path == written ? quoted(written) : "\(quoted(written)) (\(path))"
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            reader.report("\(shown) does not exist")
        } else if isDirectory.boolValue {
            reader.report("\(shown) is a directory, not a file")
        } else if !FileManager.default.isReadableFile(atPath: path) {
            reader.report("\(shown) is not readable")
        }
    }
}

extension ConfigParser {
    /// `trusted_proxies`, `client_ip_header`, `forwarded` and `x_real_ip`.
    fileprivate func parseForwarding(_ mapping: YAMLMappingReader, into forwarding: inout ForwardingConfig) {
        if let trusted = mapping["trusted_proxies"], let blocks = parseCIDRBlocks(trusted) {
            forwarding.trustedProxies = blocks
        }
        if let reader = mapping["client_ip_header"],
            let header = reader.choice(ForwardingConfig.ClientIPHeader.self, named: "client_ip_header")
        {
            if forwarding.trustedProxies.isEmpty {
                reader.report("applies only with trusted_proxies (only a trusted proxy may name the client)")
            } else {
                forwarding.clientIPHeader = header
            }
        }
        if let headers = mapping["forwarded"]?.choice(ForwardingConfig.Headers.self, named: "forwarded headers") {
            forwarding.headers = headers
        }
        if let xRealIP = mapping["x_real_ip"]?.bool() {
            forwarding.xRealIP = xRealIP
        }
    }
}
