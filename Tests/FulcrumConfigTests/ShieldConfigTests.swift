import FulcrumConfig
import Testing

/// `frontends[].rate_limits` and `frontends[].antibot`.
@Suite struct ShieldConfigTests {
    private static func frontend(_ extra: String) -> String {
        """
        frontends:
          - name: public
            listen: "127.0.0.1:8080"
            acls: { login_path: { path: /login }, api: { path_prefix: /api/ } }
        \(extra)
            default_backend: web
        backends:
          - name: web
            servers: [{ name: web1, address: "127.0.0.1:9001" }]
        """
    }

    @Test("rate limits: keys, rates, burst, actions, conditions; defaults")
    func rateLimits() throws {
        let config = try ConfigLoader.load(
            yaml: Self.frontend(
                """
                    rate_limits:
                      per_ip: { key: src, rate: 100/10s, burst: 50 }
                      login: { key: src, rate: 5/1m, if: [login_path], action: tarpit, tarpit: 2s }
                      keys: { key: "header:X-Api-Key", rate: 10/1s, action: deny, max_entries: 500 }
                      sessions: { key: "cookie:session", rate: 1/100ms }
                """
            )
        )
        let limits = config.frontends[0].rateLimits
        #expect(limits.map(\.name) == ["per_ip", "login", "keys", "sessions"])
        #expect(limits[0].key == .source)
        #expect(limits[0].requests == 100 && limits[0].period == .seconds(10) && limits[0].burst == 50)
        #expect(limits[0].action == .reject && limits[0].maxEntries == 100_000)
        #expect(limits[1].ifACLs == ["login_path"] && limits[1].action == .tarpit && limits[1].tarpit == .seconds(2))
        #expect(limits[2].key == .header("X-Api-Key") && limits[2].action == .deny && limits[2].maxEntries == 500)
        #expect(limits[3].key == .cookie("session") && limits[3].period == .milliseconds(100))
    }

