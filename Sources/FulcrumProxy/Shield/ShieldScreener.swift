internal import Foundation
import FulcrumConfig
import FulcrumShield
import NIOCore
import NIOHTTP1

/// A frontend's rate limits and anti-bot shield, as one decision per request.
///
/// `screen` is a function of the request head, the client, the time and what is known of
/// crawler addresses. It returns a verdict (pass, respond, tarpit, or look the crawler up
/// first) and what to note in the access log and the shield's counters; the handler carries
/// the verdict out. The limiters it consults are shared by every loop (`SharedRateLimiter`).
struct ShieldScreener {
    /// What the shield decided.
    enum Verdict {
        /// On to the rules.
        case pass
        /// Answered: limited, blocked, challenged, or the answer to a challenge.
        case respond(LocalResponse)
        /// A rate limit with the tarpit action: hold the request, then answer.
        case tarpit(TimeAmount, status: HTTPResponseStatus)
        /// The request claims to be a listed crawler whose address is not known yet.
        case verifyCrawler(address: [UInt8])
        /// Shared rate limit `limitIndex` applies to `key`: ask the store, then screen on from
        /// its answer (`SharedLimitAnswer`). The index after the last rate limit is the
        /// anti-bot shield's shared `rate` (`FrontendShield.sharedLimit(at:)`).
        case checkSharedLimit(limitIndex: Int, key: String)
    }

    /// The store's answer about a shared limit, to screen on from.
    struct SharedLimitAnswer {
        let limitIndex: Int
        let key: String
        let outcome: SharedLimitStore.Outcome
    }

    /// A shield decision for the access log (`decision:reason`) and the counters.
    struct Note: Equatable {
        var decision: String
        var reason: String
    }

    struct Screen {
        var verdict: Verdict
        var note: Note?
        /// A line to log (a flagged request in monitor mode).
        var logLine: String?

        init(_ verdict: Verdict, note: Note? = nil, logLine: String? = nil) {
            self.verdict = verdict
            self.note = note
            self.logLine = logLine
        }
    }

    /// The moment of a screen: uptime for the limiters, wall clock for cookies and challenges.
    struct Clock {
        var uptimeNanoseconds: UInt64
        var unixSeconds: UInt64

        static var now: Clock {
            Clock(
                uptimeNanoseconds: NIODeadline.now().uptimeNanoseconds,
                unixSeconds: UInt64(max(0, Date().timeIntervalSince1970))
            )
        }
    }

    let shield: FrontendShield
    let router: Router

    /// Rate limits, then the anti-bot shield.
    /// - Parameters:
    ///   - crawlerStatus: what is known of an address's crawler check.
    ///   - store: what a shared limit does without the store's decision; nil when there is no
    ///     store, and shared limits count here alone.
    ///   - answer: the store's answer that held the request; the screen goes on from its limit.
    func screen<Random: RandomNumberGenerator>(
        _ head: HTTPRequestHead,
        client: ClientInfo,
        clock: Clock,
        crawlerStatus: ([UInt8]) -> CrawlerVerifier.Cached,
        store: StoreConfig.OnError? = nil,
        resumingWith answer: SharedLimitAnswer? = nil,
        random: inout Random
    ) -> Screen {
        if let limited = screenLimits(head, client: client, clock: clock, store: store, resumingWith: answer) { return limited }
        let rateAnswer = answer.flatMap { $0.limitIndex == shield.limits.count ? $0 : nil }
        return screenAntibot(
            head,
            client: client,
            clock: clock,
            crawlerStatus: crawlerStatus,
            store: store,
            rateAnswer: rateAnswer,
            random: &random
        )
    }

    /// The rate limits in order, from the answered one when there is `answer`; nil when
    /// every one passes.
    private func screenLimits(
        _ head: HTTPRequestHead,
        client: ClientInfo,
        clock: Clock,
        store: StoreConfig.OnError?,
        resumingWith answer: SharedLimitAnswer?
    ) -> Screen? {
        for index in (answer?.limitIndex ?? 0)..<shield.limits.count {
            let limit = shield.limits[index]
            let decision: RateLimiter.Decision
            if let answer, answer.limitIndex == index {
                switch answer.outcome {
                case .decided(let decided): decision = decided
                case .failed where store == .allow: decision = .allowed
                case .failed: decision = limit.limiter.check(key: answer.key, now: clock.uptimeNanoseconds)
                }
            } else {
                guard router.holds(limit.condition, head, client: client), let key = limit.key(for: head, client: client) else {
                    continue
                }
                if limit.config.shared, store != nil {
                    return Screen(.checkSharedLimit(limitIndex: index, key: key))
                }
                decision = limit.limiter.check(key: key, now: clock.uptimeNanoseconds)
            }
            guard case .limited(let retryAfter) = decision else { continue }
            let note = Note(decision: "limited", reason: limit.config.name)
            switch limit.config.action {
            case .reject:
                return Screen(
                    .respond(
                        LocalResponse(
                            .tooManyRequests,
                            "Too many requests; try again in \(retryAfter) s.",
                            headers: [("retry-after", "\(retryAfter)")]
                        )
                    ),
                    note: note
                )
            case .deny:
                return Screen(.respond(LocalResponse(.forbidden, "This request is not allowed.")), note: note)
            case .tarpit:
                return Screen(.tarpit(TimeAmount(limit.config.tarpit), status: .tooManyRequests), note: note)
            }
        }
        return nil
    }

