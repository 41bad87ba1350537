import Testing

@testable import FulcrumShield

private let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
private let browserHeaders: [(name: String, value: String)] = [
    ("Host", "shop.example"),
    ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("Accept-Language", "en-GB,en;q=0.9"),
    ("Accept-Encoding", "gzip, deflate, br, zstd"),
    ("User-Agent", chrome),
]

@Suite struct BotHeuristicsTests {
    let heuristics = try! BotHeuristics()

    func score(
        userAgent: String?,
        headers: [(name: String, value: String)] = browserHeaders,
        version: (Int, Int) = (1, 1),
        overRate: Bool = false,
        unverifiedCrawler: Bool = false
    ) -> BotHeuristics.Score {
        heuristics.evaluate(
            userAgent: userAgent,
            headers: headers,
            httpVersionMajor: version.0,
            httpVersionMinor: version.1,
            overRate: overRate,
            unverifiedCrawler: unverifiedCrawler
        )
    }

    @Test("a browser's request scores 0, over HTTP/1.1 and HTTP/2")
    func browserScoresZero() {
        for version in [(1, 1), (2, 0), (3, 0)] {
            let result = score(userAgent: chrome, version: version)
            #expect(result.total == 0)
            #expect(result.signals.isEmpty)
            #expect(result.reasons == [])
            #expect(!result.isSuspicious)
        }
        // HTTP/2 lowercases header names.
        let lowercased = browserHeaders.map { (name: $0.name.lowercased(), value: $0.value) }
        #expect(score(userAgent: chrome, headers: lowercased).total == 0)
    }

    @Test("no User-Agent, an empty or a blank one: empty-user-agent, 40, not suspicious alone", arguments: [nil, "", "   ", "\t"])
    func emptyUserAgent(userAgent: String?) {
        let result = score(userAgent: userAgent, headers: [])
        #expect(result.total == 40)
        #expect(result.reasons == ["empty-user-agent"])
        #expect(!result.isSuspicious)
    }

    @Test(
        "a deny-listed User-Agent: denied-user-agent, 60, suspicious",
        arguments: [
            "curl/8.5.0", "Wget/1.21.4", "python-requests/2.32.3", "Go-http-client/2.0", "Scrapy/2.11 (+https://scrapy.org)",
            "okhttp/4.12.0", "Java/17.0.2", "PYTHON-URLLIB/3.12",
        ]
    )
    func deniedUserAgent(userAgent: String) {
        let result = score(userAgent: userAgent)
        #expect(result.total == 60)
        #expect(result.reasons == ["denied-user-agent"])
        #expect(result.isSuspicious)
    }

    @Test("headless Chrome says so in its User-Agent, which the deny list catches though its headers look right")
    func headlessChrome() {
        let headless = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36"
        let result = score(userAgent: headless)
        #expect(result.total == 60)
        #expect(result.reasons == ["denied-user-agent"])
    }

    @Test("deny-list patterns match words, not fragments of other words")
    func wordBoundaries() {
        #expect(score(userAgent: "Mozilla/5.0 (compatible; Curlew/1.0)").total == 0)
        #expect(score(userAgent: "MyApp/1.0 (Javanese)").total == 0)
    }

    @Test("a browser-like User-Agent without Accept, Accept-Language or Accept-Encoding: 20 each")
    func browserWithoutHeaders() {
        let withoutAccept = browserHeaders.filter { $0.name != "Accept" }
        #expect(score(userAgent: chrome, headers: withoutAccept).total == 20)
        #expect(score(userAgent: chrome, headers: withoutAccept).reasons == ["browser-without-accept"])

        let withoutLanguage = browserHeaders.filter { $0.name != "Accept-Language" }
        #expect(score(userAgent: chrome, headers: withoutLanguage).reasons == ["browser-without-accept-language"])
        #expect(score(userAgent: chrome, headers: withoutLanguage).total == 20)

        let withoutEncoding = browserHeaders.filter { $0.name != "Accept-Encoding" }
        #expect(score(userAgent: chrome, headers: withoutEncoding).reasons == ["browser-without-accept-encoding"])
        #expect(score(userAgent: chrome, headers: withoutEncoding).total == 20)

        let none = score(userAgent: chrome, headers: [("Host", "shop.example")])
        #expect(none.total == 60)
        #expect(none.reasons == ["browser-without-accept", "browser-without-accept-language", "browser-without-accept-encoding"])
        #expect(none.isSuspicious)
    }

