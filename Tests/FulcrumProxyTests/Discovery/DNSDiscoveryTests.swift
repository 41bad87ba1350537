import FulcrumConfig
import FulcrumWorker
import NIOConcurrencyHelpers
import Testing

@testable import FulcrumProxy

/// Servers that follow DNS, against a real dnsmasq whose records change during the test, with
/// requests flowing all along.
@Suite(
    "Servers from DNS, against a real dnsmasq",
    .enabled(if: DnsmasqProcess.executable != nil, "dnsmasq is not installed (apt-get install dnsmasq): skipped"),
    .timeLimit(.minutes(2))
)
struct DNSDiscoveryTests {
    /// Requests sent one after another on `lanes` lanes until `stop()`: what answered each.
    private final class Traffic: Sendable {
        private let answers = NIOLockedValueBox<[(status: UInt, worker: String)]>([])
        private let stopped = NIOLockedValueBox(false)
        private let task: Task<Void, Never>
        private let lanes: Int

        init(_ harness: ProxyHarness, lanes: Int = 3) {
            self.lanes = lanes
            let (answers, stopped) = (answers, stopped)
            task = Task {
                await withTaskGroup(of: Void.self) { group in
                    for _ in 0..<lanes {
                        group.addTask {
                            while !stopped.withLockedValue({ $0 }) {
                                let answer: (UInt, String)
                                do {
                                    let response = try await harness.send("/work")
                                    answer = (response.status.code, response.worker ?? "none")
                                } catch {
                                    answer = (0, "\(error)")
                                }
                                answers.withLockedValue { $0.append(answer) }
                            }
                        }
                    }
                }
            }
        }

        var count: Int { answers.withLockedValue(\.count) }
        /// The answers so far and one per lane: the requests in flight now may have started
        /// before a change and finish on the servers from before it, as a reload lets them.
        var settled: Int { count + lanes }

        /// The workers that answered after the first `skipping` answers.
        func workers(after skipping: Int) -> Set<String> {
            answers.withLockedValue { Set($0.dropFirst(skipping).map(\.worker)) }
        }

        /// Stops the lanes and returns every answer that was not a 200.
        func stop() async -> [String] {
            stopped.withLockedValue { $0 = true }
            await task.value
            return answers.withLockedValue { $0.filter { $0.status != 200 }.map { "\($0.status) \($0.worker)" } }
        }
    }

    private func serverNames(_ harness: ProxyHarness) async throws -> [String] {
        try await harness.proxy.stats()[0].servers.map(\.name)
    }

    /// A frontend in front of backend `app`, written by `backend` (its keys, indented by four),
    /// whose names `dns` answers.
    private func config(_ dns: DnsmasqProcess, backend: String) -> String {
        """
        global:
          dns: { nameservers: ["127.0.0.1:\(dns.port)"], timeout: 300ms }
        frontends:
          - name: public
            listen: "127.0.0.1:8080"
            default_backend: app
        backends:
          - name: app
        \(backend)
        """
    }

    @Test("A name's A records: servers join, leave and stay as the records change, and a dead DNS keeps the last set")
    func followsAddressRecords() async throws {
        let dns = try await DnsmasqProcess.start(hosts: ["127.0.0.2 app.fulcrum.test"])
        defer { dns.stop() }
        let logs = LogCapture()
        let harness = try await ProxyHarness.start(
            workers: [WorkerBehaviour(), WorkerBehaviour(), WorkerBehaviour()],
            sharedPortHosts: ["127.0.0.2", "127.0.0.3", "127.0.0.4"],
            logs: logs
        ) { ports in
            config(dns, backend: "    resolve_every: 1s\n    servers: [{ name: app, address: \"app.fulcrum.test:\(ports[0])\" }]")
        }
        let traffic = Traffic(harness)
        do {
            // One address: the server keeps its name.
            try await waitUntil(timeout: .seconds(5)) { traffic.count > 20 }
            #expect(try await serverNames(harness) == ["app"])
            #expect(traffic.workers(after: 0) == ["w1"])

            // Two: one server each, named after its address.
            try dns.update(hosts: ["127.0.0.2 app.fulcrum.test", "127.0.0.3 app.fulcrum.test"])
            try await waitUntil(timeout: .seconds(10)) { try await serverNames(harness) == ["app_127.0.0.2", "app_127.0.0.3"] }
            var mark = traffic.settled
            try await waitUntil(timeout: .seconds(5)) { traffic.workers(after: mark) == ["w1", "w2"] }

            // One leaves, one joins, one stays, and keeps what it counted.
            let before = try await harness.proxy.stats()[0].servers.first { $0.name == "app_127.0.0.3" }?.metrics.totals.requests ?? 0
            try dns.update(hosts: ["127.0.0.3 app.fulcrum.test", "127.0.0.4 app.fulcrum.test"])
            try await waitUntil(timeout: .seconds(10)) { try await serverNames(harness) == ["app_127.0.0.3", "app_127.0.0.4"] }
            let after = try await harness.proxy.stats()[0].servers.first { $0.name == "app_127.0.0.3" }?.metrics.totals.requests ?? 0
            #expect(after >= before && before > 0)
            mark = traffic.settled
            try await waitUntil(timeout: .seconds(5)) { traffic.count > mark + 30 }
            #expect(traffic.workers(after: mark) == ["w2", "w3"])

            // DNS gone: the last set stays, said once in the log; a reload keeps it too.
            dns.kill()
            try await Task.sleep(for: .seconds(3))
            var config = harness.proxy.config
            config.backends[0].retries = 1
            try await harness.proxy.reload(to: config)
            #expect(try await serverNames(harness) == ["app_127.0.0.3", "app_127.0.0.4"])
            mark = traffic.settled
            try await waitUntil(timeout: .seconds(5)) { traffic.count > mark + 30 }
            #expect(traffic.workers(after: mark) == ["w2", "w3"])
            #expect(logs.messages.filter { $0.contains("DNS: no answer") }.count == 1)

            // The configuration as written is untouched: what the admin API shows and writes back.
            #expect(harness.proxy.config.backends[0].servers.map(\.address.host) == ["app.fulcrum.test"])
        } catch {
            Issue.record(error)
        }
        let failures = await traffic.stop()
        #expect(failures.isEmpty, "\(failures.prefix(5))")
        try await harness.shutdown()
    }