    /// The anti-bot shield, once every rate limit has passed.
    private func screenAntibot<Random: RandomNumberGenerator>(
        _ head: HTTPRequestHead,
        client: ClientInfo,
        clock: Clock,
        crawlerStatus: ([UInt8]) -> CrawlerVerifier.Cached,
        store: StoreConfig.OnError?,
        rateAnswer: SharedLimitAnswer?,
        random: inout Random
    ) -> Screen {
        guard let antibot = shield.antibot, !antibot.allows(client) else { return Screen(.pass) }
        let userAgent = head.headers.first(name: "user-agent") ?? ""
        // The answer to a challenge, whatever the shield's `if`/`unless` say of its path.
        if antibot.config.mode == .challenge, head.method == .GET, head.path == FrontendShield.verifyPath {
            return answerChallenge(head, antibot: antibot, client: client, userAgent: userAgent, clock: clock)
        }
        guard router.holds(antibot.condition, head, client: client) else { return Screen(.pass) }
        if antibot.config.mode == .challenge {
            let prefix = ClientPrefix(address: client.addressText)
            for header in head.headers[canonicalForm: "cookie"] {
                if let value = ClearanceCookie.value(inCookieHeader: header),
                    antibot.cookie.verify(value, client: prefix, userAgent: userAgent, now: clock.unixSeconds) == .valid
                {
                    return Screen(.pass)
                }
            }
        }
        let claimed = antibot.crawlers(claimedBy: userAgent)
        func bots(claimed: [VerifiedBot], hostname: String?, random: inout Random) -> Screen {
            screenBots(
                head,
                antibot: antibot,
                client: client,
                claimed: claimed,
                hostname: hostname,
                clock: clock,
                store: store,
                rateAnswer: rateAnswer,
                random: &random
            )
        }
        guard !claimed.isEmpty, let address = client.addressBytes else {
            return bots(claimed: [], hostname: nil, random: &random)
        }
        switch crawlerStatus(address) {
        case .confirmed(let hostname):
            return bots(claimed: claimed, hostname: hostname, random: &random)
        case .unconfirmed:
            return bots(claimed: claimed, hostname: nil, random: &random)
        case .unknown:
            return Screen(.verifyCrawler(address: address))
        }
    }

    /// The bot heuristics once the address's crawler check is done: `hostname` is the
    /// address's forward-confirmed name, nil when it has none or the check timed out.
    func screenAfterCrawlerCheck<Random: RandomNumberGenerator>(
        _ head: HTTPRequestHead,
        client: ClientInfo,
        hostname: String?,
        clock: Clock,
        store: StoreConfig.OnError? = nil,
        random: inout Random
    ) -> Screen {
        guard let antibot = shield.antibot else { return Screen(.pass) }
        let claimed = antibot.crawlers(claimedBy: head.headers.first(name: "user-agent") ?? "")
        return screenBots(
            head,
            antibot: antibot,
            client: client,
            claimed: claimed,
            hostname: hostname,
            clock: clock,
            store: store,
            rateAnswer: nil,
            random: &random
        )
    }

