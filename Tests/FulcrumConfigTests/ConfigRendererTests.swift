import Foundation
import Testing

@testable import FulcrumConfig

/// `ConfigRenderer`: a loaded `Config` written as YAML or JSON loads back equal, and writing
/// it again gives the same text.
@Suite("Rendering configurations")
struct ConfigRendererTests {
    // MARK: Every option

    @Test("a configuration that uses every option comes back equal from YAML and JSON")
    func maximalConfiguration() throws {
        try withFixtureDirectory { directory in
            let config = try loadFile(maximalYAML, in: directory)
            try expectRoundTrip(config)
            // The example really departs from the defaults where it matters: a renderer that
            // left these out would not round-trip.
            #expect(config.backends[0].adaptive != AdaptiveOptions())
            #expect(config.frontends[0].tls?.certificatesDirectory == "\(directory)/certs")
            #expect(config.backends[0].servers[2].tls?.caFile == "\(directory)/ca.pem")
            #expect(config.frontends[1].defaultBackend == nil)
        }
    }

    @Test("the maximal example sets every key the parser allows, and they are written in the parser's order")
    func everyKeyInSchemaOrder() throws {
        try withFixtureDirectory { directory in
            let document = ConfigRenderer.document(try loadFile(maximalYAML, in: directory))
            let frontends = document["frontends"]!.items
            let backends = document["backends"]!.items
            let servers = backends.flatMap { $0["servers"]!.items }
            let acls = frontends.flatMap { $0["acls"]!.entries.map(\.value) }
            let places: [(place: String, allowed: [String], mappings: [ConfigDocument])] = [
                ("document", ConfigParser.documentKeys, [document]),
                ("global", ConfigParser.globalKeys, [document["global"]!]),
                ("global.log", ConfigParser.logKeys, [document["global"]!["log"]!]),
                ("global.admin", ConfigParser.adminKeys, [document["global"]!["admin"]!]),
                ("global.store", ConfigParser.storeKeys, [document["global"]!["store"]!]),
                ("global.dns", ConfigParser.dnsKeys, [document["global"]!["dns"]!]),
                ("frontends[]", ConfigParser.frontendKeys, frontends),
                ("frontends[].timeouts", ConfigParser.frontendTimeoutKeys, frontends.compactMap { $0["timeouts"] }),
                ("frontends[].limits", ConfigParser.frontendLimitKeys, frontends.compactMap { $0["limits"] }),
                ("frontends[].tls", ConfigParser.frontendTLSKeys, frontends.compactMap { $0["tls"] }),
                ("frontends[].tls.hsts", ConfigParser.hstsKeys, frontends.compactMap { $0["tls"]?["hsts"] }),
                ("frontends[].tls.acme", ConfigParser.acmeKeys, frontends.compactMap { $0["tls"]?["acme"] }),
                ("frontends[].acls.*", ConfigParser.criterionKeys, acls),
                ("frontends[].acls.*.header", ConfigParser.headerKeys, acls.compactMap { $0["header"] }),
                ("frontends[].rules[]", ConfigParser.ruleKeys, frontends.flatMap { $0["rules"]!.items }),
                ("frontends[].rules[].redirect", ConfigParser.redirectKeys, frontends.flatMap { $0["rules"]!.items }.compactMap { $0["redirect"] }),
                (
                    "frontends[].rules[].set_header", ConfigParser.setHeaderKeys,
                    frontends.flatMap { $0["rules"]!.items }.compactMap { $0["set_header"] }
                ),
                (
                    "frontends[].rate_limits.*", ConfigParser.rateLimitKeys,
                    frontends.compactMap { $0["rate_limits"] }.flatMap { $0.entries.map(\.value) }
                ),
                ("frontends[].antibot", ConfigParser.antibotKeys, frontends.compactMap { $0["antibot"] }),
                ("frontends[].antibot.challenge", ConfigParser.antibotChallengeKeys, frontends.compactMap { $0["antibot"]?["challenge"] }),
                ("frontends[].antibot.allow", ConfigParser.antibotAllowKeys, frontends.compactMap { $0["antibot"]?["allow"] }),
                (
                    "frontends[].antibot.allow.verified_bots[]", ConfigParser.verifiedBotKeys,
                    frontends.compactMap { $0["antibot"]?["allow"]?["verified_bots"] }.flatMap(\.items).filter { !$0.isScalar }
                ),
                ("backends[]", ConfigParser.backendKeys, backends),
                ("backends[].timeouts", ConfigParser.backendTimeoutKeys, backends.compactMap { $0["timeouts"] }),
                ("backends[].adaptive", ConfigParser.adaptiveKeys, backends.compactMap { $0["adaptive"] }),
                ("backends[].health_check", ConfigParser.healthCheckKeys, backends.compactMap { $0["health_check"] }),
                ("backends[].outlier", ConfigParser.outlierKeys, backends.compactMap { $0["outlier"] }),
                ("backends[].retry_budget", ConfigParser.retryBudgetKeys, backends.compactMap { $0["retry_budget"] }),
                ("backends[].servers[]", ConfigParser.serverKeys, servers),
                ("backends[].servers_from", ConfigParser.serversFromKeys, backends.compactMap { $0["servers_from"] }),
                ("backends[].servers[].tls", ConfigParser.serverTLSKeys, servers.compactMap { $0["tls"] }),
            ]
            for (place, allowed, mappings) in places {
                #expect(!mappings.isEmpty, "no \(place) in the maximal example")
                let written = mappings.map { $0.entries.map(\.key) }
                #expect(Set(written.joined()) == Set(allowed), "keys of \(place)")
                // An ACL's criteria keep the ACL's own order (the file's); everything else the schema's.
                if place != "frontends[].acls.*" {
                    for keys in written {
                        #expect(keys == allowed.filter(keys.contains), "order of the keys of \(place)")
                    }
                }
            }
        }
    }