    @Test("servers_from: SRV records give the servers, their ports and weights, and backups; changes are followed")
    func followsServiceRecords() async throws {
        let port = try await freeLoopbackPort()
        let record = { (target: String, priority: Int, weight: Int) in "_http._tcp.fulcrum.test,\(target).fulcrum.test,\(port),\(priority),\(weight)"
        }
        let dns = try await DnsmasqProcess.start(
            hosts: ["127.0.0.2 a.fulcrum.test", "127.0.0.3 b.fulcrum.test", "127.0.0.4 c.fulcrum.test"],
            srv: [record("a", 0, 10), record("b", 0, 30)]
        )
        defer { dns.stop() }
        let harness = try await ProxyHarness.start(
            workers: [WorkerBehaviour(), WorkerBehaviour(), WorkerBehaviour()],
            sharedPortHosts: ["127.0.0.2", "127.0.0.3", "127.0.0.4"],
            sharedPort: port
        ) { _ in
            config(dns, backend: "    algorithm: weighted_round_robin\n    resolve_every: 1s\n    servers_from: { srv: _http._tcp.fulcrum.test }")
        }
        do {
            let servers = try await harness.proxy.stats()[0].servers
            #expect(servers.map(\.name) == ["a.fulcrum.test", "b.fulcrum.test"])
            #expect(servers.map(\.weight) == [10, 30])
            #expect(servers.map(\.address) == ["127.0.0.2:\(port)", "127.0.0.3:\(port)"])
            let served = try await harness.workersServing(requests: 40)
            #expect(served.filter { $0 == "w1" }.count == 10 && served.filter { $0 == "w2" }.count == 30)

            // a becomes a backup (priority 10), c joins; DNS is down while dnsmasq restarts, and
            // traffic never stops meanwhile.
            let traffic = Traffic(harness)
            try await dns.restart(srv: [record("a", 10, 10), record("b", 0, 30), record("c", 0, 10)])
            try await waitUntil(timeout: .seconds(10)) {
                try await harness.proxy.stats()[0].servers.map { "\($0.name)=\($0.weight)" }
                    == ["a.fulcrum.test=0", "b.fulcrum.test=30", "c.fulcrum.test=10"]
            }
            let mark = traffic.settled
            try await waitUntil(timeout: .seconds(5)) { traffic.count > mark + 40 }
            #expect(traffic.workers(after: mark) == ["w2", "w3"])
            let failures = await traffic.stop()
            #expect(failures.isEmpty, "\(failures.prefix(5))")
        } catch {
            Issue.record(error)
        }
        try await harness.shutdown()
    }

    @Test("A name DNS does not know stops the start with its backend and server; so does an SRV name without records")
    func unknownNames() async throws {
        let dns = try await DnsmasqProcess.start(hosts: ["127.0.0.1 known.fulcrum.test"])
        defer { dns.stop() }
        for (servers, expected) in [
            (
                "servers: [{ name: s1, address: \"unknown.fulcrum.test:80\" }]",
                "backend app, server s1: cannot resolve unknown.fulcrum.test:80 (the nameserver answered unknown.fulcrum.test with REFUSED)"
            ),
            (
                "servers_from: { srv: _http._tcp.unknown.fulcrum.test }",
                "backend app, servers_from: cannot resolve SRV _http._tcp.unknown.fulcrum.test (the nameserver answered"
            ),
        ] {
            await #expect {
                _ = try await ProxyHarness.start(workers: []) { _ in config(dns, backend: "    \(servers)") }
            } throws: { error in
                "\(error)".contains(expected)
            }
        }
    }
}
