extension ConfigParser {
    static let criterionKeys = ["path_prefix", "path", "path_regex", "host", "method", "header", "src", "sni", "alpn"]
    static let headerKeys = ["name", "equals", "prefix", "contains", "exists"]
    static let headerMatchKeys = ["equals", "prefix", "contains", "exists"]
    static let ruleKeys = ["use_backend", "deny", "redirect", "tarpit", "set_header", "del_header", "if", "unless"]
    static let ruleActionKeys = ["use_backend", "deny", "redirect", "tarpit", "set_header", "del_header"]
    static let redirectKeys = ["to", "code"]
    static let setHeaderKeys = ["name", "value"]
    /// What a redirect may answer with.
    static let redirectCodes = [301, 302, 303, 307, 308]

    // MARK: ACLs

    /// `acls: { NAME: { criterion: value, ... }, ... }`, in file order.
    ///
    /// Two ACLs with the same name cannot reach this point: a repeated key in a mapping is
    /// already a YAML error, reported by `ConfigLoader` with its line.
    func parseACLs(_ reader: YAMLNodeReader) -> (acls: [ACL], names: NameRegistry?) {
        guard let mapping = reader.mapping(allowedKeys: nil) else { return ([], nil) }
        var names = NameRegistry(kind: "ACL")
        var acls: [ACL] = []
        for entry in mapping.entries {
            names.record(entry.key, at: entry.value)
            if let error = ConfigName.error(in: entry.key, kind: names.kind) {
                diagnostics.report(error, path: entry.value.path, line: entry.keyLine)
            }
            if let criteria = parseCriteria(entry.value) {
                acls.append(ACL(name: entry.key, criteria: criteria))
            }
        }
        return (acls, names)
    }

    private func parseCriteria(_ reader: YAMLNodeReader) -> [ACLCriterion]? {
        guard let mapping = reader.mapping(allowedKeys: Self.criterionKeys) else { return nil }
        // An ACL without criteria would match every request, which is never what a
        // half-written ACL means. (Only unknown keys: already reported as such.)
        if mapping.keyCountInFile == 0 {
            reader.report("an ACL needs at least one criterion: \(Self.criterionKeys.joined(separator: ", "))")
            return nil
        }
        var criteria: [ACLCriterion] = []
        for entry in mapping.entries {
            let value = entry.value
            let criterion: ACLCriterion? =
                switch entry.key {
                case "path_prefix":
                    parseValues(value, expected: "a path or a list of paths", normalize: checkPath)
                        .map(ACLCriterion.pathPrefix)
                case "path":
                    parseValues(value, expected: "a path or a list of paths", normalize: checkPath)
                        .map(ACLCriterion.path)
                case "path_regex":
                    parsePathRegex(value)
                case "host":
                    parseValues(value, expected: "a host name or a list of host names", normalize: normalizeHost)
                        .map(ACLCriterion.host)
                case "method":
                    parseValues(value, expected: "a method or a list of methods", normalize: normalizeMethod)
                        .map(ACLCriterion.method)
                case "header":
                    parseHeaderCriterion(value)
                case "src":
                    parseSources(value)
                case "sni":
                    parseValues(value, expected: "a host name or a list of host names", normalize: normalizeHost)
                        .map(ACLCriterion.serverName)
                case "alpn":
                    parseValues(value, expected: "a protocol name or a list of them", normalize: checkProtocolName)
                        .map(ACLCriterion.applicationProtocol)
                default:
                    nil  // unreachable: the mapping only has allowed keys
                }
            if let criterion {
                criteria.append(criterion)
            }
        }
        return criteria
    }

    /// A string or a list of strings, each checked (and possibly rewritten) by `normalize`,
    /// which reports at the element it rejects and returns `nil`.
    private func parseValues(
        _ reader: YAMLNodeReader,
        expected: String,
        normalize: (String, YAMLNodeReader) -> String?
    ) -> [String]? {
        guard let items = reader.scalarOrSequence(expected: expected) else { return nil }
        guard !items.isEmpty else {
            reader.report("must list at least one value")
            return nil
        }
        var values: [String] = []
        for item in items {
            if let text = item.nonEmptyString(), let value = normalize(text, item) {
                values.append(value)
            }
        }
        return values.count == items.count ? values : nil
    }

    /// Paths are compared with the request path, which always starts with "/"; a value
    /// without it could never match.
    private func checkPath(_ path: String, at reader: YAMLNodeReader) -> String? {
        guard path.hasPrefix("/") else {
            reader.report("\(quoted(path)) must start with \"/\"")
            return nil
        }
        return path
    }

