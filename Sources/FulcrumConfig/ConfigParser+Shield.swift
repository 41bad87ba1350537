internal import Foundation
internal import Yams

extension ConfigParser {
    static let rateLimitKeys = ["key", "rate", "burst", "max_entries", "action", "tarpit", "shared", "if", "unless"]
    static let antibotKeys = ["mode", "challenge", "threshold", "rate", "shared", "allow", "deny_user_agents", "if", "unless"]
    static let antibotChallengeKeys = ["difficulty", "cookie_ttl", "secret_env"]
    static let antibotAllowKeys = ["src", "src_file", "verified_bots"]
    static let verifiedBotKeys = ["name", "user_agent", "domains"]

    // MARK: Rate limits

    /// `rate_limits: { NAME: { key: src, rate: 100/10s, burst: 50, ... }, ... }`, in file order.
    func parseRateLimits(_ reader: YAMLNodeReader, aclNames: NameRegistry?) -> [RateLimitConfig] {
        guard let mapping = reader.mapping(allowedKeys: nil) else { return [] }
        return mapping.entries.compactMap { entry in
            parseRateLimit(name: entry.key, entry.value, aclNames: aclNames)
        }
    }

    private func parseRateLimit(name: String, _ reader: YAMLNodeReader, aclNames: NameRegistry?) -> RateLimitConfig? {
        guard let mapping = reader.mapping(allowedKeys: Self.rateLimitKeys) else { return nil }
        let key = mapping.required("key").flatMap(parseRateLimitKey)
        let rate = mapping.required("rate").flatMap(parseRate)
        guard let key, let rate else { return nil }
        var limit = RateLimitConfig(name: name, key: key, requests: rate.requests, period: rate.period)
        if let burst = mapping["burst"]?.integer(in: 0...1_000_000) { limit.burst = burst }
        if let entries = mapping["max_entries"]?.integer(in: 1...100_000_000) { limit.maxEntries = entries }
        if let action = mapping["action"]?.choice(RateLimitConfig.Action.self, named: "rate-limit action") {
            limit.action = action
        }
        if let tarpit = mapping["tarpit"]?.duration() { limit.tarpit = tarpit }
        if let reader = mapping["shared"], let shared = reader.bool() {
            limit.shared = shared
            if shared, !storeConfigured {
                reader.report("a shared limit needs global.store (e.g. store: { redis: \"redis://127.0.0.1:6379/0\" })")
            }
        }
        limit.ifACLs = mapping["if"].flatMap { parseACLReferences($0, aclNames: aclNames) } ?? []
        limit.unlessACLs = mapping["unless"].flatMap { parseACLReferences($0, aclNames: aclNames) } ?? []
        return limit
    }

    /// `src`, `header:NAME` or `cookie:NAME`.
    private func parseRateLimitKey(_ reader: YAMLNodeReader) -> RateLimitConfig.Key? {
        guard let text = reader.nonEmptyString() else { return nil }
        if text == "src" { return .source }
        for (prefix, make) in [("header:", RateLimitConfig.Key.header), ("cookie:", RateLimitConfig.Key.cookie)] {
            guard text.hasPrefix(prefix) else { continue }
            let name = String(text.dropFirst(prefix.count))
            guard isHTTPToken(name) else {
                reader.report("\(quoted(name)) is not a valid \(prefix.dropLast()) name")
                return nil
            }
            return make(name)
        }
        reader.report("\(quoted(text)) is not a rate-limit key (expected src, header:NAME or cookie:NAME)")
        return nil
    }