    // MARK: Examples

    @Test("the complete examples in docs/ and README.md come back equal")
    func documentedExamples() throws {
        let examples = try completeYAMLExamples(in: ["README.md", "docs/config.md", "docs/admin-api.md"])
        // The reference example (twice, README and docs), the README's variant and the minimal one.
        #expect(examples.count >= 3)
        for example in examples {
            try expectRoundTrip(try ConfigLoader.load(yaml: example))
        }
        try expectRoundTrip(try ConfigLoader.load(yaml: referenceYAML))
        try expectRoundTrip(try ConfigLoader.load(yaml: minimalYAML))
    }

    @Test("the documentation's partial examples, completed, come back equal")
    func documentedFragments() throws {
        try withFixtureDirectory { directory in
            for yaml in [fragmentsGlobalAndFrontends, fragmentsRouting, fragmentsBackends] {
                try expectRoundTrip(try loadFile(yaml, in: directory))
            }
        }
    }

    @Test("the demo command's configuration comes back equal, for every algorithm")
    func demoConfiguration() throws {
        for algorithm in AlgorithmName.allCases {
            try expectRoundTrip(try ConfigLoader.load(yaml: demoYAML(algorithm: algorithm.rawValue)))
        }
    }

    @Test("a configuration built in code with the types' defaults comes back equal")
    func configBuiltInCode() throws {
        let server = ServerConfig(name: "s", address: ServerAddress(host: "::1", port: 80))
        var backend = BackendConfig(name: "b", servers: [server])
        backend.healthCheck = HealthCheckConfig()
        backend.outlier = OutlierConfig()
        backend.servers[0].tls = ServerTLSConfig()
        let config = Config(
            frontends: [
                FrontendConfig(name: "f", listen: [ListenAddress(host: "127.0.0.1", port: 8080)], defaultBackend: "b")
            ],
            backends: [backend]
        )
        try expectRoundTrip(config)
    }

    // MARK: Format

