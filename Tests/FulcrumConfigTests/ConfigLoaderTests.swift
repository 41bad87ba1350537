import Foundation
import FulcrumConfig
import Testing

@Suite("Loading valid configurations")
struct ConfigLoaderTests {
    @Test("the reference configuration loads into exactly the expected model")
    func referenceConfiguration() throws {
        let config = try ConfigLoader.load(yaml: referenceYAML)

        #expect(config.global == GlobalConfig(workers: .auto, log: LogConfig(level: .info, access: .combined)))
        #expect(config.global.gracePeriod == .seconds(10))

        #expect(config.frontends.count == 1)
        let frontend = try #require(config.frontends.first)
        #expect(frontend.name == "public")
        #expect(frontend.listen == [ListenAddress(host: "127.0.0.1", port: 8080)])
        #expect(frontend.timeouts == FrontendTimeouts(clientIdle: .seconds(60), headerRead: .seconds(10)))
        #expect(frontend.limits == FrontendLimits(maxHeaderBytes: 65536, maxBodyBytes: nil))
        #expect(frontend.acls.map(\.name) == ["api", "static", "blog", "posts", "beta", "office"])
        #expect(
            frontend.acls == [
                ACL(name: "api", criteria: [.pathPrefix(["/api/"])]),
                ACL(name: "static", criteria: [.pathRegex(#"\.(css|js|png)$"#)]),
                ACL(name: "blog", criteria: [.host(["blog.example.com"])]),
                ACL(name: "posts", criteria: [.method(["POST", "PUT"])]),
                ACL(name: "beta", criteria: [.header(name: "X-Beta", match: .equals("1"))]),
                ACL(
                    name: "office",
                    criteria: [
                        .source([
                            CIDRBlock(network: [10, 0, 0, 0], prefixLength: 8),
                            CIDRBlock(network: [127, 0, 0, 1], prefixLength: 32),
                        ])
                    ]
                ),
            ]
        )
        #expect(
            frontend.rules == [
                Rule(action: .useBackend("api"), ifACLs: ["api"]),
                Rule(action: .deny(status: 403), ifACLs: ["posts"], unlessACLs: ["office"]),
            ]
        )
        #expect(frontend.defaultBackend == "web")
        #expect(frontend.errorFiles.isEmpty)

        #expect(
            config.backends == [
                BackendConfig(
                    name: "web",
                    algorithm: .roundRobin,
                    retries: 2,
                    timeouts: BackendTimeouts(connect: .seconds(2), response: .seconds(30), idle: .seconds(30)),
                    servers: [
                        ServerConfig(name: "web1", address: ServerAddress(host: "127.0.0.1", port: 9001), weight: 2),
                        ServerConfig(name: "web2", address: ServerAddress(host: "127.0.0.1", port: 9002), weight: 1),
                    ]
                ),
                BackendConfig(
                    name: "api",
                    algorithm: .leastConnections,
                    retries: 2,
                    timeouts: BackendTimeouts(),
                    servers: [ServerConfig(name: "api1", address: ServerAddress(host: "localhost", port: 9101))]
                ),
            ]
        )
        #expect(config.backend(named: "api")?.servers.count == 1)
        #expect(config.summary == "1 frontend, 2 backends, 3 servers")
    }