    @Test("rate limits: every bad value is reported with its place")
    func badRateLimits() {
        let errors = loadErrors(
            Self.frontend(
                """
                    rate_limits:
                      a: { key: ip, rate: 100/10s }
                      b: { key: src, rate: 100 }
                      c: { key: src, rate: 0/1s }
                      d: { key: "header:X Y", rate: 1/1s }
                      e: { key: src, rate: 1/1s, action: drop, if: [nope] }
                      f: { rate: 1/1s }
                """
            )
        )
        #expect(
            errors == [
                #"frontends[0].rate_limits.a.key (line 6): "ip" is not a rate-limit key (expected src, header:NAME or cookie:NAME)"#,
                #"frontends[0].rate_limits.b.rate (line 7): "100" is not a rate (expected requests/period, e.g. 100/10s, 5/1m)"#,
                #"frontends[0].rate_limits.c.rate (line 8): "0/1s" is not a rate (expected requests/period, e.g. 100/10s, 5/1m)"#,
                #"frontends[0].rate_limits.d.key (line 9): "X Y" is not a valid header name"#,
                #"frontends[0].rate_limits.e.action (line 10): unknown rate-limit action "drop"; expected one of: reject, tarpit, deny"#,
                #"frontends[0].rate_limits.e.if[0] (line 10): undefined ACL "nope"; defined ACLs: login_path, api"#,
                #"frontends[0].rate_limits.f.key (line 11): required key "key" is missing"#,
            ]
        )
    }

    @Test("antibot: mode, challenge settings, threshold, allow list, patterns, conditions")
    func antibot() throws {
        let config = try ConfigLoader.load(
            yaml: Self.frontend(
                """
                    antibot:
                      mode: challenge
                      challenge: { difficulty: 12, cookie_ttl: 30m, secret_env: SHIELD_KEY }
                      threshold: 0
                      allow: { src: ["192.0.2.0/24"] }
                      deny_user_agents: ['(?i)python-requests|scrapy|curl/']
                      unless: api
                """
            )
        )
        let antibot = try #require(config.frontends[0].antibot)
        #expect(antibot.mode == .challenge && antibot.difficulty == 12 && antibot.cookieTTL == .seconds(1800))
        #expect(antibot.secretEnvironmentVariable == "SHIELD_KEY" && antibot.threshold == 0)
        #expect(antibot.allowSources.count == 1 && antibot.denyUserAgents.count == 1 && antibot.unlessACLs == ["api"])
        let defaults = try #require(try ConfigLoader.load(yaml: Self.frontend("    antibot: { mode: monitor }")).frontends[0].antibot)
        #expect(defaults.difficulty == 16 && defaults.threshold == 50 && defaults.cookieTTL == .seconds(3600))
        #expect(defaults.secretEnvironmentVariable == nil)

        let errors = loadErrors(
            Self.frontend(
                """
                    antibot:
                      mode: captcha
                      challenge: { difficulty: 40 }
                      deny_user_agents: ["(unclosed"]
                """
            )
        )
        #expect(errors.count == 3, "\(errors)")
        #expect(errors[0].hasPrefix("frontends[0].antibot.mode (line 6): unknown anti-bot mode \"captcha\""))
        #expect(errors[2] == #"frontends[0].antibot.deny_user_agents[0] (line 8): "(unclosed" is not a valid regular expression"#)
    }

    @Test("antibot: the rate signal, an address-list file, and verified crawlers by name or in full")
    func verifiedCrawlers() throws {
        try withTemporaryDirectory { directory in
            try writeFile("# Google's crawlers\n66.249.64.0/19\n\n2001:4860:4801::/48   # IPv6\n192.0.2.7\n", to: "\(directory)/crawlers.txt")
            let config = try ConfigLoader.load(
                yaml: Self.frontend(
                    """
                        antibot:
                          mode: block
                          rate: 20/1s
                          allow:
                            src_file: \(directory)/crawlers.txt
                            verified_bots: [googlebot, BINGBOT, { name: lab, user_agent: "(?i)labbot", domains: [Localhost, crawl.example.net] }]
                    """
                )
            )
            let antibot = try #require(config.frontends[0].antibot)
            #expect(antibot.rate == RequestRate(requests: 20, period: .seconds(1)))
            #expect(antibot.allowSourceFile?.path == "\(directory)/crawlers.txt")
            #expect(antibot.allowSourceFile?.blocks.map(\.description) == ["66.249.64.0/19", "2001:4860:4801:0:0:0:0:0/48", "192.0.2.7/32"])
            #expect(antibot.verifiedBots.map(\.name) == ["googlebot", "bingbot", "lab"])
            #expect(antibot.verifiedBots[0].domains.contains("googlebot.com"))
            #expect(antibot.verifiedBots[2] == VerifiedBot(name: "lab", userAgent: "(?i)labbot", domains: ["localhost", "crawl.example.net"]))
            let defaults = try #require(try ConfigLoader.load(yaml: Self.frontend("    antibot: { mode: monitor }")).frontends[0].antibot)
            #expect(defaults.rate == RequestRate(requests: 100, period: .seconds(10)))
            #expect(defaults.allowSourceFile == nil && defaults.verifiedBots.isEmpty)

            try writeFile("10.0.0.0/8\nnot-an-address\n", to: "\(directory)/bad.txt")
            let errors = loadErrors(
                Self.frontend(
                    """
                        antibot:
                          mode: block
                          rate: fast
                          allow:
                            src_file: \(directory)/bad.txt
                            verified_bots: [yahoobot, { name: x, user_agent: "(", domains: ["bad_domain"] }, { name: y }]
                    """
                )
            )
            #expect(
                errors == [
                    #"frontends[0].antibot.rate (line 7): "fast" is not a rate (expected requests/period, e.g. 100/10s, 5/1m)"#,
                    "frontends[0].antibot.allow.src_file (line 9): \"\(directory)/bad.txt\" line 2: \"not-an-address\" is not an address or CIDR block",
                    #"frontends[0].antibot.allow.verified_bots[0] (line 10): unknown crawler "yahoobot" (known: googlebot, bingbot, applebot, yandexbot, baiduspider; or give { name, user_agent, domains })"#,
                    #"frontends[0].antibot.allow.verified_bots[1].user_agent (line 10): "(" is not a valid regular expression"#,
                    #"frontends[0].antibot.allow.verified_bots[1].domains[0] (line 10): "bad_domain" is not a domain name"#,
                    #"frontends[0].antibot.allow.verified_bots[2].user_agent (line 10): required key "user_agent" is missing"#,
                    #"frontends[0].antibot.allow.verified_bots[2].domains (line 10): required key "domains" is missing"#,
                ],
                "\(errors)"
            )
            let missing = loadErrors(Self.frontend("    antibot: { mode: block, allow: { src_file: \(directory)/none.txt } }"))
            #expect(
                missing == [
                    "frontends[0].antibot.allow.src_file (line 5): \"\(directory)/none.txt\" cannot be read as a text file (\(directory)/none.txt)"
                ]
            )
        }
    }
}
