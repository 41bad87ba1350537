import FulcrumConfig
import Testing

/// `global.dns`, `resolve_every` and `servers_from`.
@Suite struct DiscoveryConfigTests {
    private static func yaml(global: String = "", backend: String) -> String {
        global + """
            frontends:
              - name: public
                listen: "127.0.0.1:8080"
                default_backend: web
            backends:
              - name: web
            \(backend)
            """
    }

    @Test("The defaults: resolv.conf's nameservers, 2s, IPv4 preferred; every 30s; no servers_from")
    func defaults() throws {
        let config = try ConfigLoader.load(yaml: Self.yaml(backend: "    servers: [{ name: app, address: \"app.internal:8080\" }]"))
        #expect(config.global.dns == nil)
        #expect(DNSConfig().nameservers.isEmpty && DNSConfig().timeout == .seconds(2) && DNSConfig().family == .ipv4Preferred)
        #expect(config.backends[0].resolveEvery == .seconds(30))
        #expect(config.backends[0].serversFrom == nil)
        #expect(config.backends[0].followsDNS)
        #expect(try ConfigLoader.load(yaml: minimalYAML).backends[0].followsDNS == false)
    }

    @Test("Every key set: nameservers with and without a port, servers_from with server settings")
    func everyKey() throws {
        let config = try ConfigLoader.load(
            yaml: Self.yaml(
                global: """
                    global:
                      dns: { nameservers: ["127.0.0.1:5353", "10.0.0.53", "[::1]:53"], timeout: 500ms, family: all }

                    """,
                backend: """
                        resolve_every: 5s
                        servers_from: { srv: _http._tcp.example.internal, protocol: h2c, max_requests: 10, slow_start: 5s }
                    """
            )
        )
        let dns = try #require(config.global.dns)
        #expect(
            dns.nameservers == [
                ServerAddress(host: "127.0.0.1", port: 5353), ServerAddress(host: "10.0.0.53", port: 53), ServerAddress(host: "::1", port: 53),
            ]
        )
        #expect(dns.timeout == .milliseconds(500))
        #expect(dns.family == .all)
        let backend = config.backends[0]
        #expect(backend.resolveEvery == .seconds(5))
        #expect(backend.servers.isEmpty)
        let source = try #require(backend.serversFrom)
        #expect(source.srv == "_http._tcp.example.internal")
        #expect(source.template.upstreamProtocol == .h2c)
        #expect(source.template.maxRequests == 10)
        #expect(source.template.slowStart == .seconds(5))
        // A limit on the servers it builds gives the backend its queue, as a server's would.
        #expect(backend.effectiveQueue != nil)
        // Written back, it reads the same.
        #expect(try ConfigLoader.load(yaml: ConfigRenderer.yaml(config)) == config)
    }

    @Test("Errors: nameservers by name, a short resolve_every, servers_from without srv or with a server's own keys")
    func errors() {
        #expect(
            loadErrors(
                Self.yaml(
                    global: "global:\n  dns: { nameservers: [dns.internal], family: ipv5 }\n",
                    backend: "    servers: [{ name: a, address: \"10.0.0.1:80\" }]"
                )
            )
                == [
                    #"global.dns.nameservers[0] (line 2): "dns.internal" is not a nameserver: expected an IP address, with a port or not (127.0.0.1, [::1]:53)"#,
                    #"global.dns.family (line 2): unknown address family "ipv5"; expected one of: ipv4_preferred, ipv6_preferred, all"#,
                ]
        )
        #expect(
            loadErrors(Self.yaml(backend: "    resolve_every: 100ms\n    servers: [{ name: a, address: \"10.0.0.1:80\" }]"))
                == ["backends[0].resolve_every (line 7): is at least 1s: each name is asked at most once a second"]
        )
        #expect(
            loadErrors(Self.yaml(backend: "    servers_from: { protocol: h2c }"))
                == ["backends[0].servers_from.srv (line 7): required key \"srv\" is missing"]
        )
        #expect(loadErrors(Self.yaml(backend: "    servers_from: { srv: _http._tcp.x, weight: 3 }")).count == 1)
        #expect(
            loadErrors(Self.yaml(backend: "    servers_from: { srv: \"a b\" }"))
                == [#"backends[0].servers_from.srv (line 7): "a b" is not a DNS name (letters, digits, ".", "_" and "-", at most 253)"#]
        )
        // Without servers_from, servers stay required.
        #expect(loadErrors(Self.yaml(backend: "    retries: 1")) == ["backends[0].servers (line 6): required key \"servers\" is missing"])
    }
}
