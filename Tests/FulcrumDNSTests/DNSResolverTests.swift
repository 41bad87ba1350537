import FulcrumDNS
import FulcrumTestSupport
import NIOCore
import NIOPosix
import Testing

@Suite(
    "DNSResolver against a real dnsmasq",
    .enabled(if: DnsmasqProcess.executable != nil, "dnsmasq is not installed (apt-get install dnsmasq): skipped"),
    .timeLimit(.minutes(1))
)
struct DNSResolverTests {
    private func resolver(_ dnsmasq: DnsmasqProcess, timeout: TimeAmount = .seconds(5)) throws -> DNSResolver {
        DNSResolver(
            nameservers: [try SocketAddress(ipAddress: "127.0.0.1", port: dnsmasq.port)],
            timeout: timeout,
            group: MultiThreadedEventLoopGroup.singleton
        )
    }

    @Test("Every A and AAAA record, with the port; a change is seen on the next question")
    func addresses() async throws {
        let dnsmasq = try await DnsmasqProcess.start(hosts: [
            "10.0.0.2 app.example.internal", "10.0.0.1 app.example.internal", "2001:db8::7 app.example.internal",
        ])
        defer { dnsmasq.stop() }
        let resolver = try resolver(dnsmasq)
        let first = try await resolver.addresses(of: "app.example.internal", port: 8080)
        #expect(first.map { "\($0.ipAddress ?? "") \($0.port ?? 0)" } == ["10.0.0.1 8080", "10.0.0.2 8080", "2001:db8::7 8080"])
        try dnsmasq.update(hosts: ["10.0.0.3 app.example.internal"])
        // dnsmasq notices the file by inotify, a moment later.
        var second: [String] = []
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            second = try await resolver.addresses(of: "app.example.internal", port: 8080).map { $0.ipAddress ?? "" }
            if second == ["10.0.0.3"] { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(second == ["10.0.0.3"])
    }

    @Test("A name that does not exist, and a nameserver that does not answer")
    func failures() async throws {
        let dnsmasq = try await DnsmasqProcess.start(hosts: ["10.0.0.1 app.example.internal"])
        let resolver = try resolver(dnsmasq, timeout: .milliseconds(300))
        await #expect(throws: DNSResolverError.self) { try await resolver.addresses(of: "nothing.example.internal", port: 80) }
        dnsmasq.stop()
        let start = ContinuousClock.now
        await #expect(throws: (any Error).self) { try await resolver.query("app.example.internal", type: .a) }
        #expect(ContinuousClock.now - start >= .milliseconds(250))
    }

    @Test("SRV records: each target with its port, weight and addresses")
    func services() async throws {
        let dnsmasq = try await DnsmasqProcess.start(
            hosts: ["10.0.0.11 app1.example.internal", "10.0.0.12 app2.example.internal"],
            srv: ["_http._tcp.example.internal,app1.example.internal,8080,0,10", "_http._tcp.example.internal,app2.example.internal,9090,0,20"]
        )
        defer { dnsmasq.stop() }
        let services = try await resolver(dnsmasq).services("_http._tcp.example.internal")
        #expect(services.map(\.target) == ["app1.example.internal", "app2.example.internal"])
        #expect(services.map(\.port) == [8080, 9090])
        #expect(services.map(\.weight) == [10, 20])
        #expect(services.map { $0.addresses.map { $0.ipAddress ?? "" } } == [["10.0.0.11"], ["10.0.0.12"]])
    }
}
