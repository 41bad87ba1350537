/// A per-client request limit of a frontend (`frontends[].rate_limits.NAME`), HAProxy's stick
/// tables and nginx's `limit_req` in one line: `{ key: src, rate: 100/10s, burst: 50 }`.
package struct RateLimitConfig: Sendable, Equatable {
    /// What identifies a client.
    package enum Key: Sendable, Equatable {
        /// The client's address (`src`).
        case source
        /// A request header's value (`header:X-Api-Key`); requests without it are not limited.
        case header(String)
        /// A cookie's value (`cookie:session`); requests without it are not limited.
        case cookie(String)
    }

    /// What a request over the limit gets.
    package enum Action: String, Sendable, Equatable, CaseIterable {
        /// `429 Too Many Requests` with `Retry-After` (the default).
        case reject
        /// Held for `tarpit` (default 10s), then `429`, and the connection closed.
        case tarpit
        /// `403 Forbidden`.
        case deny
    }

    package var name: String
    package var key: Key
    /// Requests allowed per `period` on average.
    package var requests: Int
    package var period: Duration
    /// Requests allowed beyond the rate in a burst (default 0).
    package var burst = 0
    /// Clients tracked at most, per event loop; the least recently seen are forgotten first, so
    /// a flood of spoofed keys cannot exhaust memory (default 100000).
    package var maxEntries = 100_000
    package var action = Action.reject
    package var tarpit: Duration = .seconds(10)
    /// Counted in `global.store` for every instance at once (`shared: true`), rather than by
    /// this instance alone.
    package var shared = false
    package var ifACLs: [String] = []
    package var unlessACLs: [String] = []

    package init(name: String, key: Key, requests: Int, period: Duration) {
        self.name = name
        self.key = key
        self.requests = requests
        self.period = period
    }
}

/// A frontend's anti-bot shield (`frontends[].antibot`).
package struct AntibotConfig: Sendable, Equatable {
    package enum Mode: String, Sendable, Equatable, CaseIterable {
        /// Nothing is checked.
        case off
        /// Suspicious requests are counted and logged with their reasons, and served.
        case monitor
        /// Suspicious requests without a valid clearance cookie get the proof-of-work page.
        case challenge
        /// Suspicious requests get `403`.
        case block
    }

    package var mode: Mode
    /// Leading zero bits the proof of work needs (default 16: ~65,000 hashes, well under a
    /// second in a browser).
    package var difficulty = 16
    /// How long a clearance cookie is valid (default 1h).
    package var cookieTTL: Duration = .seconds(3600)
    /// The environment variable with the key cookies and challenges are signed with; without
    /// one, a random key per process (cookies then end with the process).
    package var secretEnvironmentVariable: String?
    /// A request whose score reaches this is suspicious (default 50; 0: every request).
    package var threshold = 50
    /// A client (by address) sending more than this is `over-rate` for the heuristics
    /// (default 100 in any 10 s).
    package var rate = RequestRate(requests: 100, period: .seconds(10))
    /// `rate` counted in `global.store` for every instance at once (`shared: true`).
    package var sharedRate = false
    /// Clients never checked.
    package var allowSources: [CIDRBlock] = []
    /// `allow.src_file`: a file of addresses and CIDR blocks never checked (absolute path), and
    /// what it listed when the configuration was loaded.
    package var allowSourceFile: AddressListFile?
    /// Crawlers let through when forward-confirmed reverse DNS says the address is theirs.
    package var verifiedBots: [VerifiedBot] = []
    /// User-Agent patterns (regular expressions) that make a request suspicious on their own.
    package var denyUserAgents: [String] = []
    package var ifACLs: [String] = []
    package var unlessACLs: [String] = []

    package init(mode: Mode) {
        self.mode = mode
    }
}

/// `N/period`: at most N requests in any such window.
package struct RequestRate: Sendable, Equatable {
    package var requests: Int
    package var period: Duration

    package init(requests: Int, period: Duration) {
        self.requests = requests
        self.period = period
    }
}

/// A file of addresses and CIDR blocks, one per line (`#` starts a comment), read when the
/// configuration is loaded — so on every reload too.
package struct AddressListFile: Sendable, Equatable {
    /// The file, made absolute against the configuration file's directory.
    package var path: String
    /// What it listed.
    package var blocks: [CIDRBlock]

    package init(path: String, blocks: [CIDRBlock]) {
        self.path = path
        self.blocks = blocks
    }
}

/// A crawler that `antibot.allow.verified_bots` lets through, but only from addresses whose
/// reverse-DNS name ends in one of its operator's `domains` and resolves back to the same
/// address (forward-confirmed reverse DNS, the check the search engines document); a
/// User-Agent alone proves nothing.
package struct VerifiedBot: Sendable, Equatable {
    package var name: String
    /// A regular expression (ICU syntax) that the crawler's User-Agent matches.
    package var userAgent: String
    /// Domains its addresses' names end in (`googlebot.com` covers `crawl-66-249-66-1.googlebot.com`).
    package var domains: [String]

    package init(name: String, userAgent: String, domains: [String]) {
        self.name = name
        self.userAgent = userAgent
        self.domains = domains
    }

    /// The crawlers known by name, with the User-Agent tokens and domains their operators
    /// publish for this check (Google, Microsoft, Apple, Yandex, Baidu).
    package static let builtIn: [VerifiedBot] = [
        VerifiedBot(
            name: "googlebot",
            userAgent:
                #"(?i)\b(googlebot|google-inspectiontool|googleother|storebot-google|adsbot-google|mediapartners-google|apis-google|feedfetcher-google)\b"#,
            domains: ["googlebot.com", "google.com", "googleusercontent.com"]
        ),
        VerifiedBot(name: "bingbot", userAgent: #"(?i)\b(bingbot|adidxbot|bingpreview|msnbot)\b"#, domains: ["search.msn.com"]),
        VerifiedBot(name: "applebot", userAgent: #"(?i)\bapplebot\b"#, domains: ["applebot.apple.com"]),
        VerifiedBot(name: "yandexbot", userAgent: #"(?i)\byandex"#, domains: ["yandex.ru", "yandex.net", "yandex.com"]),
        VerifiedBot(name: "baiduspider", userAgent: #"(?i)\bbaiduspider\b"#, domains: ["baidu.com", "baidu.jp"]),
    ]
}