    @Test("the minimal configuration's YAML: every setting written, defaults included")
    func minimalYAMLText() throws {
        let config = try ConfigLoader.load(yaml: minimalYAML)
        #expect(
            ConfigRenderer.yaml(config) == """
                global:
                  workers: auto
                  log: { level: info, access: "off" }
                  grace_period: 10s
                  max_connections: auto
                frontends:
                  - name: public
                    listen: ["127.0.0.1:8080"]
                    timeouts: { client_idle: 1m, header_read: 10s, park_after: 1s }
                    limits: { max_header_size: 64KB, max_concurrent_streams: 100 }
                    acls: {}
                    rules: []
                    default_backend: web
                    error_files: {}
                    h2c: false
                    forwarded: x-forwarded
                    x_real_ip: false
                backends:
                  - name: web
                    algorithm: round_robin
                    retries: 2
                    timeouts: { connect: 2s, response: 30s, idle: 30s, tunnel: 1h }
                    servers:
                      - { name: web1, address: "127.0.0.1:9001", weight: 1 }
                    retry_budget: { ratio: 0.2, min_per_second: 10 }

                """
        )
    }

    @Test("the minimal configuration's JSON: the same document, pretty-printed, in the same order")
    func minimalJSONText() throws {
        let config = try ConfigLoader.load(yaml: minimalYAML)
        #expect(
            ConfigRenderer.json(config) == """
                {
                  "global": {
                    "workers": "auto",
                    "log": {
                      "level": "info",
                      "access": "off"
                    },
                    "grace_period": "10s",
                    "max_connections": "auto"
                  },
                  "frontends": [
                    {
                      "name": "public",
                      "listen": [
                        "127.0.0.1:8080"
                      ],
                      "timeouts": {
                        "client_idle": "1m",
                        "header_read": "10s",
                        "park_after": "1s"
                      },
                      "limits": {
                        "max_header_size": "64KB",
                        "max_concurrent_streams": 100
                      },
                      "acls": {},
                      "rules": [],
                      "default_backend": "web",
                      "error_files": {},
                      "h2c": false,
                      "forwarded": "x-forwarded",
                      "x_real_ip": false
                    }
                  ],
                  "backends": [
                    {
                      "name": "web",
                      "algorithm": "round_robin",
                      "retries": 2,
                      "timeouts": {
                        "connect": "2s",
                        "response": "30s",
                        "idle": "30s",
                        "tunnel": "1h"
                      },
                      "servers": [
                        {
                          "name": "web1",
                          "address": "127.0.0.1:9001",
                          "weight": 1
                        }
                      ],
                      "retry_budget": {
                        "ratio": 0.2,
                        "min_per_second": 10
                      }
                    }
                  ]
                }

                """
        )
    }

    @Test("strings that YAML would read otherwise are quoted, and come back as they were", arguments: awkwardStrings)
    func awkwardString(_ text: String) throws {
        let config = try ConfigLoader.load(yaml: minimalYAML)
        var changed = config
        changed.frontends[0].acls = [ACL(name: "a", criteria: [.header(name: "X-Test", match: .equals(text))])]
        changed.global.admin = AdminConfig(
            listen: ListenAddress(host: "127.0.0.1", port: 9090),
            tokenEnvironmentVariable: text.isEmpty ? nil : text  // the parser takes no empty token_env
        )
        try expectRoundTrip(changed)
    }

    @Test(
        "ACL names that YAML would read otherwise are quoted as keys",
        arguments: [
            // (Names start with a letter or a digit, so ".inf", "-" and "..." cannot be ACLs.)
            "1", "1.5", "true", "off", "null", "y", "1e3", "0x1f", "1_000", "2024-01-01", "1.5e-3", "0o17", "a.b_c-d",
        ]
    )
    func awkwardACLName(_ name: String) throws {
        var config = try ConfigLoader.load(yaml: minimalYAML)
        config.frontends[0].acls = [ACL(name: name, criteria: [.path(["/"])])]
        config.frontends[0].rules = [Rule(action: .deny(status: 403), ifACLs: [name], unlessACLs: [name])]
        try expectRoundTrip(config)
    }

    @Test("durations, sizes and CIDR blocks are written exactly, in the largest unit that fits")
    func valueFormats() {
        let durations: [(Duration, String)] = [
            (.zero, "0s"), (.seconds(1), "1s"), (.seconds(59), "59s"), (.seconds(60), "1m"), (.seconds(90), "90s"),
            (.seconds(3600), "1h"), (.seconds(9000), "150m"), (.seconds(86_400 * 365), "8760h"),
            (.milliseconds(1500), "1500ms"),
            (.milliseconds(250), "250ms"), (.microseconds(100), "100us"), (.nanoseconds(1), "1ns"),
            (.nanoseconds(1_000_000_001), "1000000001ns"),
        ]
        for (duration, text) in durations {
            #expect(formatDuration(duration) == text)
            #expect(parseDuration(text) == duration)
        }
        let sizes: [(Int, String)] = [
            (0, "0B"), (1, "1B"), (1000, "1000B"), (1024, "1KB"), (65536, "64KB"), (1536, "1536B"),
            (10 << 20, "10MB"), (3 << 30, "3GB"), (1 << 40, "1024GB"),
        ]
        for (bytes, text) in sizes {
            #expect(formatByteSize(bytes) == text)
            #expect(parseByteSize(text) == bytes)
        }
        for text in [
            "10.0.0.0/8", "0.0.0.0/0", "127.0.0.1/32", "::/0", "::1/128", "2001:db8::/32", "1::/16",
            "1:0:0:2::/64", "1::2:0:0:3/128", "1:2:3:4:5:6:7:8/128", "0:1:2:3:4:5:6:0/128", "fe80::/10",
        ] {
            let block = CIDRBlock(parsing: text)!
            #expect(formatCIDRBlock(block) == text)
            #expect(CIDRBlock(parsing: formatCIDRBlock(block)) == block)
        }
    }
}

