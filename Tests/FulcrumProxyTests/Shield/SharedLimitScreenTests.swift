import FulcrumConfig
import FulcrumShield
import NIOCore
import NIOHTTP1
import Testing

@testable import FulcrumProxy

/// The screener's side of shared limits, with no store: which limit it asks about, and what it
/// makes of each answer.
@Suite("Shield screener: shared limits")
struct SharedLimitScreenTests {
    /// `local` (2/1m) then `shared` (3/1m, shared), and the anti-bot shield with a shared rate.
    static func screener() throws -> ShieldScreener {
        let yaml = """
            global:
              store: { redis: "redis://127.0.0.1:6379" }
            frontends:
              - name: web
                listen: ["127.0.0.1:8080"]
                rate_limits:
                  local: { key: "header:X-Local", rate: 2/1m }
                  shared: { key: src, rate: 3/1m, shared: true, action: deny }
                antibot: { mode: block, threshold: 40, rate: 1/1m, shared: true }
                default_backend: app
            backends:
              - name: app
                servers:
                  - { name: w1, address: "127.0.0.1:9" }
            """
        let snapshot = try RuntimeSnapshot(config: try ConfigLoader.load(yaml: yaml))
        let frontend = try #require(snapshot.frontends.first)
        return ShieldScreener(shield: try #require(frontend.shield), router: frontend.router)
    }

    static func screen(
        _ screener: ShieldScreener,
        headers: [(String, String)] = ShieldScreenerTests.browser,
        store: StoreConfig.OnError? = .local,
        answer: ShieldScreener.SharedLimitAnswer? = nil
    ) -> ShieldScreener.Verdict {
        var random = SystemRandomNumberGenerator()
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: HTTPHeaders(headers))
        let clock = ShieldScreener.Clock(uptimeNanoseconds: 1_000_000_000_000, unixSeconds: 1_800_000_000)
        return screener.screen(
            head,
            client: ShieldScreenerTests.client,
            clock: clock,
            crawlerStatus: { _ in .unknown },
            store: store,
            resumingWith: answer,
            random: &random
        ).verdict
    }

    static func summary(_ verdict: ShieldScreener.Verdict) -> String {
        switch verdict {
        case .pass: "pass"
        case .respond(let response): "respond \(response.status.code)"
        case .tarpit: "tarpit"
        case .verifyCrawler: "verifyCrawler"
        case .checkSharedLimit(let index, let key): "check \(index) \(key)"
        }
    }

    @Test("Local limits first, then the shared one is asked about; its answer decides, and the screen goes on")
    func order() throws {
        let screener = try Self.screener()
        let local = [("X-Local", "a")] + ShieldScreenerTests.browser
        #expect(Self.summary(Self.screen(screener, headers: local)) == "check 1 192.0.2.7")
        #expect(Self.summary(Self.screen(screener, headers: local)) == "check 1 192.0.2.7")
        // The local limit (2/1m) refuses the third before the store is asked.
        #expect(Self.summary(Self.screen(screener, headers: local)) == "respond 429")

        let limited = ShieldScreener.SharedLimitAnswer(limitIndex: 1, key: "192.0.2.7", outcome: .decided(.limited(retryAfterSeconds: 5)))
        #expect(Self.summary(Self.screen(screener, answer: limited)) == "respond 403")
        // Passed: on to the anti-bot shield, whose shared rate is the index after the limits.
        let allowed = ShieldScreener.SharedLimitAnswer(limitIndex: 1, key: "192.0.2.7", outcome: .decided(.allowed))
        #expect(Self.summary(Self.screen(screener, answer: allowed)) == "check 2 192.0.2.7")
        let overRate = ShieldScreener.SharedLimitAnswer(limitIndex: 2, key: "192.0.2.7", outcome: .decided(.limited(retryAfterSeconds: 5)))
        #expect(Self.summary(Self.screen(screener, answer: overRate)) == "respond 403")
        let underRate = ShieldScreener.SharedLimitAnswer(limitIndex: 2, key: "192.0.2.7", outcome: .decided(.allowed))
        #expect(Self.summary(Self.screen(screener, answer: underRate)) == "pass")
    }

    @Test("No decision: on_error allow passes; local counts in the limit's own limiter")
    func fallbacks() throws {
        let screener = try Self.screener()
        let failed = ShieldScreener.SharedLimitAnswer(limitIndex: 1, key: "192.0.2.7", outcome: .failed(.timeout))
        for _ in 0..<5 {
            #expect(Self.summary(Self.screen(screener, store: .allow, answer: failed)) == "check 2 192.0.2.7")
        }
        // local: 3/1m, counted here.
        let verdicts = (0..<4).map { _ in Self.summary(Self.screen(screener, store: .local, answer: failed)) }
        #expect(verdicts == ["check 2 192.0.2.7", "check 2 192.0.2.7", "check 2 192.0.2.7", "respond 403"])
    }

    @Test("No store (global.store added by a reload, which waits for a restart): shared limits count here")
    func noStore() throws {
        let screener = try Self.screener()
        let verdicts = (0..<4).map { _ in Self.summary(Self.screen(screener, store: nil)) }
        // The shared limit (3/1m) locally; the anti-bot rate (1/1m) locally: over it from the second on.
        #expect(verdicts == ["pass", "respond 403", "respond 403", "respond 403"])
    }
}
