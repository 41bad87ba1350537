import FulcrumConfig
import Testing

/// `slow_start` on a backend and on a server: what it loads as, and what is refused.
@Suite("Slow start: settings")
struct SlowStartConfigTests {
    static func yaml(backend: String = "", server: String = "") -> String {
        """
        frontends:
          - { name: public, listen: "127.0.0.1:8080", default_backend: web }
        backends:
          - name: web
            servers:
              - { name: web1, address: "127.0.0.1:9001"\(server) }
              - { name: web2, address: "127.0.0.1:9002" }
        \(backend)
        """
    }

    @Test("a backend's, a server's that overrides it, a server's 0s that turns it off for that server")
    func loads() throws {
        let config = try ConfigLoader.load(yaml: Self.yaml(backend: "    slow_start: 30s", server: ", slow_start: 0s"))
        #expect(config.backends[0].slowStart == .seconds(30))
        #expect(config.backends[0].servers[0].slowStart == .zero)
        #expect(config.backends[0].servers[1].slowStart == nil)
        #expect(try ConfigLoader.load(yaml: ConfigRenderer.yaml(config)) == config)
        let none = try ConfigLoader.load(yaml: Self.yaml())
        #expect(none.backends[0].slowStart == nil)
    }

    @Test(
        "refused: a backend's zero, a value that is no duration",
        arguments: [
            (yaml(backend: "    slow_start: 0s"), "backends[0].slow_start (line 8): must be greater than zero"),
            (
                yaml(server: ", slow_start: soon"),
                #"backends[0].servers[0].slow_start (line 6): "soon" is not a valid duration (expected a number and a unit: 250ms, 2s, 1m, 1h)"#
            ),
        ]
    )
    func errors(yaml: String, expected: String) {
        #expect(loadErrors(yaml) == [expected])
    }
}