/// Texts that a YAML reader would take for something else, or that hold YAML syntax,
/// escapes or characters YAML does not allow as they are.
private let awkwardStrings = [
    "", " ", " leading", "trailing ", "1", "1.10", "-1", "0x1f", "0o17", "1_000", "1e3", ".inf", ".nan",
    "true", "False", "yes", "off", "On", "y", "N", "null", "Null", "~", "<<", "=", "2024-01-01", "12:30",
    "a: b", "a #b", "#a", "- a", "-a", "[a]", "{a}", "a, b", "*a", "&a", "!a", "|", ">", "%a", "@a", "`a`",
    "'", "\"", "it's", #"back\slash"#, #"\.(css|js)$"#, "line\nbreak", "tab\there", "cr\rlf", "\u{7}bell",
    "\u{7F}", "\u{0}nul", "\u{85}nel", "\u{2028}",
    // Not at the start: Yams decodes scalars with Foundation, which drops a leading U+FEFF
    // (a byte order mark), so no rendering could bring that one back.
    "b\u{FEFF}om", "café ✓", "😀", "---", "...", "? a",
]

// MARK: Round trip

/// Expects `config` to come back equal from its YAML (read as text and as a file) and its
/// JSON, and each rendering of the reloaded `Config` to be the same text again.
private func expectRoundTrip(_ config: Config, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let yaml = ConfigRenderer.yaml(config)
    let json = ConfigRenderer.json(config)
    let renderings: [(format: String, text: String, render: (Config) -> String)] = [
        ("YAML", yaml, ConfigRenderer.yaml),
        ("JSON", json, ConfigRenderer.json),
    ]
    for (format, text, render) in renderings {
        let reloaded: Config
        do throws(ConfigErrors) {
            reloaded = try ConfigLoader.load(yaml: text, sourceName: format)
        } catch {
            Issue.record("the \(format) rendering does not load:\n\(error)\n\(text)", sourceLocation: sourceLocation)
            continue
        }
        #expect(reloaded == config, "\(format) round trip\n\(text)", sourceLocation: sourceLocation)
        #expect(render(reloaded) == text, "\(format) is stable", sourceLocation: sourceLocation)
    }
    // Written as a file the way the admin API will write it: paths are absolute, so the
    // file's own directory does not change them.
    try withTemporaryDirectory { directory in
        try writeFile(yaml, to: "\(directory)/fulcrum.yaml")
        let reloaded = try ConfigLoader.load(contentsOfFile: "\(directory)/fulcrum.yaml")
        #expect(reloaded == config, "YAML round trip through a file", sourceLocation: sourceLocation)
    }
    // And the JSON is JSON to a JSON parser, not only to YAML.
    let object = try JSONSerialization.jsonObject(with: Data(json.utf8))
    #expect(object is [String: Any], sourceLocation: sourceLocation)
}

