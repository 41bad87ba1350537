extension ConfigParser {
    /// A frontend routes only to backends of its own mode, and a `mode: tcp` frontend has
    /// nothing that needs a request: no HTTP settings, ACLs on the client's address and its
    /// TLS ClientHello only, and rules that only choose a backend. (`sni` and `alpn` are for
    /// TCP only.)
    func checkModes(of frontend: FrontendConfig, mapping: YAMLMappingReader, ruleReaders: [YAMLNodeReader], backends: ParsedBackends) {
        // Rules that failed to parse are missing from `frontend.rules`: match them by position
        // only when none did (the failures were reported already).
        if frontend.rules.count == ruleReaders.count {
            for (rule, reader) in zip(frontend.rules, ruleReaders) {
                switch rule.action {
                case .useBackend(let backend):
                    checkMode(of: backend, at: reader, frontend: frontend.mode, backends: backends)
                default:
                    if frontend.mode == .tcp {
                        reader.report("a mode: tcp frontend's rules can only use_backend (it reads no request to answer)")
                    }
                }
            }
        }
        let aclReaders = mapping["acls"]?.mapping(allowedKeys: nil)
        guard frontend.mode == .tcp else {
            for acl in frontend.acls where acl.readsClientHello {
                let criteria = aclReaders?[acl.name]?.mapping(allowedKeys: nil)
                criteria?["sni"]?.report(
                    "applies only to mode: tcp (a frontend that terminates TLS picks its certificate by SNI itself; route on host)"
                )
                criteria?["alpn"]?.report("applies only to mode: tcp (a frontend that terminates TLS negotiates ALPN itself)")
            }
            return
        }
        for key in Self.httpOnlyFrontendKeys {
            mapping[key]?.report("applies only to mode: http (a mode: tcp frontend reads no request)")
        }
        for acl in frontend.acls {
            let connectionOnly = acl.criteria.allSatisfy { criterion in
                switch criterion {
                case .source, .serverName, .applicationProtocol: true
                default: false
                }
            }
            if !connectionOnly {
                aclReaders?[acl.name]?.report("a mode: tcp frontend's ACLs can only test src, sni and alpn (it reads no request)")
            }
        }
    }

    /// `backend`, routed to from a frontend of `mode`, carries the same.
    func checkMode(of backend: String, at reader: YAMLNodeReader, frontend mode: ProxyMode, backends: ParsedBackends) {
        guard let config = backends.configs.first(where: { $0.name == backend }), config.mode != mode else { return }
        reader.report(
            "backend \(quoted(backend)) is mode: \(config.mode.rawValue); a mode: \(mode.rawValue) frontend routes only to mode: \(mode.rawValue) backends"
        )
    }
}

extension ConfigParser {
    /// A `mode: tcp` backend: a health check connects (then may send and expect bytes), and
    /// the algorithm needs no response (those that learn from response times have none to
    /// learn from in a TCP stream).
    func checkTCPBackend(_ backend: BackendConfig, mapping: YAMLMappingReader) {
        if !backend.algorithm.worksWithoutResponses {
            let valid = AlgorithmName.allCases.filter(\.worksWithoutResponses).map(\.rawValue).joined(separator: ", ")
            mapping["algorithm"]?.report(
                "\(backend.algorithm.rawValue) needs response times, which mode: tcp does not have; expected one of: \(valid)"
            )
        }
        if backend.algorithm == .hash, backend.hashKey != .source {
            mapping["hash_key"]?.report("a mode: tcp backend hashes only src: a connection has no uri, header, cookie or query")
        }
        mapping["http2"]?.report("applies only to mode: http (HTTP/2 servers are for HTTP requests)")
        mapping["queue"]?.report("applies only to mode: http (a TCP connection that finds every server full is closed; it does not wait)")
        mapping["sticky"]?.report("applies only to mode: http (a TCP connection carries no cookie; algorithm: hash keeps a client on its server)")
        let check = mapping["health_check"]?.mapping(allowedKeys: nil)
        for key in ["path", "expect", "grpc"] {
            check?[key]?.report("applies only to mode: http (in mode: tcp a health check connects, and may send and receive bytes)")
        }
    }
}