    /// Host names are case-insensitive, so they are kept lower-cased. A leading `*.`
    /// stands for any subdomain. An IPv6 literal may be written as in the Host header
    /// (`[::1]`) or bare; it is kept bare, the way the data plane compares it once it has
    /// taken the port and the brackets off the header.
    private func normalizeHost(_ host: String, at reader: YAMLNodeReader) -> String? {
        let lowercased = host.lowercased()
        if lowercased.hasPrefix("["), lowercased.hasSuffix("]") {
            let address = lowercased.dropFirst().dropLast()
            if parseIPv6(address) != nil {
                return String(address)
            }
        } else if parseIPv6(lowercased[...]) != nil {
            return lowercased
        }
        var name = Substring(lowercased)
        if name.hasPrefix("*.") {
            name = name.dropFirst(2)
        }
        if name.contains(":") {
            reader.report("\(quoted(host)) has a port; the Host header is compared without its port")
            return nil
        }
        guard HostAndPort.isValidHostName(name) else {
            reader.report("\(quoted(host)) is not a valid host name")
            return nil
        }
        return lowercased
    }

    /// An ALPN protocol ID (`h2`, `http/1.1`, `mqtt`) is 1…255 bytes (RFC 7301 §3.1).
    private func checkProtocolName(_ name: String, at reader: YAMLNodeReader) -> String? {
        guard name.utf8.count <= 255 else {
            reader.report("\(quoted(name)) is longer than an ALPN protocol name can be (255 bytes)")
            return nil
        }
        return name
    }

    /// Methods are case-sensitive tokens in HTTP, and always upper-case in practice;
    /// upper-casing here saves users from a `post` that would never match.
    private func normalizeMethod(_ method: String, at reader: YAMLNodeReader) -> String? {
        guard isHTTPToken(method) else {
            reader.report("\(quoted(method)) is not a valid HTTP method")
            return nil
        }
        return method.uppercased()
    }

    /// The pattern is compiled once here, so that the data plane can rely on it compiling.
    private func parsePathRegex(_ reader: YAMLNodeReader) -> ACLCriterion? {
        guard let pattern = reader.nonEmptyString() else { return nil }
        do {
            _ = try Regex(pattern)
            return .pathRegex(pattern)
        } catch {
            reader.report("\(quoted(pattern)) is not a valid regular expression: \(error)")
            return nil
        }
    }

    /// `header: { name: X-Beta, equals: "1" }`, with exactly one way to match.
    private func parseHeaderCriterion(_ reader: YAMLNodeReader) -> ACLCriterion? {
        guard let mapping = reader.mapping(allowedKeys: Self.headerKeys) else { return nil }
        var name: String?
        if let nameReader = mapping.required("name"), let text = nameReader.nonEmptyString() {
            if isHTTPToken(text) {
                name = text
            } else {
                nameReader.report("\(quoted(text)) is not a valid header name")
            }
        }

        let matchEntries = mapping.entries.filter { Self.headerMatchKeys.contains($0.key) }
        let choices = Self.headerMatchKeys.joined(separator: ", ")
        guard let matchEntry = matchEntries.first else {
            reader.report("a header criterion needs one of: \(choices)")
            return nil
        }
        for extra in matchEntries.dropFirst() {
            diagnostics.report(
                "a header criterion takes only one of: \(choices)",
                path: extra.value.path,
                line: extra.keyLine
            )
        }
        let value = matchEntry.value
        let match: HeaderMatch? =
            switch matchEntry.key {
            // An empty `equals` is meaningful (header present with an empty value); an empty
            // prefix or substring would match any value, which `exists: true` says better.
            case "equals": value.string().map { .equals($0) }
            case "prefix": value.nonEmptyString().map { .prefix($0) }
            case "contains": value.nonEmptyString().map { .contains($0) }
            case "exists": value.bool().map { .exists($0) }
            default: nil  // unreachable: only match keys were kept
            }
        guard let name, let match, matchEntries.count == 1 else { return nil }
        return .header(name: name, match: match)
    }

    /// `src: ["10.0.0.0/8", "::1"]`.
    private func parseSources(_ reader: YAMLNodeReader) -> ACLCriterion? {
        parseCIDRBlocks(reader).map(ACLCriterion.source)
    }

    /// A CIDR block or a list of them (at least one), each reported where it is not one.
    func parseCIDRBlocks(_ reader: YAMLNodeReader) -> [CIDRBlock]? {
        guard let items = reader.scalarOrSequence(expected: "a CIDR block or a list of CIDR blocks") else { return nil }
        guard !items.isEmpty else {
            reader.report("must list at least one value")
            return nil
        }
        var blocks: [CIDRBlock] = []
        for item in items {
            guard let text = item.nonEmptyString() else { continue }
            guard let block = CIDRBlock(parsing: text) else {
                item.report(
                    "\(quoted(text)) is not a valid CIDR block (expected e.g. 10.0.0.0/8, 2001:db8::/32 or a single address)"
                )
                continue
            }
            blocks.append(block)
        }
        return blocks.count == items.count ? blocks : nil
    }