/// Writes `yaml` as `fulcrum.yaml` in `directory` and loads it, so that its relative paths
/// are resolved against `directory`.
private func loadFile(_ yaml: String, in directory: String) throws -> Config {
    try writeFile(yaml, to: "\(directory)/fulcrum.yaml")
    return try ConfigLoader.load(contentsOfFile: "\(directory)/fulcrum.yaml")
}

/// A temporary directory with the files the examples point at, which the parser requires to
/// exist: `certs/`, `ca.pem`, `client.pem`, `403.html` and `pages/{503,maintenance}.html`.
private func withFixtureDirectory(_ body: (String) throws -> Void) throws {
    try withTemporaryDirectory { directory in
        let files = FileManager.default
        try files.createDirectory(atPath: "\(directory)/certs", withIntermediateDirectories: true)
        try files.createDirectory(atPath: "\(directory)/pages", withIntermediateDirectories: true)
        for file in ["ca.pem", "client.pem", "403.html", "pages/503.html", "pages/maintenance.html"] {
            try writeFile("placeholder", to: "\(directory)/\(file)")
        }
        try writeFile("# crawlers\n66.249.64.0/19\n2001:4860:4801::/48  # and IPv6\n", to: "\(directory)/crawlers.txt")
        // Symbolic links in the temporary directory's path (macOS: /var -> /private/var)
        // would make the loader's absolute paths differ from `directory`.
        try body(URL(fileURLWithPath: directory).resolvingSymlinksInPath().path)
    }
}

/// The ```yaml blocks of these files (relative to the package) that are whole configurations:
/// those with both `frontends:` and `backends:` at the top level.
private func completeYAMLExamples(in files: [String]) throws -> [String] {
    let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    var examples: [String] = []
    for file in files {
        let text = try String(contentsOf: packageRoot.appendingPathComponent(file), encoding: .utf8)
        var block: [Substring]?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if block == nil, line == "```yaml" {
                block = []
            } else if let lines = block, line == "```" {
                if lines.contains("frontends:"), lines.contains("backends:") {
                    examples.append(lines.joined(separator: "\n"))
                }
                block = nil
            } else {
                block?.append(line)
            }
        }
    }
    return examples
}

/// Lookups into a rendered document, for the tests.
extension ConfigDocument {
    fileprivate subscript(key: String) -> ConfigDocument? {
        entries.first { $0.key == key }?.value
    }

    fileprivate var entries: [(key: String, value: ConfigDocument)] {
        if case .map(let entries) = self { entries } else { [] }
    }

    fileprivate var items: [ConfigDocument] {
        if case .list(let items) = self { items } else { [] }
    }
}

// MARK: Examples