    /// The heuristics, with what is known of the crawler the request claims to be (`claimed`,
    /// and the address's forward-confirmed `hostname`).
    private func screenBots<Random: RandomNumberGenerator>(
        _ head: HTTPRequestHead,
        antibot: FrontendShield.Antibot,
        client: ClientInfo,
        claimed: [VerifiedBot],
        hostname: String?,
        clock: Clock,
        store: StoreConfig.OnError?,
        rateAnswer: SharedLimitAnswer?,
        random: inout Random
    ) -> Screen {
        if let bot = FrontendShield.Antibot.crawler(in: claimed, confirmedBy: hostname) {
            return Screen(.pass, note: Note(decision: "allowed", reason: bot.name))
        }
        let rate: RateLimiter.Decision
        switch rateAnswer?.outcome {
        case .decided(let decided): rate = decided
        case .failed where store == .allow: rate = .allowed
        case .failed: rate = antibot.rateLimiter.check(key: client.addressText, now: clock.uptimeNanoseconds)
        case nil:
            if antibot.config.sharedRate, store != nil {
                return Screen(.checkSharedLimit(limitIndex: shield.limits.count, key: client.addressText))
            }
            rate = antibot.rateLimiter.check(key: client.addressText, now: clock.uptimeNanoseconds)
        }
        let overRate = rate != .allowed
        let userAgent = head.headers.first(name: "user-agent")
        let score = antibot.heuristics.evaluate(
            userAgent: userAgent,
            headers: head.headers,
            httpVersionMajor: Int(head.version.major),
            httpVersionMinor: Int(head.version.minor),
            overRate: overRate,
            unverifiedCrawler: !claimed.isEmpty
        )
        guard score.total >= antibot.config.threshold else { return Screen(.pass) }
        let reason = score.reasons.isEmpty ? "every-client" : score.reasons.joined(separator: "+")
        switch antibot.config.mode {
        case .off:
            return Screen(.pass)
        case .monitor:
            return Screen(
                .pass,
                note: Note(decision: "flagged", reason: reason),
                logLine: "antibot: suspicious request (score \(score.total)): \(reason)"
            )
        case .block:
            return Screen(
                .respond(LocalResponse(.forbidden, "This request looks automated and is not allowed.")),
                note: Note(decision: "blocked", reason: reason)
            )
        case .challenge:
            let challenge = antibot.proofOfWork.issue(
                client: ClientPrefix(address: client.addressText),
                userAgent: userAgent ?? "",
                now: clock.unixSeconds,
                difficulty: antibot.config.difficulty,
                using: &random
            )
            let page = ChallengePage.html(
                challenge: challenge.value,
                difficulty: challenge.difficulty,
                verifyPath: FrontendShield.verifyPath,
                returnTo: ChallengePage.safeReturnPath(head.uri)
            )
            return Screen(
                .respond(
                    LocalResponse(
                        .forbidden,
                        html: page,
                        headers: [
                            ("content-security-policy", ChallengePage.contentSecurityPolicy),
                            ("cache-control", "no-store"),
                        ]
                    )
                ),
                note: Note(decision: "challenged", reason: reason)
            )
        }
    }

    /// `GET /.fulcrum/verify?challenge=…&solution=…&return_to=…`: a valid answer gets the
    /// clearance cookie and a redirect back; anything else, 403.
    private func answerChallenge(
        _ head: HTTPRequestHead,
        antibot: FrontendShield.Antibot,
        client: ClientInfo,
        userAgent: String,
        clock: Clock
    ) -> Screen {
        let prefix = ClientPrefix(address: client.addressText)
        let query = head.uri.firstIndex(of: "?").map { head.uri[head.uri.index(after: $0)...] } ?? ""
        var fields: [Substring: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { continue }
            let value = String(parts[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            fields[parts[0]] = value
        }
        let verdict = antibot.proofOfWork.check(
            challenge: Substring(fields["challenge"] ?? ""),
            solution: Substring(fields["solution"] ?? ""),
            client: prefix,
            userAgent: userAgent,
            now: clock.unixSeconds
        )
        guard verdict == .valid else {
            return Screen(
                .respond(LocalResponse(.forbidden, "The check did not pass; reload the page to try again.")),
                note: Note(decision: "refused", reason: "\(verdict)")
            )
        }
        let cookie = antibot.cookie.issue(client: prefix, userAgent: userAgent, now: clock.unixSeconds, ttl: antibot.cookieTTLSeconds)
        let location = ChallengePage.safeReturnPath(fields["return_to"] ?? "/")
        return Screen(
            .respond(
                LocalResponse(
                    .seeOther,
                    "Checked: \(location)",
                    headers: [
                        ("location", location),
                        (
                            "set-cookie",
                            ClearanceCookie.setCookieHeader(value: cookie, ttl: antibot.cookieTTLSeconds, secure: client.isSecure)
                        ),
                        ("cache-control", "no-store"),
                    ]
                )
            ),
            note: Note(decision: "passed", reason: "proof_of_work")
        )
    }
}

extension ShieldScreener.Verdict {
    /// What the exchange does with the request; nil when it passes on to the rules.
    var decision: RequestDecision? {
        switch self {
        case .pass: nil
        case .respond(let response): .respond(response)
        case .tarpit(let delay, let status): .tarpit(delay, status: status)
        case .verifyCrawler(let address): .verifyCrawler(address: address)
        case .checkSharedLimit(let index, let key): .checkSharedLimit(limitIndex: index, key: key)
        }
    }
}
