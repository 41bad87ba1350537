import FulcrumConfig
import FulcrumWorker
import NIOHTTP1
import Testing

/// `trusted_proxies`, `client_ip_header`, `forwarded` and `x_real_ip` through a real proxy to
/// a real worker (the test's client on 127.0.0.1 plays the proxy in front).
@Suite("Trusted proxies and forwarding headers", .serialized)
struct TrustedProxyTests {
    static func config(_ ports: [Int], forwarding: String) -> String {
        simpleConfig(
            ports,
            frontendExtra: """
                    acls:
                      outsiders: { src: ["203.0.113.0/24"] }
                    rules:
                      - { deny: 403, if: outsiders }
                    rate_limits:
                      per_client: { key: src, rate: 3/1h }
                \(forwarding)
                """
        )
    }

    static func echoed(_ response: CollectedResponse, _ name: String) throws -> [String] {
        try response.echoedHeaders.filter { $0.0.lowercased() == name }.map(\.1)
    }

    @Test("from a trusted proxy: the client is the rightmost untrusted address, for ACLs and rate limits")
    func trustedPeer() async throws {
        let yaml: ([Int]) -> String = { Self.config($0, forwarding: "    trusted_proxies: [127.0.0.0/8, 10.0.0.0/8]") }
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: yaml) { harness in
            // The client named, through one more trusted hop: denied by the src ACL.
            let denied = try await harness.send("/echo", headers: [("X-Forwarded-For", "203.0.113.9, 10.1.2.3")])
            #expect(denied.status == .forbidden)
            // A forged address to the left of an untrusted one is not believed.
            let forged = try await harness.send("/echo", headers: [("X-Forwarded-For", "203.0.113.9, 198.51.100.4")])
            #expect(forged.status == .ok)
            // The rate limit counts each named client apart: three each.
            for client in ["198.51.100.1", "198.51.100.2"] {
                let statuses = try await (0..<4).asyncMap { _ in
                    try await harness.send("/echo", headers: [("X-Forwarded-For", client)]).status.code
                }
                #expect(statuses == [200, 200, 200, 429], "\(client): \(statuses)")
            }
            // The server still sees the whole chain, with this hop added.
            let echoed = try await harness.send("/echo", headers: [("X-Forwarded-For", "192.0.2.1")])
            #expect(try Self.echoed(echoed, "x-forwarded-for") == ["192.0.2.1, 127.0.0.1"])
        }
    }

    @Test("from anyone else: the headers name no one, the peer is the client")
    func untrustedPeer() async throws {
        let yaml: ([Int]) -> String = { Self.config($0, forwarding: "    trusted_proxies: [10.0.0.0/8]") }
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: yaml) { harness in
            let response = try await harness.send("/echo", headers: [("X-Forwarded-For", "203.0.113.9")])
            #expect(response.status == .ok)
            let forwarded = try await harness.send("/echo", headers: [("Forwarded", "for=203.0.113.9")])
            #expect(forwarded.status == .ok)
        }
    }

    @Test("client_ip_header: forwarded reads RFC 7239's for=, IPv6 and ports included; X-Real-IP names the client")
    func forwardedHeaderIn() async throws {
        let yaml: ([Int]) -> String = { ports in
            Self.config(ports, forwarding: "    trusted_proxies: [127.0.0.1]\n    client_ip_header: forwarded\n    x_real_ip: true")
        }
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: yaml) { harness in
            let denied = try await harness.send("/echo", headers: [("Forwarded", #"for="203.0.113.9:4711";proto=https, for=127.0.0.1"#)])
            #expect(denied.status == .forbidden)
            // X-Forwarded-For is not the header this frontend believes.
            #expect(try await harness.send("/echo", headers: [("X-Forwarded-For", "203.0.113.9")]).status == .ok)
            let v6 = try await harness.send("/echo", headers: [("Forwarded", #"For="[2001:DB8::1]:443""#), ("X-Real-IP", "6.6.6.6")])
            #expect(try Self.echoed(v6, "x-real-ip") == ["2001:db8::1"])
            let obfuscated = try await harness.send("/echo", headers: [("Forwarded", "for=_hidden")])
            #expect(try Self.echoed(obfuscated, "x-real-ip") == ["127.0.0.1"])
        }
    }

    @Test("forwarded: rfc7239 adds Forwarded instead of X-Forwarded-*, extending the client's; both adds both")
    func forwardedHeaderOut() async throws {
        try await withProxy(
            workers: [WorkerBehaviour(delayMilliseconds: 0)],
            yaml: { simpleConfig($0, frontendExtra: "    forwarded: rfc7239") }
        ) { harness in
            let response = try await harness.send("/echo", headers: [("Forwarded", "for=192.0.2.60"), ("X-Forwarded-For", "1.2.3.4")])
            #expect(try Self.echoed(response, "forwarded") == ["for=192.0.2.60, for=127.0.0.1;proto=http;host=\"127.0.0.1:\(harness.port)\""])
            #expect(try Self.echoed(response, "x-forwarded-for").isEmpty)
            #expect(try Self.echoed(response, "x-forwarded-proto").isEmpty)
            var config = harness.proxy.config
            config.frontends[0].forwarding.headers = .both
            try await harness.proxy.reload(to: config)
            let both = try await harness.send("/echo")
            #expect(try Self.echoed(both, "forwarded") == ["for=127.0.0.1;proto=http;host=\"127.0.0.1:\(harness.port)\""])
            #expect(try Self.echoed(both, "x-forwarded-for") == ["127.0.0.1"])
            // Without the setting, a client's Forwarded passes as it is, and X-Real-IP too.
            config.frontends[0].forwarding.headers = .xForwarded
            try await harness.proxy.reload(to: config)
            let plain = try await harness.send("/echo", headers: [("Forwarded", "for=192.0.2.60")])
            #expect(try Self.echoed(plain, "forwarded") == ["for=192.0.2.60"])
        }
    }
}