    @Test("only the first 512 characters of a User-Agent are searched")
    func scannedLength() {
        let padding = String(repeating: "x", count: 507) + " "
        #expect(score(userAgent: padding + "curl/8").reasons == ["denied-user-agent"])  // "curl" ends at 512
        #expect(score(userAgent: padding + " curl/8").total == 0)  // its "l" is the 513th
    }

    @Test("the missing-header signals apply only to browser-like User-Agents")
    func nonBrowserWithoutHeaders() {
        let result = score(userAgent: "FulcrumHealthCheck/1.0", headers: [])
        #expect(result.total == 0)
    }

    @Test("HTTP/1.0 and HTTP/0.9: old-http-version, 20", arguments: [(1, 0), (0, 9)])
    func oldHTTPVersion(major: Int, minor: Int) {
        let result = score(userAgent: chrome, version: (major, minor))
        #expect(result.total == 20)
        #expect(result.reasons == ["old-http-version"])
    }

    @Test("over the rate limit: over-rate, 40")
    func overRate() {
        let result = score(userAgent: chrome, overRate: true)
        #expect(result.total == 40)
        #expect(result.reasons == ["over-rate"])
        #expect(!result.isSuspicious)
    }

    @Test("a crawler's name from an address that is not the crawler's: unverified-crawler, 60, suspicious alone")
    func unverifiedCrawler() {
        let googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
        let claimed = score(userAgent: googlebot, unverifiedCrawler: true)
        #expect(claimed.total == 60)
        #expect(claimed.reasons == ["unverified-crawler"])
        #expect(claimed.isSuspicious)
        // The same User-Agent alone (confirmed, or never checked) adds nothing.
        #expect(score(userAgent: googlebot).total == 0)
    }

    @Test("signals add up: no User-Agent over HTTP/1.0 while over the rate scores 100")
    func signalsAddUp() {
        let result = score(userAgent: nil, headers: [], version: (1, 0), overRate: true)
        #expect(result.total == 100)
        #expect(result.signals == [.emptyUserAgent, .oldHTTPVersion, .overRate])
        #expect(result.reasons == ["empty-user-agent", "old-http-version", "over-rate"])
        #expect(result.isSuspicious)

        let everything = score(userAgent: "Mozilla/5.0 curl", headers: [], version: (1, 0), overRate: true)
        #expect(everything.total == 60 + 20 + 20 + 20 + 20 + 40)
        #expect(everything.reasons.count == 6)
    }

    @Test("the threshold is inclusive and, like the weights and the deny list, configurable")
    func configurable() throws {
        var weights = BotHeuristics.Weights()
        weights.overRate = 50
        weights.oldHTTPVersion = 5
        let custom = try BotHeuristics(denyList: [#"^Sneaky/"#], weights: weights, threshold: 50)
        let atThreshold = custom.evaluate(userAgent: chrome, headers: browserHeaders, httpVersionMajor: 1, httpVersionMinor: 1, overRate: true)
        #expect(atThreshold.total == 50)
        #expect(atThreshold.isSuspicious)
        #expect(custom.evaluate(userAgent: "curl/8.5.0", headers: [], httpVersionMajor: 1, httpVersionMinor: 0, overRate: false).total == 5)
        #expect(custom.evaluate(userAgent: "Sneaky/1", headers: [], httpVersionMajor: 1, httpVersionMinor: 1, overRate: false).total == 60)
        #expect(custom.evaluate(userAgent: "NotSneaky/1", headers: [], httpVersionMajor: 1, httpVersionMinor: 1, overRate: false).total == 0)
        let none = try BotHeuristics(denyList: [])
        #expect(none.evaluate(userAgent: "curl/8.5.0", headers: [], httpVersionMajor: 1, httpVersionMinor: 1, overRate: false).total == 0)
    }

    @Test("a deny-list pattern that does not compile is an error")
    func invalidPattern() {
        #expect(throws: (any Error).self) { try BotHeuristics(denyList: ["(unclosed"]) }
    }

    @Test("every signal has a distinct bit and name")
    func signalNames() {
        let all = BotHeuristics.Signals.all
        #expect(all.count == 8)
        #expect(Set(all.map(\.name)).count == 8)
        #expect(all.reduce(into: BotHeuristics.Signals()) { $0.formUnion($1.signal) }.rawValue == 0xff)
    }
}
