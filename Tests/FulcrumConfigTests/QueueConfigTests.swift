import FulcrumConfig
import Testing

/// `max_connections`, `max_requests` and `queue`: what they load as, and what is refused.
@Suite("Server limits and the queue: settings")
struct QueueConfigTests {
    static func yaml(backend: String = "", server: String = "", mode: String = "http") -> String {
        """
        frontends:
          - { name: public, listen: "127.0.0.1:8080", default_backend: web, mode: \(mode) }
        backends:
          - name: web
            mode: \(mode)
            servers:
              - { name: web1, address: "127.0.0.1:9001"\(server) }
        \(backend)
        """
    }

    @Test("limits on a server, a queue with its defaults, max 0 for none")
    func loads() throws {
        let config = try ConfigLoader.load(
            yaml: Self.yaml(backend: "    queue: { timeout: 2s }", server: ", max_connections: 50, max_requests: 20")
        )
        #expect(config.backends[0].servers[0].maxConnections == 50)
        #expect(config.backends[0].servers[0].maxRequests == 20)
        #expect(config.backends[0].servers[0].inFlightLimit == 20)
        var expected = QueueConfig()
        expected.timeout = .seconds(2)
        #expect(config.backends[0].queue == expected && config.backends[0].effectiveQueue == expected)
        #expect(try ConfigLoader.load(yaml: ConfigRenderer.yaml(config)) == config)
        let none = try ConfigLoader.load(yaml: Self.yaml(backend: "    queue: { max: 0 }", server: ", max_requests: 1"))
        #expect(none.backends[0].effectiveQueue?.max == 0)
        let tcp = try ConfigLoader.load(yaml: Self.yaml(server: ", max_connections: 5", mode: "tcp"))
        #expect(tcp.backends[0].servers[0].inFlightLimit == 5)
    }

    @Test(
        "refused: a limit of 0, a queue in mode: tcp, a zero timeout",
        arguments: [
            (yaml(server: ", max_requests: 0"), "backends[0].servers[0].max_requests (line 7): must be between 1 and 1000000, found 0"),
            (
                yaml(backend: "    queue: { max: 5 }", mode: "tcp"),
                "backends[0].queue (line 8): applies only to mode: http (a TCP connection that finds every server full is closed; it does not wait)"
            ),
            (yaml(backend: "    queue: { timeout: 0s }"), "backends[0].queue.timeout (line 8): must be greater than zero"),
        ]
    )
    func errors(yaml: String, expected: String) {
        #expect(loadErrors(yaml) == [expected])
    }
}
