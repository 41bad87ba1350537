import AsyncHTTPClient
import Foundation
import FulcrumProxy
import FulcrumShield
import FulcrumWorker
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Testing

/// Rate limits and the anti-bot shield on a running proxy: real clients, a solver written
/// here, and a real browser.
@Suite("Shield", .serialized)
struct ShieldTests {
    /// A browser's headers: what the heuristics expect of a real one.
    private static let browser: [(String, String)] = [
        ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"),
        ("Accept", "text/html,application/xhtml+xml"),
        ("Accept-Language", "en"),
        ("Accept-Encoding", "gzip"),
    ]

    @Test("a rate limit: the N+1th request in the window gets 429 with Retry-After; the window slides; keys are separate")
    func rateLimitPrecision() async throws {
        let yaml = { (ports: [Int]) in
            simpleConfig(
                ports,
                frontendExtra: """
                        rate_limits:
                          per_key: { key: "header:X-Api-Key", rate: 5/1m }
                          fast: { key: "header:X-Fast", rate: 1/500ms }
                    """
            )
        }
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: yaml) { harness in
            let start = ContinuousClock.now
            for index in 0..<5 {
                #expect(try await harness.send("/work", headers: [("X-Api-Key", "a")]).status == .ok, "request \(index + 1)")
            }
            let limited = try await harness.send("/work", headers: [("X-Api-Key", "a")])
            #expect(limited.status == .tooManyRequests)
            // One request's worth of the minute: 12 s from the first request, less the time the
            // burst took (seconds on a loaded machine), rounded up.
            let elapsed = Int(start.duration(to: .now).components.seconds)
            let retryAfter = limited.headers.first(name: "retry-after").flatMap(Int.init)
            #expect(retryAfter.map { (max(1, 11 - elapsed)...12).contains($0) } == true, "\(String(describing: retryAfter)) after \(elapsed) s")
            // Another key, and requests without the header, are not limited.
            #expect(try await harness.send("/work", headers: [("X-Api-Key", "b")]).status == .ok)
            #expect(try await harness.send("/work").status == .ok)

            // The window slides: refused now, allowed again once a request's worth has passed.
            var refused = false
            for _ in 0..<5 where !refused {
                refused = try await harness.send("/work", headers: [("X-Fast", "c")]).status == .tooManyRequests
            }
            #expect(refused)
            try await Task.sleep(for: .milliseconds(600))
            #expect(try await harness.send("/work", headers: [("X-Fast", "c")]).status == .ok)

            let decisions = try await harness.proxy.traffic().shieldDecisions
            #expect(decisions[ShieldDecision(frontend: "test", decision: "limited", reason: "per_key")] == 1)
        }
    }

    @Test("a rate limit is exact over every event loop: 20/1h lets 20 of 60 concurrent requests through, not 20 per loop")
    func rateLimitAcrossLoops() async throws {
        let yaml = { (ports: [Int]) in
            simpleConfig(ports, frontendExtra: "    rate_limits:\n      per_ip: { key: src, rate: 20/1h }")
                .replacingOccurrences(of: "  workers: 1", with: "  workers: 2")
        }
        // Two loops, and a client with 8 connections: the kernel's accepts alternate between
        // the loops, so a client's requests arrive on both.
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 5)], proxyThreads: 2, clientConnections: 8, yaml: yaml) { harness in
            let statuses = try await withThrowingTaskGroup(of: UInt.self) { group in
                for _ in 0..<60 {
                    group.addTask { try await harness.send("/work").status.code }
                }
                return try await group.reduce(into: [UInt]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 200 }.count == 20, "\(statuses.filter { $0 == 200 }.count) passed")
            #expect(statuses.filter { $0 == 429 }.count == 40)
            let connections = try await harness.proxy.traffic().activeConnections["test"] ?? 0
            #expect(connections > 1, "the client's requests used one connection only")
        }
    }

    @Test("a rate limit with action tarpit holds the request, then answers 429; its access-log line says why")
    func rateLimitTarpit() async throws {
        let lines = NIOLockedValueBox("")
        let accessLog = AccessLogWriter { batch in lines.withLockedValue { $0 += String(buffer: batch) } }
        let yaml = { (ports: [Int]) in
            simpleConfig(
                ports,
                frontendExtra: """
                        rate_limits:
                          per_ip: { key: src, rate: 1/1m, action: tarpit, tarpit: 300ms }
                    """
            ).replacingOccurrences(of: "access: off", with: "access: json")
        }
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], accessLog: accessLog, yaml: yaml) { harness in
            #expect(try await harness.send("/work").status == .ok)
            let clock = ContinuousClock()
            let start = clock.now
            #expect(try await harness.send("/work").status == .tooManyRequests)
            #expect(clock.now - start >= .milliseconds(300))
            try await waitUntil(timeout: .seconds(15)) { lines.withLockedValue { $0.contains("\"shield\":\"limited:per_ip\"") } }
        }
    }

    @Test("challenge: the page, a solver, the cookie; no cookie, a forged one or another client's stays outside")
    func challengeFlow() async throws {
        let yaml = { (ports: [Int]) in
            simpleConfig(
                ports,
                frontendExtra: """
                        antibot:
                          mode: challenge
                          challenge: { difficulty: 8, cookie_ttl: 10m }
                          threshold: 0
                    """
            )
        }
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: yaml) { harness in
            let page = try await harness.send("/echo?x=1", headers: Self.browser)
            #expect(page.status == .forbidden)
            #expect(page.headers.first(name: "content-type") == "text/html; charset=utf-8")
            #expect(page.headers.first(name: "content-security-policy")?.contains("default-src 'none'") == true)
            let html = page.text
            let challenge = try #require(Self.attribute(#"name="challenge" value=""#, in: html))
            let difficulty = try #require(Int(Self.attribute(#"data-difficulty=""#, in: html) ?? ""))
            #expect(difficulty == 8)
            #expect(Self.attribute(#"name="return_to" value=""#, in: html) == "/echo?x=1")

            // A wrong answer is refused.
            let wrong = try await harness.send(Self.verifyURI(challenge: challenge, solution: "nope", returnTo: "/echo?x=1"), headers: Self.browser)
            #expect(wrong.status == .forbidden)

            let solution = ProofOfWork.solve(challenge: challenge, difficulty: difficulty)
            let verified = try await harness.send(
                Self.verifyURI(challenge: challenge, solution: solution, returnTo: "/echo?x=1"),
                headers: Self.browser
            )
            #expect(verified.status == .seeOther)
            #expect(verified.headers.first(name: "location") == "/echo?x=1")
            let setCookie = try #require(verified.headers.first(name: "set-cookie"))
            #expect(setCookie.contains("HttpOnly"))
            let cookie = try #require(setCookie.split(separator: ";").first.map(String.init))

            let through = try await harness.send("/echo?x=1", headers: Self.browser + [("Cookie", cookie)])
            #expect(through.status == .ok)
            #expect(through.worker == "w1")

            // Forged: one character of the MAC changed.
            var forged = Array(cookie)
            forged[forged.count - 2] = forged[forged.count - 2] == "A" ? "B" : "A"
            #expect(try await harness.send("/echo", headers: Self.browser + [("Cookie", String(forged))]).status == .forbidden)
            // Transplanted to another User-Agent.
            let other = [("User-Agent", "Mozilla/5.0 (Macintosh) Firefox/120.0")] + Self.browser.dropFirst()
            #expect(try await harness.send("/echo", headers: Array(other) + [("Cookie", cookie)]).status == .forbidden)
            // A client without JavaScript never gets further than the page.
            #expect(try await harness.send("/echo").status == .forbidden)

            let decisions = try await harness.proxy.traffic().shieldDecisions
            #expect(decisions[ShieldDecision(frontend: "test", decision: "passed", reason: "proof_of_work")] == 1)
            #expect(decisions.filter { $0.key.decision == "refused" }.values.reduce(0, +) == 1)
            #expect(decisions.filter { $0.key.decision == "challenged" }.values.reduce(0, +) == 4)
        }
    }

    @Test("with if: [pages], only those pages are challenged, and the answer is taken wherever it comes from")
    func challengeWithCondition() async throws {
        let yaml = { (ports: [Int]) in
            simpleConfig(
                ports,
                frontendExtra: """
                        acls: { pages: { path_prefix: /app } }
                        antibot:
                          mode: challenge
                          challenge: { difficulty: 4 }
                          threshold: 0
                          if: [pages]
                    """
            )
        }
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: yaml) { harness in
            let open = try await harness.send("/work", headers: Self.browser)
            #expect(open.status == .ok)
            let page = try await harness.send("/app/home", headers: Self.browser)
            #expect(page.status == .forbidden)
            let challenge = try #require(Self.attribute(#"name="challenge" value=""#, in: page.text))
            let solution = ProofOfWork.solve(challenge: challenge, difficulty: 4)
            let verified = try await harness.send(
                Self.verifyURI(challenge: challenge, solution: solution, returnTo: "/app/home"),
                headers: Self.browser
            )
            #expect(verified.status == .seeOther)
            let cookie = try #require(verified.headers.first(name: "set-cookie")?.split(separator: ";").first.map(String.init))
            #expect(try await harness.send("/app/home", headers: Self.browser + [("Cookie", cookie)]).status != .forbidden)
        }
    }

    @Test(
        "block: denylisted clients, and bare ones past a lower threshold, get 403; a browser passes; monitor only counts; allow.src skips the checks"
    )
    func blockAndMonitor() async throws {
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: { Self.antibotConfig($0, mode: "block") }) { harness in
            let scraper = try await harness.send("/work", headers: [("User-Agent", "My-Scraper/2.0")])
            #expect(scraper.status == .forbidden)
            #expect(try await harness.send("/work", headers: [("User-Agent", "curl/8.0")]).status == .forbidden)
            #expect(try await harness.send("/work").status == .forbidden)  // no User-Agent at all: 40 points
            #expect(try await harness.send("/work", headers: Self.browser).status == .ok)
        }
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: { Self.antibotConfig($0, mode: "monitor") }) { harness in
            let curl = try await harness.send("/work", headers: [("User-Agent", "curl/8.0")])
            #expect(curl.status == .ok)
            let flagged = try await harness.proxy.traffic().shieldDecisions.filter { $0.key.decision == "flagged" }
            #expect(flagged.values.reduce(0, +) == 1)
        }
        try await withProxy(
            workers: [WorkerBehaviour(delayMilliseconds: 0)],
            yaml: { Self.antibotConfig($0, mode: "block", allow: "allow: { src: [127.0.0.0/8] }") }
        ) { harness in
            let allowed = try await harness.send("/work", headers: [("User-Agent", "curl/8.0")])
            #expect(allowed.status == .ok)
        }
    }

    @Test(
        "verified crawlers: let through when reverse-and-forward DNS confirms the address is theirs; the name alone is refused",
        .enabled(if: loopbackIsLocalhost, "127.0.0.1 does not resolve to localhost and back on this machine (/etc/hosts)")
    )
    func verifiedCrawlers() async throws {
        let lines = NIOLockedValueBox("")
        let accessLog = AccessLogWriter { batch in lines.withLockedValue { $0 += String(buffer: batch) } }
        // threshold 0: every request is blocked unless a crawler is confirmed. 127.0.0.1's name
        // is `localhost` (and `localhost` is 127.0.0.1), so a crawler whose domain is localhost
        // is real here, and Googlebot, whose names end in googlebot.com or google.com, is not.
        let yaml = { (ports: [Int]) in
            simpleConfig(
                ports,
                frontendExtra: """
                        antibot:
                          mode: block
                          threshold: 0
                          allow:
                            verified_bots: [googlebot, { name: labbot, user_agent: "(?i)labbot", domains: [localhost] }]
                    """
            ).replacingOccurrences(of: "access: off", with: "access: json")
        }
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], accessLog: accessLog, yaml: yaml) { harness in
            // The first request waits for DNS; its body, sent meanwhile, reaches the server whole.
            let body = String(repeating: "crawl ", count: 2000)
            let first = try await harness.send(.POST, "/echo", headers: [("User-Agent", "LabBot/1.0")], body: .bytes(ByteBuffer(string: body)))
            #expect(first.status == .ok)
            let echoed = try first.json
            #expect(echoed["body"] as? String == body)
            // Then from the cache.
            #expect(try await harness.send("/work", headers: [("User-Agent", "LabBot/1.0")]).status == .ok)

            let fake = try await harness.send(
                "/work",
                headers: [("User-Agent", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")]
            )
            #expect(fake.status == .forbidden)
            #expect(try await harness.send("/work", headers: [("User-Agent", "curl/8.0")]).status == .forbidden)

            let decisions = try await harness.proxy.traffic().shieldDecisions
            #expect(decisions[ShieldDecision(frontend: "test", decision: "allowed", reason: "labbot")] == 2)
            let blocked = decisions.filter { $0.key.decision == "blocked" && $0.key.reason.contains("unverified-crawler") }
            #expect(blocked.values.reduce(0, +) == 1, "\(decisions)")
            try await waitUntil(timeout: .seconds(15)) { lines.withLockedValue { $0.contains("\"shield\":\"allowed:labbot\"") } }
        }
    }

    @Test("allow.src_file lets the listed addresses through; rate makes a client over it suspicious")
    func addressFileAndRate() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = "\(directory)/crawlers.txt"
        try "# our uptime checker\n127.0.0.0/8\n".write(toFile: file, atomically: true, encoding: .utf8)
        let listed = { (ports: [Int]) in
            simpleConfig(
                ports,
                frontendExtra: """
                        antibot: { mode: block, threshold: 0, allow: { src_file: \(file) } }
                    """
            )
        }
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: listed) { harness in
            let response = try await harness.send("/work", headers: [("User-Agent", "curl/8.0")])
            #expect(response.status == .ok)
        }
        try "192.0.2.0/24\n".write(toFile: file, atomically: true, encoding: .utf8)
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: listed) { harness in
            let response = try await harness.send("/work", headers: [("User-Agent", "curl/8.0")])
            #expect(response.status == .forbidden)
        }

        // Over 3 in any 10 s: over-rate (40), which with threshold 40 blocks a browser's 4th request.
        let rated = { (ports: [Int]) in
            simpleConfig(
                ports,
                frontendExtra: """
                        antibot: { mode: block, threshold: 40, rate: 3/10s }
                    """
            )
        }
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: rated) { harness in
            for index in 0..<3 {
                #expect(try await harness.send("/work", headers: Self.browser).status == .ok, "request \(index + 1)")
            }
            #expect(try await harness.send("/work", headers: Self.browser).status == .forbidden)
            let decisions = try await harness.proxy.traffic().shieldDecisions
            #expect(decisions[ShieldDecision(frontend: "test", decision: "blocked", reason: "over-rate")] == 1, "\(decisions)")
        }
    }

    @Test(
        "headless Chromium passes the challenge and reaches the server without any interaction",
        .enabled(if: Chromium.executable != nil, "chromium is not installed (apt-get install chromium)")
    )
    func browserPasses() async throws {
        let yaml = { (ports: [Int]) in
            simpleConfig(
                ports,
                frontendExtra: """
                        antibot:
                          mode: challenge
                          challenge: { difficulty: 12 }
                          threshold: 0
                    """
            )
        }
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: yaml) { harness in
            let dom = try await Chromium.dumpDOM(
                executable: Chromium.executable!,
                url: "http://127.0.0.1:\(harness.port)/echo?from=browser",
                timeout: .seconds(60)
            )
            // The worker's /echo answer, as the browser shows it: the request reached the server.
            #expect(dom.contains("\"uri\":\"/echo?from=browser\"") || dom.contains("/echo?from=browser"), "\(dom.prefix(600))")
            #expect(!dom.contains("Checking your browser"), "\(dom.prefix(600))")
            let decisions = try await harness.proxy.traffic().shieldDecisions
            #expect(decisions[ShieldDecision(frontend: "test", decision: "passed", reason: "proof_of_work")] == 1)
            #expect(try await harness.proxy.stats()[0].servers[0].metrics.totals.requests >= 1)
        }
    }

    private static func antibotConfig(_ ports: [Int], mode: String, allow: String = "") -> String {
        simpleConfig(
            ports,
            frontendExtra: """
                    antibot:
                      mode: \(mode)
                      threshold: 40
                      deny_user_agents: ['(?i)my-scraper']
                      \(allow)
                """
        )
    }

    private static func verifyURI(challenge: String, solution: String, returnTo: String) -> String {
        func encode(_ text: String) -> String {
            text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
        }
        return "/.fulcrum/verify?challenge=\(encode(challenge))&solution=\(encode(solution))&return_to=\(encode(returnTo))"
    }

    /// The value after `prefix` up to the next quote, HTML entities for `&` undone.
    private static func attribute(_ prefix: String, in html: String) -> String? {
        guard let start = html.range(of: prefix), let end = html[start.upperBound...].firstIndex(of: "\"") else { return nil }
        return String(html[start.upperBound..<end]).replacingOccurrences(of: "&amp;", with: "&")
    }
}
