import Foundation
import FulcrumConfig
import FulcrumWorker
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// The dashboard at `GET /` on the admin listener: the page as served, and the page as a real
/// browser (headless Chromium) renders it over a running proxy.
@Suite("Dashboard", .serialized)
struct DashboardTests {
    @Test("GET / serves one self-contained HTML page: no-store, nothing loaded from elsewhere")
    func page() async throws {
        try await withAdminAPI(algorithm: "round_robin") { _, admin in
            let page = try await admin.call(.GET, "/", token: nil)
            #expect(page.status == .ok)
            #expect(page.headers["content-type"].first == "text/html; charset=utf-8")
            #expect(page.headers["cache-control"].first == "no-store")
            let policy = page.headers["content-security-policy"].first ?? ""
            #expect(policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"))

            let html = String(buffer: page.body)
            #expect(html.hasPrefix("<!doctype html>"))
            let references = Self.references(in: html)
            #expect(references.contains("api/openapi.yaml"))
            for reference in references {
                let lowered = reference.lowercased()
                #expect(!lowered.hasPrefix("http:") && !lowered.hasPrefix("https:") && !lowered.hasPrefix("//"), "\(reference)")
            }
            #expect(!html.contains("http://") && !html.contains("https://"), "an absolute URL in the page")
            #expect(!html.contains("@import"))
            // The algorithm choice is the real list (all but adaptive itself).
            for name in AlgorithmName.allCases where name != .adaptive {
                #expect(html.contains("\"\(name.rawValue)\""), "\(name.rawValue)")
            }
            #expect(!html.contains("__FULCRUM_ALGORITHMS__"))
        }
    }

    @Test("beyond loopback the page and the health probe need no token; the API still does")
    func beyondLoopback() async throws {
        try await withAdminAPI(algorithm: "round_robin", listenHost: "0.0.0.0") { _, admin in
            let page = try await admin.call(.GET, "/", token: nil)
            #expect(page.status == .ok)
            #expect(try await admin.call(.GET, "/api/health", token: nil).status == .ok)
            let withoutToken = try await admin.call(.GET, "/api/stats", token: nil)
            #expect(withoutToken.status == .unauthorized)
            let withToken = try await admin.call(.GET, "/api/stats")
            #expect(withToken.status == .ok)
        }
    }

