import Crypto
internal import Foundation
import FulcrumConfig
import FulcrumShield
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// A frontend's rate limits and anti-bot shield, compiled once per snapshot and shared by the
/// event loops, limiters included: each counts for every loop, so a limit is exact. A limit
/// that a reload keeps unchanged keeps its limiter, and what it counted.
final class FrontendShield: Sendable {
    /// Where the challenge page sends its answer (a GET, so the answer needs no body).
    static let verifyPath = "/.fulcrum/verify"

    struct Limit: Sendable {
        let config: RateLimitConfig
        let condition: Router.Condition
        let limiter: SharedRateLimiter
        /// What the store needs, when the limit is `shared`.
        let shared: SharedLimitStore.Limit?

        /// The client's key for this limit; nil: the request has none (not limited).
        func key(for head: HTTPRequestHead, client: ClientInfo) -> String? {
            switch config.key {
            case .source: return client.addressText
            case .header(let name): return head.headers.first(name: name)
            case .cookie(let name): return RequestFields.cookie(name, in: head.headers)
            }
        }
    }

    struct Antibot: Sendable {
        let config: AntibotConfig
        let condition: Router.Condition
        let heuristics: BotHeuristics
        let cookie: ClearanceCookie
        let proofOfWork: ProofOfWork
        let cookieTTLSeconds: UInt64
        /// `rate`, as a limit on the client's address (for the `over-rate` signal).
        let rateLimit: RateLimitConfig
        let rateLimiter: SharedRateLimiter
        /// What the store needs, when `rate` is `shared`.
        let sharedRate: SharedLimitStore.Limit?
        /// The listed crawlers with their compiled User-Agent patterns.
        let crawlers: [(bot: VerifiedBot, userAgent: NSRegularExpression)]
        /// Every crawler's pattern in one, so a request that claims none costs one scan.
        let anyCrawler: NSRegularExpression?

        /// `allow.src` and `allow.src_file`.
        func allows(_ client: ClientInfo) -> Bool {
            guard let bytes = client.addressBytes else { return false }
            return config.allowSources.contains { $0.contains(bytes) }
                || (config.allowSourceFile?.blocks.contains { $0.contains(bytes) } ?? false)
        }

        /// The listed crawlers whose User-Agent pattern `userAgent` matches (usually none).
        func crawlers(claimedBy userAgent: String) -> [VerifiedBot] {
            guard let anyCrawler, !userAgent.isEmpty else { return [] }
            let scanned = NSRange(location: 0, length: min(userAgent.utf16.count, BotHeuristics.scannedUserAgentLength))
            guard anyCrawler.rangeOfFirstMatch(in: userAgent, range: scanned).location != NSNotFound else { return [] }
            return crawlers.filter { $0.userAgent.rangeOfFirstMatch(in: userAgent, range: scanned).location != NSNotFound }.map(\.bot)
        }

        /// The claimed crawler whose domains `hostname` (forward-confirmed) is in, if any.
        static func crawler(in claimed: [VerifiedBot], confirmedBy hostname: String?) -> VerifiedBot? {
            guard let hostname else { return nil }
            return claimed.first { bot in bot.domains.contains { CrawlerVerifier.hostname(hostname, isIn: $0) } }
        }
    }

    let limits: [Limit]
    let antibot: Antibot?

    /// The shared limit a check names: a rate limit, or (the index after them) the anti-bot
    /// shield's `rate`.
    func sharedLimit(at index: Int) -> SharedLimitStore.Limit? {
        if limits.indices.contains(index) { return limits[index].shared }
        return index == limits.count ? antibot?.sharedRate : nil
    }

    /// Nil when the frontend has neither rate limits nor an active anti-bot shield.
    ///
    /// - Parameter previous: the frontend's shield before a reload; its limiters are kept for
    ///   the limits that are configured the same.
    static func compile(_ config: FrontendConfig, router: Router, previous: FrontendShield? = nil) throws -> FrontendShield? {
        let limits = try config.rateLimits.map { limit in
            Limit(
                config: limit,
                condition: try router.condition(if: limit.ifACLs, unless: limit.unlessACLs),
                limiter: previous?.limits.first { $0.config == limit }?.limiter ?? Self.limiter(for: limit),
                shared: limit.shared ? SharedLimitStore.Limit(limit, frontend: config.name, storeName: "ratelimit:\(limit.name)") : nil
            )
        }
        var antibot: Antibot?
        if let settings = config.antibot, settings.mode != .off {
            let key = try Self.key(settings, frontend: config.name)
            let rateLimit = RateLimitConfig(
                name: "antibot",
                key: .source,
                requests: settings.rate.requests,
                period: settings.rate.period
            )
            antibot = Antibot(
                config: settings,
                condition: try router.condition(if: settings.ifACLs, unless: settings.unlessACLs),
                heuristics: try BotHeuristics(
                    denyList: BotHeuristics.defaultDenyList + settings.denyUserAgents,
                    threshold: settings.threshold
                ),
                cookie: ClearanceCookie(key: key),
                proofOfWork: ProofOfWork(key: key),
                cookieTTLSeconds: UInt64(settings.cookieTTL.components.seconds),
                rateLimit: rateLimit,
                rateLimiter: previous?.antibot.flatMap { $0.rateLimit == rateLimit ? $0.rateLimiter : nil }
                    ?? Self.limiter(for: rateLimit),
                sharedRate: settings.sharedRate ? SharedLimitStore.Limit(rateLimit, frontend: config.name, storeName: "antibot:rate") : nil,
                crawlers: try settings.verifiedBots.map { ($0, try NSRegularExpression(pattern: $0.userAgent)) },
                anyCrawler: settings.verifiedBots.isEmpty
                    ? nil
                    : try NSRegularExpression(pattern: settings.verifiedBots.map { "(?:\($0.userAgent))" }.joined(separator: "|"))
            )
        }
        guard !limits.isEmpty || antibot != nil else { return nil }
        return FrontendShield(limits: limits, antibot: antibot)
    }

    /// `rate: 100/10s` means what HAProxy and most people read in it: 100 requests in any 10 s,
    /// the window sliding (one more every 100 ms); `burst` adds to that.
    private static func limiter(for config: RateLimitConfig) -> SharedRateLimiter {
        SharedRateLimiter(
            rate: config.requests,
            period: UInt64(TimeAmount(config.period).nanoseconds),
            burst: config.requests - 1 + config.burst,
            maxEntries: config.maxEntries
        )
    }

    private init(limits: [Limit], antibot: Antibot?) {
        self.limits = limits
        self.antibot = antibot
    }

    /// The signing key: from `secret_env`, or one random key per process (so cookies survive
    /// reloads, but not a restart).
    private static func key(_ settings: AntibotConfig, frontend: String) throws -> SymmetricKey {
        guard let variable = settings.secretEnvironmentVariable else { return processKey }
        guard let secret = ProcessInfo.processInfo.environment[variable], secret.utf8.count >= 16 else {
            throw StartupError.missingSecret(frontend: frontend, variable: variable)
        }
        return SymmetricKey(data: SHA256.hash(data: Data(secret.utf8)))
    }

    private static let processKey = SymmetricKey(size: .bits256)
}
