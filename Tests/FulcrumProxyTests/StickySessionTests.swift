import FulcrumBalancing
import FulcrumConfig
import FulcrumWorker
import NIOHTTP1
import Testing

/// `sticky` through a real proxy to real workers: a client's cookie keeps it on its worker
/// through draining, and moves it (with a new cookie) when the worker cannot take it.
@Suite("Sticky sessions through the proxy", .serialized)
struct StickySessionTests {
    static func config(_ ports: [Int], sticky: String) -> String {
        simpleConfig(ports).replacingOccurrences(of: "algorithm: round_robin\n", with: "algorithm: round_robin\n    sticky: \(sticky)\n")
    }

    /// Each server's cookie value, from the admin API's numbers.
    static func values(_ harness: ProxyHarness) async throws -> [String: String] {
        let stats = try await harness.proxy.stats()
        return Dictionary(uniqueKeysWithValues: stats[0].servers.map { ($0.name, $0.stickyValue ?? "") })
    }

    /// The `SRV` value a response sets, if it sets one.
    static func setValue(_ response: CollectedResponse, cookie: String = "SRV") -> String? {
        response.headers["set-cookie"].lazy.compactMap { line -> String? in
            guard line.hasPrefix("\(cookie)=") else { return nil }
            return String(line.dropFirst(cookie.count + 1).prefix { $0 != ";" })
        }.first
    }

    @Test("insert: a new client gets a cookie naming its worker; with it, it stays there and the worker never sees it")
    func insertKeepsClients() async throws {
        let workers = Array(repeating: WorkerBehaviour(delayMilliseconds: 0), count: 3)
        try await withProxy(workers: workers, yaml: { Self.config($0, sticky: "{ cookie: SRV }") }) { harness in
            let values = try await Self.values(harness)
            #expect(Set(values.values).count == 3)
            #expect(values.values.allSatisfy { $0.count == 16 && $0.allSatisfy(\.isHexDigit) }, "\(values)")

            let first = try await harness.send("/echo")
            let worker = try #require(first.worker)
            let setCookie = try #require(first.headers["set-cookie"].first)
            #expect(setCookie == "SRV=\(values[worker]!); Path=/; HttpOnly")
            #expect(first.headers["cache-control"] == ["private"])

            let cookie = ("Cookie", "theme=dark; SRV=\(values[worker]!); lang=en")
            for _ in 0..<9 {
                let response = try await harness.send("/echo", headers: [cookie])
                #expect(response.worker == worker)
                #expect(response.headers["set-cookie"].isEmpty)
                #expect(response.headers["cache-control"].isEmpty)
                // The worker sees the client's other cookies, not Fulcrum's.
                let echoed = try response.echoedHeaders.filter { $0.0.lowercased() == "cookie" }.map(\.1)
                #expect(echoed == ["theme=dark; lang=en"])
            }
            // Without the cookie, round robin as before.
            #expect(Set(try await harness.workersServing(requests: 3)).count == 3)
            // A cookie that is only Fulcrum's is taken out whole.
            let alone = try await harness.send("/echo", headers: [("Cookie", "SRV=\(values[worker]!)")])
            #expect(try alone.echoedHeaders.allSatisfy { $0.0.lowercased() != "cookie" })
        }
    }

    @Test("a draining worker keeps its clients and takes no new ones; in maintenance, its clients move with a new cookie")
    func drainKeepsMaintenanceMoves() async throws {
        let workers = Array(repeating: WorkerBehaviour(delayMilliseconds: 0), count: 3)
        try await withProxy(workers: workers, yaml: { Self.config($0, sticky: "{ cookie: SRV }") }) { harness in
            let values = try await Self.values(harness)
            let cookie = ("Cookie", "SRV=\(values["w2"]!)")
            #expect(harness.proxy.setServerState(.drain, backend: "app", server: "w2"))
            for _ in 0..<4 {
                let response = try await harness.send("/work", headers: [cookie])
                #expect(response.worker == "w2")
                #expect(response.headers["set-cookie"].isEmpty)
            }
            let newClients = try await harness.workersServing(requests: 6)
            #expect(!newClients.contains("w2"), "\(newClients)")

            #expect(harness.proxy.setServerState(.maintenance, backend: "app", server: "w2"))
            let moved = try await harness.send("/work", headers: [cookie])
            let newWorker = try #require(moved.worker)
            #expect(newWorker != "w2")
            #expect(Self.setValue(moved) == values[newWorker])
            // The new cookie holds, and holds when w2 is back.
            #expect(harness.proxy.setServerState(.ready, backend: "app", server: "w2"))
            for _ in 0..<4 {
                let response = try await harness.send("/work", headers: [("Cookie", "SRV=\(values[newWorker]!)")])
                #expect(response.worker == newWorker)
            }
            // The old cookie goes back to w2, which is up again.
            #expect(try await harness.send("/work", headers: [cookie]).worker == "w2")
        }
    }

