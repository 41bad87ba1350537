import FulcrumConfig
import Testing

/// `trusted_proxies`, `client_ip_header`, `forwarded` and `x_real_ip` on a frontend.
@Suite("Forwarding headers: settings")
struct ForwardingConfigTests {
    static func yaml(_ frontend: String, mode: String = "http") -> String {
        """
        frontends:
          - name: public
            mode: \(mode)
            listen: "127.0.0.1:8080"
            default_backend: web
        \(frontend)
        backends:
          - { name: web, mode: \(mode), servers: [{ name: web1, address: "127.0.0.1:9001" }] }
        """
    }

    @Test("defaults: no one trusted, X-Forwarded-*, no X-Real-IP; every setting given")
    func loads() throws {
        let plain = try ConfigLoader.load(yaml: Self.yaml(""))
        #expect(plain.frontends[0].forwarding == ForwardingConfig())
        let full = try ConfigLoader.load(
            yaml: Self.yaml("    trusted_proxies: 10.0.0.0/8\n    client_ip_header: forwarded\n    forwarded: rfc7239\n    x_real_ip: true")
        )
        let forwarding = full.frontends[0].forwarding
        #expect(forwarding.trustedProxies == [CIDRBlock(parsing: "10.0.0.0/8")!])
        #expect(forwarding.clientIPHeader == .forwarded && forwarding.headers == .rfc7239 && forwarding.xRealIP)
        #expect(try ConfigLoader.load(yaml: ConfigRenderer.yaml(full)) == full)
    }

    @Test(
        "refused: client_ip_header without trusted proxies, an unknown header set, a bad block, any of them in mode: tcp",
        arguments: [
            (
                yaml("    client_ip_header: forwarded"),
                "frontends[0].client_ip_header (line 6): applies only with trusted_proxies (only a trusted proxy may name the client)"
            ),
            (
                yaml("    forwarded: rfc7230"),
                #"frontends[0].forwarded (line 6): unknown forwarded headers "rfc7230"; expected one of: x-forwarded, rfc7239, both"#
            ),
            (
                yaml("    trusted_proxies: [10.0.0.0/33]"),
                #"frontends[0].trusted_proxies[0] (line 6): "10.0.0.0/33" is not a valid CIDR block (expected e.g. 10.0.0.0/8, 2001:db8::/32 or a single address)"#
            ),
        ]
    )
    func errors(yaml: String, expected: String) {
        #expect(loadErrors(yaml) == [expected])
    }

    @Test("a mode: tcp frontend reads no headers: the settings are refused there")
    func tcpRefuses() {
        let errors = loadErrors(Self.yaml("    trusted_proxies: [10.0.0.0/8]", mode: "tcp"))
        #expect(errors.count == 1 && errors[0].hasPrefix("frontends[0].trusted_proxies (line 6):"), "\(errors)")
    }
}