    @Test(
        "in headless Chromium the page shows the live state it fetched: backend, servers, states, counts",
        .enabled(if: Chromium.executable != nil, "chromium is not in PATH (apt-get install chromium): the browser test is skipped")
    )
    func rendersInChromium() async throws {
        let chromium = try #require(Chromium.executable)
        // The engine evaluates every 200 ms here, so the page has decisions to explain.
        try await withAdminAPI(algorithm: "adaptive\n    adaptive: { evaluate_every: 200ms }") { harness, admin in
            for _ in 0..<7 { #expect(try await harness.send("/work?delay_ms=0").status == .ok) }
            try await waitUntil(timeout: .seconds(15)) { !(harness.proxy.adaptiveDecisions(ofBackend: "app") ?? []).isEmpty }
            let drained = try await admin.call(.PATCH, "/api/backends/app/servers/w2", body: #"{"state": "drain"}"#)
            #expect(drained.status == .ok)
            // What the page should show: the API's own numbers.
            let backends = try #require(try await admin.call(.GET, "/api/backends").array)
            let servers = try #require(backends.first?["servers"] as? [[String: Any]])
            let expected = servers.compactMap { server -> (name: String, state: String, requests: Int)? in
                guard let name = server["name"] as? String, let state = server["state"] as? String,
                    let requests = (server["totals"] as? [String: Any])?["requests"] as? Int
                else { return nil }
                return (name, state, requests)
            }
            #expect(expected.map(\.name) == ["w1", "w2"])
            #expect(expected.map(\.requests).reduce(0, +) == 7)
            #expect(expected.map(\.state) == ["up", "draining"])

            let started = ContinuousClock.now
            let dom = try await Chromium.dumpDOM(executable: chromium, url: "http://127.0.0.1:\(admin.port)/", timeout: .seconds(60))
            #expect(ContinuousClock.now - started < .seconds(60))

            // The card the script built from /api/stats, with the adaptive backend's algorithm.
            #expect(dom.contains(#"<section class="card" data-backend="app" data-active="peak_ewma">"#))
            #expect(dom.contains(#"<h2 data-ref="name">app</h2>"#))
            #expect(dom.contains(#"data-ref="active" title="Picking now">peak_ewma</span>"#))
            for server in expected {
                let row = try #require(Self.row(server.name, in: dom), "no row for \(server.name)")
                #expect(row.contains(#"data-state="\#(server.state)""#), "\(row)")
                #expect(row.contains(#"data-requests="\#(server.requests)""#), "\(row)")
                #expect(row.contains(#"<span class="server-name" data-ref="name">\#(server.name)</span>"#), "\(row)")
                #expect(row.contains(#"data-ref="state">\#(server.state)</span>"#), "\(row)")
                #expect(row.contains(#"data-ref="requests""#) && row.contains(#">\#(server.requests)</td>"#), "\(row)")
            }
            // It polled without an error, and read the decisions of the adaptive backend. (The
            // dump holds the script too: these are elements, not strings in its source.)
            #expect(dom.contains(#"<div class="live on" id="live" aria-live="polite"><span class="dot"></span><span id="live-text">Live · updated "#))
            #expect(dom.contains(#"<div id="status" class="status" role="status" aria-live="polite"></div>"#))
            #expect(dom.contains(#"<ol data-ref="decision-list"><li"#))
            // The why line: the latest evaluation's verdict and its evidence (with one server
            // drained, too little in rotation to judge).
            #expect(
                dom.contains(
                    #/<p class="why-now" data-ref="why-now">Kept peak_ewma — <b>insufficient_data<\/b>: \d+ requests over 1 servers is too little to judge<\/p>/#
                )
            )
            #expect(!dom.contains(#"<li class="muted">The decisions could not be read.</li>"#))
            #expect(!dom.contains(#"id="placeholder""#))
        }
    }

    @Test(
        "in headless Chromium a TCP backend is marked and counts connections, HTTP/2 servers show their protocol, any backend's algorithm switches, sticky is marked",
        .enabled(if: Chromium.executable != nil, "chromium is not in PATH (apt-get install chromium): the browser test is skipped")
    )
    func marksTCPAndHTTP2() async throws {
        let chromium = try #require(Chromium.executable)
        let h2c = try await WorkerServer.start(name: "g1", http2: true, group: MultiThreadedEventLoopGroup.singleton)
        defer { Task { try await h2c.shutdown() } }
        let tcpPort = try deadPort()
        let yaml: ([Int]) -> String = { ports in
            httpAndTCPConfig(
                appServers: [
                    #"{ name: w1, address: "127.0.0.1:\#(ports[0])" }"#, #"{ name: g1, address: "127.0.0.1:\#(h2c.port)", protocol: h2c }"#,
                ],
                tcpPort: tcpPort,
                rawPort: ports[1]
            )
        }
        try await withAdminAPI(yaml: yaml) { harness, admin in
            for _ in 0..<2 { #expect(try await harness.send("/work?delay_ms=0").status == .ok) }
            let backends = try #require(try await admin.call(.GET, "/api/backends").array)
            let protocols = backends.map { backend in
                (backend["servers"] as? [[String: Any]] ?? []).map { $0["protocol"] as? String ?? "?" }
            }
            #expect(protocols == [["http1", "h2c"], ["tcp"]])
            // Switched at run time: the card says so, and offers the way back.
            let switched = try await admin.call(.PUT, "/api/backends/raw/algorithm", body: #"{"algorithm": "least_connections"}"#)
            #expect(switched.status == .ok)
            var config = harness.proxy.config
            config.backends[0].sticky = StickyConfig(cookie: "SRV")
            try await harness.proxy.reload(to: config)

            let dom = try await Chromium.dumpDOM(executable: chromium, url: "http://127.0.0.1:\(admin.port)/", timeout: .seconds(60))
            let app = try #require(Self.card("app", in: dom))
            let raw = try #require(Self.card("raw", in: dom))
            #expect(app.contains(#"data-ref="mode""#) && app.contains(#"hidden="">TCP</span>"#))
            #expect(!raw.contains(#"hidden="">TCP</span>"#) && raw.contains(">TCP</span>"))
            #expect(app.contains(#"data-ref="sticky" title="sticky: cookie SRV (insert): a client with it goes back to its server">sticky</span>"#))
            #expect(raw.contains(#"data-ref="sticky" hidden="">sticky</span>"#))
            #expect(raw.contains(#"data-ref="rps-head">Conn/s</th>"#))
            #expect(raw.contains(#"data-ref="requests-head">Connections</th>"#))
            #expect(app.contains(#"data-ref="rps-head">Req/s</th>"#))
            // Every backend's algorithm can be switched; a TCP one's only to those that need no
            // response times.
            #expect(app.contains(#"<option value="peak_ewma">peak_ewma</option>"#))
            #expect(raw.contains(#"<option value="least_connections">least_connections</option>"#))
            #expect(!raw.contains(#"<option value="peak_ewma">"#))
            #expect(raw.contains(#"data-ref="unpin" title="Back to the configured algorithm">Reset</button>"#))
            #expect(raw.contains(#"data-ref="active" title="Picking now">least_connections</span>"#))
            #expect(raw.contains(#"Reset returns it to the configured one">switched</span>"#))
            let g1 = try #require(Self.row("g1", in: app))
            #expect(g1.contains(#"<span class="proto" data-ref="protocol" title="HTTP/2 by prior knowledge, plain TCP">h2c</span>"#), "\(g1)")
            let w1 = try #require(Self.row("w1", in: app))
            #expect(w1.contains(#"<span class="proto" data-ref="protocol" hidden=""></span>"#), "\(w1)")
        }
    }

    /// The `<section>` the dashboard renders for `backend`.
    private static func card(_ backend: String, in dom: String) -> String? {
        guard let start = dom.range(of: #"<section class="card" data-backend="\#(backend)""#),
            let end = dom.range(of: "</section>", range: start.upperBound..<dom.endIndex)
        else { return nil }
        return String(dom[start.lowerBound..<end.upperBound])
    }

    /// The `<tr>` the dashboard renders for `server`.
    private static func row(_ server: String, in dom: String) -> String? {
        guard let start = dom.range(of: #"<tr data-server="\#(server)""#),
            let end = dom.range(of: "</tr>", range: start.upperBound..<dom.endIndex)
        else { return nil }
        return String(dom[start.lowerBound..<end.upperBound])
    }

    /// Every `src`, `href` and `action` attribute and every CSS `url(...)` in `html`.
    private static func references(in html: String) -> [String] {
        let attribute = #/(?i)\b(?:src|href|action|srcset|poster)\s*=\s*["']?([^"'\s>]*)/#
        let cssURL = #/(?i)url\(\s*["']?([^"')]*)/#
        return html.matches(of: attribute).map { String($0.output.1) } + html.matches(of: cssURL).map { String($0.output.1) }
    }
}

/// Headless Chromium, driven from the command line.
enum Chromium {
    /// `chromium` (or `chromium-browser`) from PATH.
    static let executable: String? = {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
        for name in ["chromium", "chromium-browser"] {
            for directory in directories where FileManager.default.isExecutableFile(atPath: "\(directory)/\(name)") {
                return "\(directory)/\(name)"
            }
        }
        return nil
    }()

    enum Failure: Error, CustomStringConvertible {
        case timedOut(Duration, String)
        case failed(Int32, String)

        var description: String {
            switch self {
            case .timedOut(let limit, let log): "chromium did not finish within \(limit):\n\(log)"
            case .failed(let status, let log): "chromium exited with \(status):\n\(log)"
            }
        }
    }

    /// Loads `url`, lets its scripts run for 5 s of virtual time (timers fire as fast as the
    /// page's fetches allow), and returns the DOM as HTML.
    static func dumpDOM(executable: String, url: String, timeout: Duration) async throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-chromium-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let outputURL = directory.appendingPathComponent("dom.html")
        let logURL = directory.appendingPathComponent("stderr.log")
        _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let output = try FileHandle(forWritingTo: outputURL)
        let log = try FileHandle(forWritingTo: logURL)
        defer {
            try? output.close()
            try? log.close()
        }

        let process = Process()
        // At a lower priority: the suites run in parallel, and a browser starting at full
        // priority on two cores disturbs the tests beside it that measure time. (Not the
        // lowest: on a loaded machine that starves it past its time limit.)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/nice")
        process.arguments = [
            "-n", "10", executable,
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check",
            "--user-data-dir=\(directory.appendingPathComponent("profile").path)",
            "--virtual-time-budget=5000", "--dump-dom", url,
        ]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = log
        try process.run()
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline {
                process.terminate()
                try? await Task.sleep(for: .seconds(1))
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                throw Failure.timedOut(timeout, Self.tail(of: logURL))
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        guard process.terminationStatus == 0 else {
            throw Failure.failed(process.terminationStatus, Self.tail(of: logURL))
        }
        return try String(contentsOf: outputURL, encoding: .utf8)
    }

    private static func tail(of file: URL) -> String {
        let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(20).joined(separator: "\n")
    }
}
