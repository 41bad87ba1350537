import FulcrumConfig
import Testing

/// `global.store` and `shared: true` on a rate limit.
@Suite struct StoreConfigTests {
    private static func yaml(store: String?, shared: String = "true") -> String {
        (store.map { "global:\n  store: \($0)\n" } ?? "") + """
            frontends:
              - name: public
                listen: "127.0.0.1:8080"
                default_backend: web
                rate_limits:
                  per_ip: { key: src, rate: 20/10s, shared: \(shared) }
            backends:
              - name: web
                servers:
                  - { name: web1, address: "127.0.0.1:9001" }
            """
    }

    @Test("The defaults: 50ms, on_error local; a limit is not shared unless it says so")
    func defaults() throws {
        let config = try ConfigLoader.load(yaml: Self.yaml(store: #"{ redis: "redis://127.0.0.1" }"#))
        let store = try #require(config.global.store)
        #expect(store.redis == RedisURL(host: "127.0.0.1", port: 6379, database: 0))
        #expect(store.timeout == .milliseconds(50))
        #expect(store.onError == .local)
        #expect(config.frontends[0].rateLimits[0].shared)
        #expect(try ConfigLoader.load(yaml: minimalYAML).global.store == nil)
        #expect(try ConfigLoader.load(yaml: Self.yaml(store: nil, shared: "false")).frontends[0].rateLimits[0].shared == false)
    }

    @Test(
        "Redis URLs as Redis's clients read them",
        arguments: [
            ("redis://10.0.0.5:6380/2", RedisURL(host: "10.0.0.5", port: 6380, database: 2)),
            ("redis://cache.internal", RedisURL(host: "cache.internal")),
            ("redis://:secret@127.0.0.1/0", RedisURL(host: "127.0.0.1", password: "secret")),
            ("REDIS://fulcrum:p%40ss%3Aword@[::1]:7000/", RedisURL(host: "::1", port: 7000, username: "fulcrum", password: "p@ss:word")),
            ("redis://[::1]", RedisURL(host: "::1")),
        ]
    )
    func urls(text: String, expected: RedisURL) throws {
        let url = try RedisURL(parsing: text)
        #expect(url == expected)
        // Written back, it reads the same; shown, the password is hidden.
        #expect(try RedisURL(parsing: url.text) == url)
        if url.password != nil {
            #expect(url.description.contains(":***@") && !url.description.contains(url.password!))
        }
    }

    @Test("Errors: a shared limit with no store, bad URLs, timeouts and choices")
    func errors() {
        #expect(
            loadErrors(Self.yaml(store: nil)) == [
                #"frontends[0].rate_limits.per_ip.shared (line 6): a shared limit needs global.store (e.g. store: { redis: "redis://127.0.0.1:6379/0" })"#
            ]
        )
        #expect(
            loadErrors(Self.yaml(store: #"{ redis: "http://127.0.0.1:6379" }"#, shared: "false")) == [
                #"global.store.redis (line 2): "http://127.0.0.1:6379" is not a redis:// URL (rediss://, Redis over TLS, is not supported)"#
            ]
        )
        #expect(loadErrors(Self.yaml(store: #"{ redis: "redis://127.0.0.1:6379/x" }"#, shared: "false")).count == 1)
        #expect(loadErrors(Self.yaml(store: #"{ redis: "redis://127.0.0.1:99999" }"#, shared: "false")).count == 1)
        #expect(loadErrors(Self.yaml(store: #"{ redis: "redis://" }"#, shared: "false")).count == 1)
        // A broken store is reported once, not again at the shared limit.
        #expect(loadErrors(Self.yaml(store: #"{ redis: "redis://" }"#)).count == 1)
        #expect(
            loadErrors(Self.yaml(store: #"{ redis: "redis://h", timeout: 11s, on_error: deny, db: 1 }"#, shared: "false")) == [
                #"global.store.db (line 2): unknown key "db"; allowed keys: redis, timeout, on_error"#,
                "global.store.timeout (line 2): a store's timeout is at most 10s: every request with a shared limit may wait it out",
                #"global.store.on_error (line 2): unknown store on_error "deny"; expected one of: allow, local"#,
            ]
        )
    }
}

/// `antibot.shared`.
@Suite struct SharedAntibotRateConfigTests {
    private static func yaml(store: Bool, shared: String) -> String {
        (store ? "global:\n  store: { redis: \"redis://127.0.0.1\" }\n" : "") + """
            frontends:
              - name: public
                listen: "127.0.0.1:8080"
                default_backend: web
                antibot: { mode: monitor, rate: 5/10s, shared: \(shared) }
            backends:
              - name: web
                servers:
                  - { name: web1, address: "127.0.0.1:9001" }
            """
    }

    @Test("antibot.shared: with a store, or an error")
    func antibotShared() throws {
        #expect(try ConfigLoader.load(yaml: Self.yaml(store: true, shared: "true")).frontends[0].antibot?.sharedRate == true)
        #expect(try ConfigLoader.load(yaml: Self.yaml(store: false, shared: "false")).frontends[0].antibot?.sharedRate == false)
        #expect(
            loadErrors(Self.yaml(store: false, shared: "true")) == [
                #"frontends[0].antibot.shared (line 5): a shared rate needs global.store (e.g. store: { redis: "redis://127.0.0.1:6379/0" })"#
            ]
        )
    }
}
