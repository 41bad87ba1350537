import FulcrumConfig
import Testing

/// `accept_proxy` on frontends and `send_proxy` on servers: what they load as, and the errors
/// for what they cannot be.
@Suite("PROXY protocol settings")
struct ProxyProtocolConfigTests {
    static func yaml(frontend: String = "", server: String = "") -> String {
        """
        frontends:
          - name: edge
            listen: 127.0.0.1:8080
            default_backend: web
        \(frontend)
        backends:
          - name: web
            servers:
              - { name: w1, address: "127.0.0.1:9001"\(server) }
        """
    }

    @Test("accept_proxy lists its sources; send_proxy names a version; both are off by default")
    func loads() throws {
        let defaults = try ConfigLoader.load(yaml: Self.yaml())
        #expect(defaults.frontends[0].acceptProxyFrom == nil)
        #expect(defaults.backends[0].servers[0].sendProxy == nil)

        let config = try ConfigLoader.load(
            yaml: Self.yaml(frontend: "    accept_proxy: { from: [10.0.0.0/8, 2001:db8::/32] }", server: ", send_proxy: v1")
        )
        #expect(config.frontends[0].acceptProxyFrom == [CIDRBlock(parsing: "10.0.0.0/8")!, CIDRBlock(parsing: "2001:db8::/32")!])
        #expect(config.backends[0].servers[0].sendProxy == .v1)
        // A single source needs no list.
        let single = try ConfigLoader.load(yaml: Self.yaml(frontend: "    accept_proxy: { from: 127.0.0.1 }", server: ", send_proxy: v2"))
        #expect(single.frontends[0].acceptProxyFrom?.count == 1)
        #expect(single.backends[0].servers[0].sendProxy == .v2)
    }

    @Test(
        "what accept_proxy and send_proxy cannot be is reported where it is written",
        arguments: [
            (
                yaml(frontend: "    accept_proxy: { from: [] }"),
                "frontends[0].accept_proxy.from (line 5): must list at least one value"
            ),
            (
                yaml(frontend: "    accept_proxy: {}"),
                #"frontends[0].accept_proxy.from (line 5): required key "from" is missing"#
            ),
            (
                yaml(frontend: "    accept_proxy: { from: 10.0.0.0/33 }"),
                #"frontends[0].accept_proxy.from (line 5): "10.0.0.0/33" is not a valid CIDR block (expected e.g. 10.0.0.0/8, 2001:db8::/32 or a single address)"#
            ),
            (
                yaml(frontend: "    accept_proxy: { from: 10.0.0.0/8, trust: all }"),
                #"frontends[0].accept_proxy.trust (line 5): unknown key "trust"; allowed keys: from"#
            ),
            (
                yaml(server: ", send_proxy: v3"),
                #"backends[0].servers[0].send_proxy (line 9): unknown PROXY protocol version "v3"; expected one of: v1, v2"#
            ),
        ]
    )
    func errors(yaml: String, expected: String) {
        #expect(loadErrors(yaml) == [expected])
    }
}