    // MARK: Rules

    /// `{ ACTION, if: [ACL...], unless: [ACL...] }`, ACTION one of `use_backend: NAME`,
    /// `deny: STATUS`, `redirect: { to: URL, code: 301 }`, `tarpit: DURATION`,
    /// `set_header: { name: N, value: V }`, `del_header: NAME`.
    func parseRule(_ reader: YAMLNodeReader, aclNames: NameRegistry?, backendNames: NameRegistry?) -> Rule? {
        guard let mapping = reader.mapping(allowedKeys: Self.ruleKeys) else { return nil }
        let actionEntries = mapping.entries.filter { Self.ruleActionKeys.contains($0.key) }
        if actionEntries.isEmpty {
            reader.report("a rule needs an action: \(Self.ruleActionKeys.joined(separator: ", "))")
        }
        for extra in actionEntries.dropFirst() {
            diagnostics.report(
                "a rule takes exactly one action (\(Self.ruleActionKeys.joined(separator: ", ")))",
                path: extra.value.path,
                line: extra.keyLine
            )
        }
        // Every action is checked, so a rule with two actions still has both values vetted.
        var actions: [RuleAction] = []
        for entry in actionEntries {
            switch entry.key {
            case "use_backend":
                if let backend = entry.value.nonEmptyString() {
                    checkReference(backend, at: entry.value, in: backendNames)
                    actions.append(.useBackend(backend))
                }
            case "redirect":
                if let redirect = entry.value.mapping(allowedKeys: Self.redirectKeys) {
                    let code =
                        redirect["code"].map { reader -> Int? in
                            guard let code = reader.integer(in: 300...399) else { return nil }
                            guard Self.redirectCodes.contains(code) else {
                                reader.report("a redirect's code is one of \(Self.redirectCodes.map(String.init).joined(separator: ", "))")
                                return nil
                            }
                            return code
                        } ?? 302
                    if let to = redirect.required("to")?.nonEmptyString(), let code {
                        actions.append(.redirect(to: to, code: code))
                    }
                }
            case "tarpit":
                if let duration = entry.value.duration() {
                    actions.append(.tarpit(duration))
                }
            case "set_header":
                if let header = entry.value.mapping(allowedKeys: Self.setHeaderKeys),
                    let name = header.required("name").flatMap({ parseHeaderName($0) }),
                    let value = header.required("value")?.string()
                {
                    if value.contains(where: { $0 == "\r" || $0 == "\n" }) {
                        header["value"]?.report("a header value cannot contain a line break")
                    } else {
                        actions.append(.setHeader(name: name, value: value))
                    }
                }
            case "del_header":
                if let name = parseHeaderName(entry.value) {
                    actions.append(.deleteHeader(name))
                }
            default:
                if let status = entry.value.errorStatus() {
                    actions.append(.deny(status: status))
                }
            }
        }
        let ifACLs = mapping["if"].flatMap { parseACLReferences($0, aclNames: aclNames) } ?? []
        let unlessACLs = mapping["unless"].flatMap { parseACLReferences($0, aclNames: aclNames) } ?? []
        guard actions.count == 1, let action = actions.first else { return nil }
        return Rule(action: action, ifACLs: ifACLs, unlessACLs: unlessACLs)
    }

    /// A header name (an HTTP token); the ones Fulcrum manages itself cannot be set or removed
    /// by a rule (framing and hop-by-hop headers, and the forwarding headers it writes).
    private func parseHeaderName(_ reader: YAMLNodeReader) -> String? {
        guard let name = reader.nonEmptyString() else { return nil }
        guard isHTTPToken(name) else {
            reader.report("\(quoted(name)) is not a valid header name")
            return nil
        }
        let managed = ["host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer"]
        guard !managed.contains(name.lowercased()) else {
            reader.report("\(name) is managed by Fulcrum and cannot be changed by a rule")
            return nil
        }
        return name
    }

    /// `if: [a, b]` or `if: a`. An empty list is allowed and sets no condition.
    func parseACLReferences(_ reader: YAMLNodeReader, aclNames: NameRegistry?) -> [String]? {
        guard let items = reader.scalarOrSequence(expected: "an ACL name or a list of ACL names") else { return nil }
        var names: [String] = []
        for item in items {
            guard let name = item.nonEmptyString() else { continue }
            checkReference(name, at: item, in: aclNames)
            names.append(name)
        }
        return names
    }
}

/// An RFC 9110 token: what a method or a header name may consist of.
func isHTTPToken(_ text: String) -> Bool {
    !text.isEmpty && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "!#$%&'*+-.^_`|~".contains($0)) }
}