/// Every key the parser knows, most of them away from their defaults, and values that take
/// care to write: IPv6 everywhere, names and header values YAML would read as other types,
/// compound durations, sizes in several units, relative paths (resolved against the file's
/// directory), unnormalized hosts and methods.
private let maximalYAML = #"""
    global:
      workers: 3
      log: { level: DEBUG, access: json }
      grace_period: 0s
      admin: { listen: "[::1]:9090", token_env: FULCRUM_ADMIN_TOKEN, config_writeback: true }
      max_connections: 20000
      store: { redis: "redis://fulcrum:p%40ss@[::1]:6380/2", timeout: 25ms, on_error: allow }
      dns: { nameservers: ["127.0.0.1:5353", 10.0.0.53], timeout: 1s, family: ipv6_preferred }

    frontends:
      - name: secure
        listen: ["0.0.0.0:8443", "[::]:8443", "localhost:9443"]
        timeouts: { client_idle: 1m30s, header_read: 1.5s, park_after: 0s }
        limits: { max_header_size: 16k, max_body_size: 10MB, max_concurrent_streams: 250 }
        acls:
          api: { path_prefix: [/api/, /v2/], method: [get, POST] }
          login: { path: /login, host: Login.Example.com }
          static: { path_regex: '\.(css|js|png)$' }
          shop: { host: [Shop.Example.com, "*.shop.example.com", "[2001:DB8::1]", "::1"] }
          beta: { header: { name: X-Beta, equals: "1.10" } }
          mobile: { header: { name: User-Agent, contains: "Mobile; rv:1" } }
          bearer: { header: { name: Authorization, prefix: "Bearer " } }
          no_auth: { header: { name: Authorization, exists: false } }
          cookie: { header: { name: Cookie, exists: true } }
          office:
            src: ["10.1.2.3/8", "127.0.0.1", "2001:db8::/32", "::1", "::ffff:192.0.2.0/120", "0.0.0.0/0", "::/0", "fe80:0:0:1::/64"]
          "1": { header: { name: X-Empty, equals: "" } }
          "true": { header: { name: X-Null, equals: "null" }, path: ["/a b", "/#x", "/é"] }
        rules:
          - { deny: 403, if: login, unless: office }
          - { use_backend: api, if: [api, beta], unless: ["1", "true"] }
          - { use_backend: web, if: [] }
          - { set_header: { name: X-Env, value: "prod: 1" } }
          - { del_header: X-Internal, if: login }
          - { redirect: { to: "https://example.com{uri}", code: 308 }, if: beta }
          - { tarpit: 1500ms, if: [login, beta] }
          - { deny: 429 }
        default_backend: web
        error_files: { 503: pages/503.html, 403: ./403.html, 404: 403.html }
        tls: { certificates: ./certs, default_certificate: Example.COM, min_version: "1.2", alpn: [http/1.1, h2], profile: intermediate,
               ciphers: "ECDHE+AESGCM:!aNULL", hsts: { max_age: 730d, include_subdomains: true, preload: true },
               acme: { directory: "https://localhost:14000/dir", email: ops@example.com, domains: [Example.COM, www.example.com],
                       challenge: HTTP-01, ca: ca.pem } }
        h2c: false
        rate_limits:
          per_ip: { key: src, rate: 100/10s, burst: 50 }
          login: { key: src, rate: 5/1m, if: [login], unless: office, action: tarpit, tarpit: 3s, max_entries: 1000 }
          api_key: { key: "header:X-Api-Key", rate: "1000/1h", action: deny }
          "session": { key: "cookie:session", rate: 2/500ms, shared: true }
        antibot:
          mode: challenge
          challenge: { difficulty: 18, cookie_ttl: 30m, secret_env: FULCRUM_ANTIBOT_SECRET }
          threshold: 40
          rate: 30/5s
          shared: true
          allow:
            src: ["192.0.2.0/24", "2001:db8::/48"]
            src_file: crawlers.txt
            verified_bots: [googlebot, { name: intranet, user_agent: "(?i)intranet-crawler", domains: [crawl.example.net, Example.ORG] }]
          deny_user_agents: ['(?i)python-requests|scrapy|curl/', "Go-http-client"]
          if: [api]
          unless: office
      - name: plain
        listen: 127.0.0.1:8080
        rules:
          - { use_backend: api }
        redirect_to_https: 8443
        h2c: true
        max_connections: 500
        accept_proxy: { from: [10.0.0.0/8, "::1"] }
        trusted_proxies: [10.0.0.0/8, "2001:db8::/32"]
        client_ip_header: Forwarded
        forwarded: BOTH
        x_real_ip: true
      - name: cache
        mode: tcp
        listen: 127.0.0.1:6380
        acls:
          office: { src: 10.0.0.0/8 }
          cache_names: { sni: [cache.example.com, "*.Cache.Example.com"] }
          mqtt: { alpn: [mqtt, x-amzn-mqtt-ca] }
        rules:
          - { use_backend: redis, if: office }
          - { use_backend: redis, if: cache_names }
          - { use_backend: redis, if: mqtt }
        default_backend: redis

    backends:
      - name: web
        algorithm: ADAPTIVE
        sticky: { cookie: SRV, mode: INSERT, ttl: 8h, secure: true, httponly: false, samesite: None }
        slow_start: 45s
        queue: { max: 50, timeout: 250ms }
        retries: 0
        timeouts: { connect: 500ms, response: 1h, idle: 100us, tunnel: 2h30m }
        servers:
          - { name: web1, address: "127.0.0.1:9001", weight: 3, slow_start: 0s, max_connections: 100, max_requests: 80 }
          - { name: web2, address: "[2001:db8::20]:8080", weight: 0 }
          - name: web3
            address: "api.internal:443"
            tls: { verify: false, ca: ca.pem, sni: api.internal, client_certificate: ./client.pem }
            send_proxy: v2
          - { name: web4, address: "10.0.0.5:8443", tls: {}, send_proxy: V1, protocol: H2 }
          - { name: web5, address: "10.0.0.6:8080", protocol: h2c, slow_start: 2m }
        adaptive:
          evaluate_every: 2s
          min_switch_interval: 0s
          min_requests: 20
          error_rate: 0.05
          latency_spread: 2.5
          in_flight_imbalance: 1.5
        health_check: { path: "/ready?full=1", interval: 5s, timeout: 250ms, rise: 3, fall: 4, expect: "204" }
        outlier: { consecutive_failures: 7, base_ejection: 400s }    # max_ejection follows base_ejection
        retry_budget: { ratio: 0.25, min_per_second: 0 }
        http2: { max_concurrent_streams: 250, max_connections: 2 }
      - name: api
        algorithm: peak_ewma
        sticky: { cookie: JSESSIONID, mode: prefix }
        servers:
          - { name: api1, address: "localhost:9101" }
        servers_from:
          srv: _api._tcp.example.internal
          slow_start: 10s
          max_connections: 5
          max_requests: 4
          protocol: h2
          tls: { sni: api.example.internal }
          send_proxy: v1
        resolve_every: 15s
        health_check: {}
        outlier: { consecutive_failures: 2, base_ejection: 1s, max_ejection: 2m, max_ejected_percent: 100 }
      - name: grpc
        algorithm: hash
        hash_key: "header:X-User"
        hash_balance_factor: 1.5
        servers: [{ name: g1, address: "127.0.0.1:50051", protocol: h2c }]
        health_check: { grpc: true, interval: 1s }
      - name: redis
        mode: TCP
        algorithm: least_connections
        timeouts: { connect: 1s, tunnel: 10m }
        servers:
          - { name: redis1, address: "127.0.0.1:6379", send_proxy: v2 }
        health_check: { interval: 1s, send: "PING\r\n", receive: "+PONG" }
    """#

/// docs/config.md's `global`, TLS, limits, HTTP/2 and `error_files` fragments, in one file.
private let fragmentsGlobalAndFrontends = """
    global:
      workers: 4
      log: { level: warning, access: json }
      grace_period: 30s
      admin: { listen: 127.0.0.1:9090, token_env: FULCRUM_ADMIN_TOKEN }
    frontends:
      - name: secure
        listen: ["0.0.0.0:443"]
        tls: { certificates: ./certs, default_certificate: example.com, min_version: "1.2" }
        default_backend: web
      - name: plain
        listen: ["0.0.0.0:80"]
        redirect_to_https: 443
        default_backend: web
      - name: h2
        listen: ["0.0.0.0:8443"]
        tls: { certificates: ./certs, alpn: [h2, http/1.1] }
        limits: { max_concurrent_streams: 250 }
        default_backend: web
      - name: internal
        listen: ["10.0.0.1:8080"]
        h2c: true          # HTTP/2 with prior knowledge, and HTTP/1.1
        limits: { max_header_size: 16k, max_body_size: 10MB }
        error_files:
          503: pages/maintenance.html
          403: 403.html
        default_backend: web
    backends:
      - name: web
        servers:
          - { name: web1, address: "10.0.0.11:8080" }
    """

/// docs/config.md's ACL and rule fragments, with the ACLs and backends they refer to.
private let fragmentsRouting = #"""
    frontends:
      - name: public
        listen: "0.0.0.0:8080"
        acls:
          admin:
            path_prefix: [/admin/, /internal/]    # the path starts with /admin/ OR /internal/
            src: ["10.0.0.0/8", "::1"]            # AND the client is in 10/8 OR is ::1
          mobile: { header: { name: User-Agent, contains: Mobile } }
          no_auth: { header: { name: Authorization, exists: false } }
          shop: { host: [shop.example.com, "*.shop.example.com"] }
          office: { src: ["10.0.0.0/8", "127.0.0.1/32"] }
          api: { path_prefix: /api/ }
          beta: { header: { name: X-Beta, equals: "1" } }
          static: { path_regex: '\.(css|js|png)$' }
          posts: { method: [POST, PUT] }
        rules:
          - { deny: 403, if: admin, unless: office }          # admin pages from outside the office
          - { use_backend: api, if: [api, beta] }             # beta API traffic
          - { use_backend: api-stable, if: api }              # other API traffic
          - { deny: 405, if: [static, posts] }                # no POST to static files
        default_backend: web
    backends:
      - name: web
        servers: [{ name: web1, address: "10.0.0.11:8080" }]
      - name: api
        servers: [{ name: api1, address: "10.0.0.21:8080" }]
      - name: api-stable
        servers: [{ name: api1, address: "10.0.0.22:8080" }]
    """#

/// docs/config.md's backend fragments: health checks, outlier detection, adaptive, TLS to
/// servers, weights, and the merge-key example.
private let fragmentsBackends = """
    frontends:
      - name: public
        listen: "0.0.0.0:8080"
        default_backend: web
    backends:
      - name: web
        algorithm: weighted_round_robin
        retries: 1
        timeouts: &fast { connect: 500ms, response: 10s, idle: 1m }
        health_check: { path: /health, interval: 2s, timeout: 1s, rise: 2, fall: 3, expect: "200-399" }
        outlier: { consecutive_failures: 5, base_ejection: 10s, max_ejection: 5m }
        servers:
          - { name: big,    address: "10.0.0.11:8080", weight: 3 }
          - { name: small,  address: "10.0.0.12:8080" }
          - { name: spare,  address: "spare.internal:8080", weight: 0 }
          - { name: v6,     address: "[2001:db8::20]:8080" }
      - name: adaptive
        algorithm: adaptive
        adaptive: { evaluate_every: 5s, min_switch_interval: 60s, latency_spread: 3 }
        health_check: { path: /health, interval: 2s }
        servers:
          - { name: web1, address: 127.0.0.1:9001 }
          - { name: web2, address: 127.0.0.1:9002 }
      - name: secure
        timeouts: { <<: *fast, response: 60s }    # connect: 500ms, response: 60s
        servers:
          - { name: s1, address: "api.internal:443", tls: { ca: ./ca.pem, sni: api.internal } }
          - { name: s2, address: "10.0.0.5:8443", tls: { verify: false } }     # explicit opt-out only
    """

/// `fulcrum demo`'s configuration (Sources/fulcrum/DemoCommand.swift, which this test target
/// cannot import), for three workers.
private func demoYAML(algorithm: String) -> String {
    """
    global:
      workers: 1          # one event loop, so the round-robin order is exact
      log: { level: info, access: combined }
    frontends:
      - name: demo
        listen: ["127.0.0.1:8080"]
        acls:
          admin: { path_prefix: /admin }
        rules:
          - { deny: 403, if: [admin] }
        default_backend: workers
    backends:
      - name: workers
        algorithm: \(algorithm)
        retries: 2
        timeouts: { connect: 1s, response: 10s }
        servers:
          - { name: worker-1, address: "127.0.0.1:9001" }
          - { name: worker-2, address: "127.0.0.1:9002" }
          - { name: worker-3, address: "127.0.0.1:9003" }

    """
}
