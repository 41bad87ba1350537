import FulcrumConfig
import Testing

/// `algorithm: hash` with `hash_key` and `hash_balance_factor`: what they load as, and what is
/// refused.
@Suite("Hashing: settings")
struct HashConfigTests {
    static func yaml(backend: String = "", mode: String = "http", algorithm: String = "hash") -> String {
        """
        frontends:
          - { name: public, listen: "127.0.0.1:8080", default_backend: web, mode: \(mode) }
        backends:
          - name: web
            mode: \(mode)
            algorithm: \(algorithm)
            servers:
              - { name: web1, address: "127.0.0.1:9001" }
        \(backend)
        """
    }

    @Test("hash keys: src by default, uri, header:NAME (any case), cookie:NAME, query:NAME; the factor 1.25 unless given")
    func loads() throws {
        let plain = try ConfigLoader.load(yaml: Self.yaml())
        #expect(plain.backends[0].algorithm == .hash)
        #expect(plain.backends[0].hashKey == .source)
        #expect(plain.backends[0].hashBalanceFactor == 1.25)
        let cases: [(String, HashKey)] = [
            ("uri", .uri), ("header:X-User", .header("x-user")), ("cookie:session", .cookie("session")), ("query:id", .query("id")),
        ]
        for (text, key) in cases {
            let config = try ConfigLoader.load(yaml: Self.yaml(backend: "    hash_key: \"\(text)\"\n    hash_balance_factor: 2"))
            #expect(config.backends[0].hashKey == key)
            #expect(config.backends[0].hashBalanceFactor == 2)
            #expect(try ConfigLoader.load(yaml: ConfigRenderer.yaml(config)) == config)
        }
        let unbounded = try ConfigLoader.load(yaml: Self.yaml(backend: "    hash_balance_factor: 0"))
        #expect(unbounded.backends[0].hashBalanceFactor == 0)
        let tcp = try ConfigLoader.load(yaml: Self.yaml(backend: "    hash_key: src", mode: "tcp"))
        #expect(tcp.backends[0].algorithm == .hash)
    }

    @Test(
        "refused: hash settings on another algorithm, an unknown key, a factor below 1, a TCP backend's key other than src",
        arguments: [
            (
                yaml(backend: "    hash_key: src", algorithm: "round_robin"),
                "backends[0].hash_key (line 9): applies only to algorithm: hash"
            ),
            (
                yaml(backend: "    hash_balance_factor: 1.5", algorithm: "least_connections"),
                "backends[0].hash_balance_factor (line 9): applies only to algorithm: hash"
            ),
            (
                yaml(backend: "    hash_key: body"),
                #"backends[0].hash_key (line 9): expected src, uri, header:NAME, cookie:NAME or query:NAME, got "body""#
            ),
            (
                yaml(backend: "    hash_key: \"header:\""),
                #"backends[0].hash_key (line 9): expected src, uri, header:NAME, cookie:NAME or query:NAME, got "header:""#
            ),
            (
                yaml(backend: "    hash_balance_factor: 0.5"),
                "backends[0].hash_balance_factor (line 9): expected 0 (no bound) or a factor of at least 1 (1.25: 25 % above the average load)"
            ),
            (
                yaml(backend: "    hash_key: uri", mode: "tcp"),
                "backends[0].hash_key (line 9): a mode: tcp backend hashes only src: a connection has no uri, header, cookie or query"
            ),
        ]
    )
    func errors(yaml: String, expected: String) {
        #expect(loadErrors(yaml) == [expected])
    }
}