    @Test("a dead worker's client is retried elsewhere and given a new cookie; a forged value is balanced, and replaced")
    func deadServerAndForgery() async throws {
        let dead = try refusingPort()
        let workers = Array(repeating: WorkerBehaviour(delayMilliseconds: 0), count: 2)
        try await withProxy(workers: workers, yaml: { Self.config($0 + [dead], sticky: "{ cookie: SRV }") }) { harness in
            let values = try await Self.values(harness)
            for _ in 0..<3 {
                let response = try await harness.send("/work", headers: [("Cookie", "SRV=\(values["w3"]!)")])
                #expect(response.status == .ok)
                let worker = try #require(response.worker)
                #expect(Self.setValue(response) == values[worker])
            }
            for forged in ["0000000000000000", "w1", "\(values["w1"]!)x", ""] {
                let response = try await harness.send("/echo", headers: [("Cookie", "SRV=\(forged)")])
                #expect(response.status == .ok)
                let worker = try #require(response.worker)
                #expect(Self.setValue(response) == values[worker], "\(forged)")
                #expect(try response.echoedHeaders.allSatisfy { $0.0.lowercased() != "cookie" }, "\(forged)")
            }
        }
    }

    @Test("attributes: Max-Age from ttl, SameSite, Secure, and HttpOnly off")
    func attributes() async throws {
        let workers = [WorkerBehaviour(delayMilliseconds: 0)]
        let sticky = "{ cookie: lb, ttl: 2h, secure: true, httponly: false, samesite: strict }"
        try await withProxy(workers: workers, yaml: { Self.config($0, sticky: sticky) }) { harness in
            let values = try await Self.values(harness)
            let response = try await harness.send("/work")
            #expect(response.headers["set-cookie"] == ["lb=\(values["w1"]!); Path=/; Max-Age=7200; SameSite=Strict; Secure"])
        }
    }

    @Test("prefix: the worker's own session cookie carries its server; the worker sees its own value")
    func prefix() async throws {
        let workers = Array(repeating: WorkerBehaviour(delayMilliseconds: 0), count: 3)
        try await withProxy(workers: workers, yaml: { Self.config($0, sticky: "{ cookie: JSESSIONID, mode: prefix }") }) { harness in
            let values = try await Self.values(harness)
            let login = try await harness.send("/echo?set_cookie=JSESSIONID")
            let worker = try #require(login.worker)
            #expect(login.headers["set-cookie"] == ["JSESSIONID=\(values[worker]!)~\(worker)-session; Path=/; HttpOnly"])
            // A response without the server's cookie sets none.
            #expect(try await harness.send("/echo").headers["set-cookie"].isEmpty)

            let cookie = ("Cookie", "JSESSIONID=\(values[worker]!)~\(worker)-session; theme=dark")
            for _ in 0..<6 {
                let response = try await harness.send("/echo", headers: [cookie])
                #expect(response.worker == worker)
                let echoed = try response.echoedHeaders.filter { $0.0.lowercased() == "cookie" }.map(\.1)
                #expect(echoed == ["JSESSIONID=\(worker)-session; theme=dark"])
            }
            // A session cookie without a prefix reaches the server as it is, and is balanced.
            let plain = try await harness.send("/echo", headers: [("Cookie", "JSESSIONID=abc")])
            #expect(try plain.echoedHeaders.contains { $0.0.lowercased() == "cookie" && $0.1 == "JSESSIONID=abc" })
        }
    }

    @Test("a reload that keeps the servers keeps the cookies; one that removes a server moves its clients")
    func reload() async throws {
        let workers = Array(repeating: WorkerBehaviour(delayMilliseconds: 0), count: 3)
        try await withProxy(workers: workers, yaml: { Self.config($0, sticky: "{ cookie: SRV }") }) { harness in
            let values = try await Self.values(harness)
            var config = harness.proxy.config
            config.backends[0].retries = 3
            try await harness.proxy.reload(to: config)
            #expect(try await Self.values(harness) == values)
            for name in ["w1", "w2", "w3"] {
                #expect(try await harness.send("/work", headers: [("Cookie", "SRV=\(values[name]!)")]).worker == name)
            }
            config.backends[0].servers.removeAll { $0.name == "w3" }
            try await harness.proxy.reload(to: config)
            let moved = try await harness.send("/work", headers: [("Cookie", "SRV=\(values["w3"]!)")])
            #expect(moved.worker != "w3")
            #expect(Self.setValue(moved) == moved.worker.flatMap { values[$0] })
            #expect(try await harness.send("/work", headers: [("Cookie", "SRV=\(values["w1"]!)")]).worker == "w1")
        }
    }
}