    @Test("a minimal configuration gets every default")
    func defaults() throws {
        let config = try ConfigLoader.load(yaml: minimalYAML)
        #expect(
            config
                == Config(
                    global: GlobalConfig(workers: .auto, log: LogConfig(level: .info, access: .off), gracePeriod: .seconds(10)),
                    frontends: [
                        FrontendConfig(
                            name: "public",
                            listen: [ListenAddress(host: "127.0.0.1", port: 8080)],
                            defaultBackend: "web"
                        )
                    ],
                    backends: [
                        BackendConfig(
                            name: "web",
                            servers: [ServerConfig(name: "web1", address: ServerAddress(host: "127.0.0.1", port: 9001))]
                        )
                    ]
                )
        )
    }

    @Test("every optional key maps to the model")
    func everyKey() throws {
        let yaml = """
            global:
              workers: 4
              log: { level: DEBUG, access: json }
              grace_period: 1m30s
            frontends:
              - name: edge
                listen: ["[::1]:8443", "0.0.0.0:8080", "lb.internal:80"]
                timeouts: { client_idle: 1.5s, header_read: 250ms }
                limits: { max_header_size: 16k, max_body_size: 10MB }
                acls:
                  admin:
                    path: [/admin, /login]
                    method: get
                    host: ["*.Example.COM", "[::1]", "FE80::1", WWW.example.com.]
                    src: "::1"
                  tagged: { header: { name: X-Tag, exists: true } }
                  mobile: { header: { name: User-Agent, contains: Mobile } }
                  canary: { header: { name: X-Canary, prefix: "yes" } }
                rules:
                  - { use_backend: pool, if: admin }
                  - { deny: 503, unless: [tagged, mobile] }
                  - { use_backend: pool }
            backends:
              - name: pool
                algorithm: power_of_two
                retries: 0
                timeouts: { connect: 100us, response: 1h, idle: 5s, tunnel: 10m }
                servers:
                  - { name: a, address: "[2001:db8::1]:80", weight: 256 }
                  - { name: b, address: "backend.example.com:8080", weight: 0 }
            """
        let config = try ConfigLoader.load(yaml: yaml)
        #expect(config.global == GlobalConfig(workers: .fixed(4), log: LogConfig(level: .debug, access: .json), gracePeriod: .seconds(90)))

        let frontend = try #require(config.frontends.first)
        #expect(
            frontend.listen == [
                ListenAddress(host: "::1", port: 8443),
                ListenAddress(host: "0.0.0.0", port: 8080),
                ListenAddress(host: "lb.internal", port: 80),
            ]
        )
        #expect(frontend.listen.map(\.description) == ["[::1]:8443", "0.0.0.0:8080", "lb.internal:80"])
        #expect(frontend.timeouts == FrontendTimeouts(clientIdle: .milliseconds(1500), headerRead: .milliseconds(250)))
        #expect(frontend.limits == FrontendLimits(maxHeaderBytes: 16 * 1024, maxBodyBytes: 10 * 1024 * 1024))
        #expect(
            frontend.acls == [
                ACL(
                    name: "admin",
                    criteria: [
                        .path(["/admin", "/login"]),
                        .method(["GET"]),
                        .host(["*.example.com", "::1", "fe80::1", "www.example.com."]),
                        .source([CIDRBlock(network: Array(repeating: 0, count: 15) + [1], prefixLength: 128)]),
                    ]
                ),
                ACL(name: "tagged", criteria: [.header(name: "X-Tag", match: .exists(true))]),
                ACL(name: "mobile", criteria: [.header(name: "User-Agent", match: .contains("Mobile"))]),
                ACL(name: "canary", criteria: [.header(name: "X-Canary", match: .prefix("yes"))]),
            ]
        )
        #expect(
            frontend.rules == [
                Rule(action: .useBackend("pool"), ifACLs: ["admin"]),
                Rule(action: .deny(status: 503), unlessACLs: ["tagged", "mobile"]),
                Rule(action: .useBackend("pool")),
            ]
        )
        // Rules without a default backend are fine: requests no rule decides get no backend.
        #expect(frontend.defaultBackend == nil)

        let backend = try #require(config.backends.first)
        #expect(backend.algorithm == .powerOfTwo)
        #expect(backend.retries == 0)
        var timeouts = BackendTimeouts(connect: .microseconds(100), response: .seconds(3600), idle: .seconds(5))
        timeouts.tunnel = .seconds(600)
        #expect(backend.timeouts == timeouts)
        #expect(
            backend.servers == [
                ServerConfig(name: "a", address: ServerAddress(host: "2001:db8::1", port: 80), weight: 256),
                ServerConfig(name: "b", address: ServerAddress(host: "backend.example.com", port: 8080), weight: 0),
            ]
        )
        #expect(backend.servers[0].address.description == "[2001:db8::1]:80")
    }

    @Test("summary counts frontends, backends and servers")
    func summary() throws {
        let secondFrontend = """
              - name: admin
                listen: "127.0.0.1:8081"
                default_backend: api

            """
        let yaml = referenceYAML.replacingOccurrences(of: "\nbackends:\n", with: "\n\(secondFrontend)backends:\n")
        let config = try ConfigLoader.load(yaml: yaml)
        #expect(config.summary == "2 frontends, 2 backends, 3 servers")
    }

    @Test("a file's relative error_files are resolved against its directory")
    func errorFilesRelativeToConfigFile() throws {
        try withTemporaryDirectory { directory in
            try FileManager.default.createDirectory(atPath: "\(directory)/pages", withIntermediateDirectories: true)
            try writeFile("<h1>down</h1>", to: "\(directory)/pages/503.html")
            try writeFile("<h1>no</h1>", to: "\(directory)/403.html")
            let yaml = minimalYAML.replacingOccurrences(
                of: "    default_backend: web\n",
                with: """
                        default_backend: web
                        error_files: { 503: ./pages/503.html, 403: "\(directory)/403.html" }

                    """
            )
            try writeFile(yaml, to: "\(directory)/fulcrum.yaml")

            let config = try ConfigLoader.load(contentsOfFile: "\(directory)/fulcrum.yaml")
            let errorFiles = try #require(config.frontends.first?.errorFiles)
            #expect(errorFiles.keys.sorted() == [403, 503])
            #expect(errorFiles[403] == "\(directory)/403.html")
            // Standardized (no "./"), and pointing at the file next to the config.
            let page = try #require(errorFiles[503])
            #expect(page.hasSuffix("/pages/503.html"))
            #expect(!page.contains("/./"))
            #expect(FileManager.default.contents(atPath: page) == Data("<h1>down</h1>".utf8))
        }
    }

    @Test("loading from a string resolves relative error_files against the working directory")
    func errorFilesFromString() {
        let yaml = minimalYAML.replacingOccurrences(
            of: "    default_backend: web\n",
            with: "    default_backend: web\n    error_files: { 502: no-such-dir-fulcrum/502.html }\n"
        )
        #expect(
            loadErrors(yaml) == [
                #"frontends[0].error_files.502 (line 5): "no-such-dir-fulcrum/502.html" does not exist"#
            ]
        )
    }

    @Test("merge keys take defaults from anchored mappings; explicit keys win")
    func mergeKeys() throws {
        let yaml = """
            backends:
              - name: web
                timeouts: &defaults { connect: 1s, response: 5s }
                servers:
                  - &server { name: web1, address: "127.0.0.1:9001", weight: 3 }
              - name: api
                timeouts: { <<: *defaults, response: 60s }
                servers:
                  - { <<: *server, name: api1 }
                  - { <<: [{ weight: 9, name: wrong }, *server], name: api2 }
            frontends:
              - { name: public, listen: "127.0.0.1:8080", default_backend: web }
            """
        let config = try ConfigLoader.load(yaml: yaml)
        let api = try #require(config.backend(named: "api"))
        #expect(api.timeouts == BackendTimeouts(connect: .seconds(1), response: .seconds(60)))
        #expect(
            api.servers == [
                ServerConfig(name: "api1", address: ServerAddress(host: "127.0.0.1", port: 9001), weight: 3),
                ServerConfig(name: "api2", address: ServerAddress(host: "127.0.0.1", port: 9001), weight: 9),
            ]
        )
    }

    @Test("YAML anchors and aliases are followed")
    func aliases() throws {
        let yaml = """
            frontends:
              - name: public
                listen: "127.0.0.1:8080"
                timeouts: &quick { client_idle: 5s }
                default_backend: web
              - name: admin
                listen: "127.0.0.1:8081"
                timeouts: *quick
                default_backend: web
            backends:
              - name: web
                servers:
                  - { name: web1, address: "127.0.0.1:9001" }
            """
        let config = try ConfigLoader.load(yaml: yaml)
        #expect(config.frontends.map(\.timeouts.clientIdle) == [.seconds(5), .seconds(5)])
    }
}
