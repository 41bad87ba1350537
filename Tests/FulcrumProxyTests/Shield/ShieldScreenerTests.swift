import FulcrumConfig
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import FulcrumProxy

/// The shield as a function of (request head, client, time, known crawler addresses): each
/// test screens heads and checks the verdict and the note, with no channel.
@Suite("Shield screener")
struct ShieldScreenerTests {
    static let client = ClientInfo(peer: try! SocketAddress(ipAddress: "192.0.2.7", port: 40000), isSecure: false)
    static let browser: [(String, String)] = [
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"),
        ("accept", "text/html,application/xhtml+xml"),
        ("accept-language", "en"),
        ("accept-encoding", "gzip"),
    ]

    /// The screener of a frontend with `shield` (YAML under the frontend), on an embedded loop.
    static func screener(_ shield: String) throws -> ShieldScreener {
        // Re-indented under the frontend, whatever the literal's own indentation.
        let lines = shield.split(separator: "\n")
        let margin = lines.map { $0.prefix { $0 == " " }.count }.min() ?? 0
        let settings = lines.map { "    " + $0.dropFirst(margin) }.joined(separator: "\n")
        let yaml = """
            frontends:
              - name: web
                listen: ["127.0.0.1:8080"]
            \(settings)
                default_backend: app
            backends:
              - name: app
                servers:
                  - { name: w1, address: "127.0.0.1:9" }
            """
        let snapshot = try RuntimeSnapshot(config: try ConfigLoader.load(yaml: yaml))
        let frontend = try #require(snapshot.frontends.first)
        let shield = try #require(frontend.shield)
        return ShieldScreener(shield: shield, router: frontend.router)
    }

    static func screen(
        _ screener: ShieldScreener,
        _ uri: String = "/",
        headers: [(String, String)] = browser,
        at seconds: UInt64 = 1_000,
        crawlers: ([UInt8]) -> CrawlerVerifier.Cached = { _ in .unknown }
    ) -> ShieldScreener.Screen {
        var random = SystemRandomNumberGenerator()
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: HTTPHeaders(headers))
        let clock = ShieldScreener.Clock(uptimeNanoseconds: seconds * 1_000_000_000, unixSeconds: 1_800_000_000 + seconds)
        return screener.screen(head, client: client, clock: clock, crawlerStatus: crawlers, random: &random)
    }

    static func status(_ screen: ShieldScreener.Screen) -> UInt? {
        if case .respond(let response) = screen.verdict { return response.status.code }
        return nil
    }

    @Test("a rate limit: within it, pass; past it, 429 with Retry-After, noted as limited by its name")
    func rateLimit() throws {
        let screener = try Self.screener(
            """
                    rate_limits:
                      per_key: { key: "header:X-Api-Key", rate: 2/1m }
            """
        )
        let keyed = Self.browser + [("x-api-key", "k")]
        #expect(Self.screen(screener, headers: keyed).verdict.decision == nil)
        #expect(Self.screen(screener, headers: keyed).verdict.decision == nil)
        let limited = Self.screen(screener, headers: keyed)
        #expect(Self.status(limited) == 429)
        #expect(limited.note == ShieldScreener.Note(decision: "limited", reason: "per_key"))
        if case .respond(let response) = limited.verdict {
            #expect(response.headers.contains { $0.0 == "retry-after" && $0.1 == "30" })
        }
        // Another key, and a request without the header, are not limited.
        #expect(Self.screen(screener, headers: Self.browser + [("x-api-key", "other")]).verdict.decision == nil)
        #expect(Self.screen(screener).verdict.decision == nil)
        // Time frees the key again.
        #expect(Self.screen(screener, headers: keyed, at: 1_100).verdict.decision == nil)
    }

    @Test("a rate limit's actions: tarpit holds, deny answers 403")
    func rateLimitActions() throws {
        let tarpit = try Self.screener(
            """
                    rate_limits:
                      slow: { key: src, rate: 1/1m, action: tarpit, tarpit: 300ms }
            """
        )
        _ = Self.screen(tarpit)
        guard case .tarpit(let delay, let status) = Self.screen(tarpit).verdict else {
            Issue.record("not held")
            return
        }
        #expect(delay == .milliseconds(300))
        #expect(status == .tooManyRequests)

        let deny = try Self.screener(
            """
                    rate_limits:
                      strict: { key: src, rate: 1/1m, action: deny }
            """
        )
        _ = Self.screen(deny)
        #expect(Self.status(Self.screen(deny)) == 403)
    }

    @Test("block: a scraper's User-Agent is refused, a browser passes; monitor only notes and logs")
    func blockAndMonitor() throws {
        let block = try Self.screener(
            """
                    antibot:
                      mode: block
                      threshold: 40
                      deny_user_agents: ['(?i)my-scraper']
            """
        )
        let scraper = Self.screen(block, headers: [("user-agent", "My-Scraper/2.0")])
        #expect(Self.status(scraper) == 403)
        #expect(scraper.note?.decision == "blocked")
        #expect(Self.screen(block).verdict.decision == nil)

        let monitor = try Self.screener(
            """
                    antibot:
                      mode: monitor
                      threshold: 40
            """
        )
        let flagged = Self.screen(monitor, headers: [("user-agent", "curl/8.0")])
        #expect(flagged.verdict.decision == nil)
        #expect(flagged.note?.decision == "flagged")
        #expect(flagged.logLine?.hasPrefix("antibot: suspicious request") == true)
    }

    @Test("challenge: a page with its CSP for a suspicious client; a wrong answer is refused")
    func challenge() throws {
        let screener = try Self.screener(
            """
                    antibot:
                      mode: challenge
                      challenge: { difficulty: 4 }
                      threshold: 0
            """
        )
        let page = Self.screen(screener, "/shop")
        guard case .respond(let response) = page.verdict, case .html(let html) = response.body else {
            Issue.record("no challenge page")
            return
        }
        #expect(response.status == .forbidden)
        #expect(html.contains("/.fulcrum/verify"))
        #expect(response.headers.contains { $0.0 == "content-security-policy" })
        #expect(page.note?.decision == "challenged")

        let wrong = Self.screen(screener, "/.fulcrum/verify?challenge=x&solution=y&return_to=/shop")
        #expect(Self.status(wrong) == 403)
        #expect(wrong.note?.decision == "refused")
    }

    @Test("a claimed crawler: looked up when unknown, allowed when DNS confirmed it, suspicious otherwise")
    func crawlers() throws {
        let screener = try Self.screener(
            """
                    antibot:
                      mode: block
                      threshold: 40
                      allow:
                        verified_bots: [{ name: labbot, user_agent: "(?i)labbot", domains: [crawl.example] }]
            """
        )
        let claim = [("user-agent", "LabBot/1.0")]
        guard case .verifyCrawler(let address) = Self.screen(screener, headers: claim).verdict else {
            Issue.record("no lookup")
            return
        }
        #expect(address == [192, 0, 2, 7])
        let confirmed = Self.screen(screener, headers: claim) { _ in .confirmed("bot1.crawl.example") }
        #expect(confirmed.verdict.decision == nil)
        #expect(confirmed.note == ShieldScreener.Note(decision: "allowed", reason: "labbot"))
        let unconfirmed = Self.screen(screener, headers: claim) { _ in .unconfirmed }
        #expect(Self.status(unconfirmed) == 403)
        #expect(unconfirmed.note?.reason.contains("unverified-crawler") == true)
    }
}
