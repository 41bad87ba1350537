import FulcrumConfig
import Testing

@testable import FulcrumProxy

/// `Config.expandingServers`: what the data plane serves for the servers DNS gives.
@Suite struct ServerExpansionTests {
    private static func config(servers: [ServerConfig], from srv: ServersFromConfig? = nil) -> Config {
        var backend = BackendConfig(name: "web", servers: servers)
        backend.serversFrom = srv
        return Config(
            frontends: [FrontendConfig(name: "public", listen: [ListenAddress(host: "127.0.0.1", port: 8080)], defaultBackend: "web")],
            backends: [backend]
        )
    }

    private static func server(_ name: String, _ host: String, port: Int = 8080, weight: Int = 1) -> ServerConfig {
        ServerConfig(name: name, address: ServerAddress(host: host, port: port), weight: weight)
    }

    @Test("A name with one address keeps the server's name; with several, each address is a server named after it")
    func hosts() {
        var tls = ServerTLSConfig()
        tls.caFile = "/ca.pem"
        var named = Self.server("app", "app.internal", weight: 3)
        named.tls = tls
        let config = Self.config(servers: [Self.server("fixed", "10.0.0.9"), named, Self.server("one", "one.internal")])
        let expanded = config.expandingServers(
            with: DiscoveredServers(hosts: ["app.internal": ["10.0.0.1", "2001:db8::7"], "one.internal": ["10.0.0.5"]])
        )
        let servers = expanded.backends[0].servers
        #expect(servers.map(\.name) == ["fixed", "app_10.0.0.1", "app_2001-db8--7", "one"])
        #expect(servers.map(\.address.description) == ["10.0.0.9:8080", "10.0.0.1:8080", "[2001:db8::7]:8080", "10.0.0.5:8080"])
        #expect(servers.allSatisfy { ConfigName.isValid($0.name) })
        // Settings carry over; TLS still sends and verifies the name.
        #expect(servers[1].weight == 3 && servers[2].weight == 3)
        #expect(servers[1].tls?.serverName == "app.internal" && servers[1].tls?.caFile == "/ca.pem")
        #expect(servers[3].tls == nil)
        // The frontends, and everything else, are as written.
        #expect(expanded.frontends == config.frontends)
        // A configuration with no names is served as it is.
        let literal = Self.config(servers: [Self.server("fixed", "10.0.0.9")])
        #expect(literal.expandingServers(with: DiscoveredServers()) == literal)
    }

    @Test("SRV records: named after their targets, weighted by them, backups beyond the lowest priority")
    func services() {
        var template = ServerConfig(name: "", address: ServerAddress(host: "", port: 0))
        template.upstreamProtocol = .h2c
        template.maxRequests = 10
        let config = Self.config(
            servers: [Self.server("static", "10.0.0.9")],
            from: ServersFromConfig(srv: "_http._tcp.example.internal", template: template)
        )
        let records: [DiscoveredServers.Service] = [
            .init(target: "a.example.internal.", port: 8080, priority: 10, weight: 20, addresses: ["10.0.0.1"]),
            .init(target: "b.example.internal", port: 8080, priority: 10, weight: 0, addresses: ["10.0.0.2", "10.0.0.3"]),
            .init(target: "c.example.internal", port: 9000, priority: 20, weight: 5, addresses: ["10.0.0.4"]),
            .init(target: "c.example.internal", port: 9001, priority: 10, weight: 70_000, addresses: ["10.0.0.4"]),
        ]
        let servers = config.expandingServers(with: DiscoveredServers(services: ["_http._tcp.example.internal": records])).backends[0].servers
        #expect(
            servers.map(\.name) == [
                "static", "a.example.internal", "b.example.internal_10.0.0.2", "b.example.internal_10.0.0.3",
                "c.example.internal_9000", "c.example.internal_9001",
            ]
        )
        #expect(
            servers.map(\.address.description) == [
                "10.0.0.9:8080", "10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080", "10.0.0.4:9000", "10.0.0.4:9001",
            ]
        )
        // Weight 0 in a record is the least share, not a backup; 70,000 is capped; priority 20 is a backup.
        #expect(servers.map(\.weight) == [1, 20, 1, 1, 0, 256])
        #expect(servers.dropFirst().allSatisfy { $0.upstreamProtocol == .h2c && $0.maxRequests == 10 })
        #expect(servers.allSatisfy { ConfigName.isValid($0.name) })
    }

    @Test("A name nothing is known of yet gives no server, and a record cannot take a server's name")
    func gapsAndCollisions() {
        let config = Self.config(
            servers: [Self.server("a.example.internal", "10.0.0.9"), Self.server("app", "app.internal")],
            from: ServersFromConfig(srv: "_http._tcp.example.internal")
        )
        let servers = config.expandingServers(
            with: DiscoveredServers(services: [
                "_http._tcp.example.internal": [.init(target: "a.example.internal", port: 80, priority: 0, weight: 1, addresses: ["10.0.0.1"])]
            ])
        ).backends[0].servers
        #expect(servers.map(\.address.description) == ["10.0.0.9:8080"])
    }

    @Test("The questions a configuration asks, each as often as its most eager backend")
    func questions() {
        var first = BackendConfig(name: "a", servers: [Self.server("x", "app.internal"), Self.server("y", "10.0.0.1")])
        first.resolveEvery = .seconds(10)
        var second = BackendConfig(name: "b", servers: [Self.server("x", "app.internal")])
        second.serversFrom = ServersFromConfig(srv: "_http._tcp.example.internal")
        let config = Config(frontends: [], backends: [first, second, BackendConfig(name: "c", servers: [Self.server("z", "10.0.0.2")])])
        #expect(
            ServerDiscovery.questions(in: config) == [
                .host("app.internal"): .seconds(10), .service("_http._tcp.example.internal"): .seconds(30),
            ]
        )
    }
}