    /// `100/10s`: requests per period.
    private func parseRate(_ reader: YAMLNodeReader) -> (requests: Int, period: Duration)? {
        guard let text = reader.nonEmptyString() else { return nil }
        let parts = text.split(separator: "/", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, let requests = Int(parts[0]), requests >= 1,
            let period = parseDuration(parts[1]), period > .zero
        else {
            reader.report("\(quoted(text)) is not a rate (expected requests/period, e.g. 100/10s, 5/1m)")
            return nil
        }
        return (requests, period)
    }

    // MARK: Anti-bot

    /// `antibot: { mode: challenge, challenge: {...}, threshold: 50, allow: { src: [...] }, ... }`.
    func parseAntibot(_ reader: YAMLNodeReader, aclNames: NameRegistry?) -> AntibotConfig? {
        guard let mapping = reader.mapping(allowedKeys: Self.antibotKeys) else { return nil }
        // Everything is checked even when the mode is missing or wrong: every problem at once.
        let mode = mapping.required("mode")?.choice(AntibotConfig.Mode.self, named: "anti-bot mode")
        var antibot = AntibotConfig(mode: mode ?? .off)
        if let challenge = mapping["challenge"]?.mapping(allowedKeys: Self.antibotChallengeKeys) {
            if let difficulty = challenge["difficulty"]?.integer(in: 1...32) { antibot.difficulty = difficulty }
            if let ttl = challenge["cookie_ttl"]?.duration() { antibot.cookieTTL = ttl }
            if let variable = challenge["secret_env"]?.nonEmptyString() { antibot.secretEnvironmentVariable = variable }
        }
        if let threshold = mapping["threshold"]?.integer(in: 0...1000) { antibot.threshold = threshold }
        if let rate = mapping["rate"].flatMap(parseRate) {
            antibot.rate = RequestRate(requests: rate.requests, period: rate.period)
        }
        if let reader = mapping["shared"], let shared = reader.bool() {
            antibot.sharedRate = shared
            if shared, !storeConfigured {
                reader.report("a shared rate needs global.store (e.g. store: { redis: \"redis://127.0.0.1:6379/0\" })")
            }
        }
        if let allow = mapping["allow"]?.mapping(allowedKeys: Self.antibotAllowKeys) {
            antibot.allowSources = allow["src"].flatMap(parseCIDRBlocks) ?? []
            antibot.allowSourceFile = allow["src_file"].flatMap(parseAddressListFile)
            antibot.verifiedBots = allow["verified_bots"].flatMap(parseVerifiedBots) ?? []
        }
        if let patterns = mapping["deny_user_agents"]?.scalarOrSequence(expected: "a pattern or a list of patterns") {
            for item in patterns {
                guard let pattern = item.nonEmptyString() else { continue }
                guard (try? NSRegularExpression(pattern: pattern)) != nil else {
                    item.report("\(quoted(pattern)) is not a valid regular expression")
                    continue
                }
                antibot.denyUserAgents.append(pattern)
            }
        }
        antibot.ifACLs = mapping["if"].flatMap { parseACLReferences($0, aclNames: aclNames) } ?? []
        antibot.unlessACLs = mapping["unless"].flatMap { parseACLReferences($0, aclNames: aclNames) } ?? []
        return mode == nil ? nil : antibot
    }

    /// `src_file: PATH`: read now, every line an address or CIDR block; every bad line reported.
    private func parseAddressListFile(_ reader: YAMLNodeReader) -> AddressListFile? {
        guard let written = reader.nonEmptyString() else { return nil }
        let path = resolve(written)
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            reader.report("\(quoted(written)) cannot be read as a text file (\(path))")
            return nil
        }
        var blocks: [CIDRBlock] = []
        var valid = true
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let entry = line.prefix { $0 != "#" }.trimmingCharacters(in: .whitespaces)
            guard !entry.isEmpty else { continue }
            guard let block = CIDRBlock(parsing: entry) else {
                reader.report("\(quoted(written)) line \(index + 1): \(quoted(entry)) is not an address or CIDR block")
                valid = false
                continue
            }
            blocks.append(block)
        }
        return valid ? AddressListFile(path: path, blocks: blocks) : nil
    }

    /// `verified_bots: [googlebot, { name: intranet, user_agent: "(?i)crawler", domains: [crawl.example.net] }]`.
    private func parseVerifiedBots(_ reader: YAMLNodeReader) -> [VerifiedBot]? {
        guard let items = reader.scalarOrSequence(expected: "a crawler's name or a list of crawlers") else { return nil }
        var names = NameRegistry(kind: "verified bot")
        var bots: [VerifiedBot] = []
        for item in items {
            if case .mapping = item.node {
                guard let mapping = item.mapping(allowedKeys: Self.verifiedBotKeys) else { continue }
                let name = parseName(mapping.required("name"), into: &names)
                let pattern = mapping.required("user_agent")?.nonEmptyString()
                if let pattern, (try? NSRegularExpression(pattern: pattern)) == nil {
                    mapping["user_agent"]?.report("\(quoted(pattern)) is not a valid regular expression")
                }
                let domains = mapping.required("domains")?.scalarOrSequence(expected: "a domain or a list of domains")?
                    .compactMap { domain -> String? in
                        guard let text = domain.nonEmptyString()?.lowercased() else { return nil }
                        guard isDomainName(text) else {
                            domain.report("\(quoted(text)) is not a domain name")
                            return nil
                        }
                        return text
                    }
                if let name, let pattern, let domains, !domains.isEmpty {
                    bots.append(VerifiedBot(name: name, userAgent: pattern, domains: domains))
                }
            } else if let name = item.nonEmptyString() {
                names.record(name, at: item)
                guard let bot = VerifiedBot.builtIn.first(where: { $0.name == name.lowercased() }) else {
                    let known = VerifiedBot.builtIn.map(\.name).joined(separator: ", ")
                    item.report("unknown crawler \(quoted(name)) (known: \(known); or give { name, user_agent, domains })")
                    continue
                }
                bots.append(bot)
            }
        }
        return bots
    }

    /// Letters, digits and hyphens in dot-separated labels (what a PTR name ends in).
    private func isDomainName(_ text: String) -> Bool {
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        return !text.isEmpty && text.count <= 253
            && labels.allSatisfy { label in
                !label.isEmpty && label.count <= 63 && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
            }
    }
}
