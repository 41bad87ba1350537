import Foundation
import FulcrumConfig
import Testing

/// Every kind of problem, with its exact path, line and message. Lines count from the
/// first line of each document literal.
@Suite("Reporting problems")
struct ConfigErrorTests {
    @Test("an invalid port is reported at the server's line in the reference file")
    func invalidPortInReferenceFile() {
        let yaml = referenceYAML.replacingOccurrences(of: "127.0.0.1:9002", with: "127.0.0.1:99999")
        #expect(
            loadErrors(yaml) == [
                #"backends[0].servers[1].address (line 28): "127.0.0.1:99999" is not a valid port"#
            ]
        )
    }

    @Test("the error report shown in docs/config.md")
    func documentedReport() {
        let yaml =
            referenceYAML
            .replacingOccurrences(of: "path_prefix: /api/", with: "path_prefix: api/")
            .replacingOccurrences(of: "use_backend: api,", with: "use_backend: apii,")
            .replacingOccurrences(of: "algorithm: round_robin", with: "algorithm: fastest")
            .replacingOccurrences(of: "127.0.0.1:9002", with: "127.0.0.1:99999")
        #expect(
            loadErrors(yaml) == [
                #"frontends[0].acls.api.path_prefix (line 10): "api/" must start with "/""#,
                #"frontends[0].rules[0].use_backend (line 17): undefined backend "apii"; defined backends: web, api"#,
                #"backends[0].algorithm (line 23): unknown algorithm "fastest"; expected one of: round_robin, weighted_round_robin, least_connections, random, power_of_two, least_response_time, peak_ewma, hash, adaptive"#,
                #"backends[0].servers[1].address (line 28): "127.0.0.1:99999" is not a valid port"#,
            ]
        )
    }

    @Test("ConfigError and ConfigErrors describe themselves as documented")
    func descriptions() {
        let withLine = ConfigError(path: "backends[0].servers[1].address", line: 31, message: #""127.0.0.1:99999" is not a valid port"#)
        #expect(withLine.description == #"backends[0].servers[1].address (line 31): "127.0.0.1:99999" is not a valid port"#)
        let withoutLine = ConfigError(path: "frontends", message: #"required key "frontends" is missing"#)
        #expect(withoutLine.description == #"frontends: required key "frontends" is missing"#)
        #expect(ConfigErrors(errors: [withLine, withoutLine]).description == "\(withLine)\n\(withoutLine)")
    }

    @Test("unknown keys are reported with the keys allowed there")
    func unknownKeys() {
        let yaml = """
            global:
              wokers: 4
            frontends:
              - name: public
                listen: "127.0.0.1:8080"
                default_backend: web
                timeout: { client_idle: 5s }
            backends:
              - name: web
                servers:
                  - { name: web1, address: "127.0.0.1:9001", wieght: 2 }
            extra: true
            """
        #expect(
            loadErrors(yaml) == [
                #"global.wokers (line 2): unknown key "wokers"; allowed keys: workers, log, grace_period, max_connections, admin, store, dns"#,
                #"frontends[0].timeout (line 7): unknown key "timeout"; allowed keys: name, mode, listen, timeouts, limits, acls, rules, default_backend, error_files, tls, redirect_to_https, h2c, rate_limits, antibot, max_connections, accept_proxy, trusted_proxies, client_ip_header, forwarded, x_real_ip"#,
                #"backends[0].servers[0].wieght (line 11): unknown key "wieght"; allowed keys: name, address, weight, slow_start, max_connections, max_requests, protocol, tls, send_proxy"#,
                #"extra (line 12): unknown key "extra"; allowed keys: global, frontends, backends"#,
            ]
        )
    }

    @Test("values of the wrong type are reported with what was expected")
    func wrongTypes() {
        let yaml = """
            global:
              workers: [2]
              log: info
            frontends:
              - name: public
                listen: { host: x }
                default_backend: [web]
                timeouts: { client_idle: 5 }
            backends:
              - name: web
                retries: many
                servers:
                  - { name: web1, address: "127.0.0.1:9001", weight: 1.5 }
                  - just-a-string
            """
        #expect(
            loadErrors(yaml) == [
                #"global.workers (line 2): expected "auto" or a number of threads, found a list"#,
                #"global.log (line 3): expected a mapping, found "info""#,
                #"frontends[0].listen (line 6): expected an address or a list of addresses, found a mapping"#,
                #"frontends[0].default_backend (line 7): expected a string, found a list"#,
                #"frontends[0].timeouts.client_idle (line 8): "5" is not a valid duration (expected a number and a unit: 250ms, 2s, 1m, 1h)"#,
                #"backends[0].retries (line 11): expected an integer, found "many""#,
                #"backends[0].servers[0].weight (line 13): expected an integer, found "1.5""#,
                #"backends[0].servers[1] (line 14): expected a mapping, found "just-a-string""#,
            ]
        )
    }

    @Test("missing top-level sections are reported without a line")
    func missingSections() {
        #expect(
            loadErrors("global: { workers: auto }\n") == [
                #"backends: required key "backends" is missing"#,
                #"frontends: required key "frontends" is missing"#,
            ]
        )
    }

    @Test("missing required keys are reported at the line of the mapping that lacks them")
    func missingKeys() {
        let yaml = """
            frontends:
              - listen: "127.0.0.1:8080"
                default_backend: web
              - name: admin
                default_backend: web
            backends:
              - name: web
                servers:
                  - { address: "127.0.0.1:9001" }
                  - { name: web2 }
              - name: spare
            """
        #expect(
            loadErrors(yaml) == [
                #"frontends[0].name (line 2): required key "name" is missing"#,
                #"frontends[1].listen (line 4): required key "listen" is missing"#,
                #"backends[0].servers[0].name (line 9): required key "name" is missing"#,
                #"backends[0].servers[1].address (line 10): required key "address" is missing"#,
                #"backends[1].servers (line 11): required key "servers" is missing"#,
            ]
        )
    }

    @Test("duplicate frontend, backend and server names point at the first definition")
    func duplicateNames() {
        let yaml = """
            frontends:
              - name: public
                listen: "127.0.0.1:8080"
                default_backend: web
              - name: public
                listen: "127.0.0.1:8081"
                default_backend: web
            backends:
              - name: web
                servers:
                  - { name: s1, address: "127.0.0.1:9001" }
                  - { name: s1, address: "127.0.0.1:9002" }
              - name: web
                servers:
                  - { name: s1, address: "127.0.0.1:9003" }
            """
        // The third "s1" is in another backend, where it is a different server.
        #expect(
            loadErrors(yaml) == [
                #"frontends[1].name (line 5): duplicate frontend name "public" (first defined at line 2)"#,
                #"backends[0].servers[1].name (line 12): duplicate server name "s1" (first defined at line 11)"#,
                #"backends[1].name (line 13): duplicate backend name "web" (first defined at line 9)"#,
            ]
        )
    }

    @Test("a duplicate ACL name is a repeated YAML key, reported at its first use")
    func duplicateACLNames() {
        let yaml = """
            frontends:
              - name: public
                listen: "127.0.0.1:8080"
                acls:
                  api: { path_prefix: /api/ }
                  api: { path: /v2 }
                default_backend: web
            backends:
              - name: web
                servers: [{ name: web1, address: "127.0.0.1:9001" }]
            """
        #expect(
            loadErrors(yaml) == [
                #"config (line 5): duplicate key "api": a key may appear only once in a mapping"#
            ]
        )
    }

    @Test("rules and default_backend must name defined ACLs and backends")
    func undefinedReferences() {
        let yaml = """
            frontends:
              - name: public
                listen: "127.0.0.1:8080"
                acls:
                  api: { path_prefix: /api/ }
                rules:
                  - { use_backend: apii, if: [api, beta] }
                  - { deny: 403, unless: office }
                default_backend: www
            backends:
              - name: web
                servers: [{ name: web1, address: "127.0.0.1:9001" }]
              - name: api
                servers: [{ name: api1, address: "127.0.0.1:9101" }]
            """
        #expect(
            loadErrors(yaml) == [
                #"frontends[0].rules[0].use_backend (line 7): undefined backend "apii"; defined backends: web, api"#,
                #"frontends[0].rules[0].if[1] (line 7): undefined ACL "beta"; defined ACLs: api"#,
                #"frontends[0].rules[1].unless (line 8): undefined ACL "office"; defined ACLs: api"#,
                #"frontends[0].default_backend (line 9): undefined backend "www"; defined backends: web, api"#,
            ]
        )
    }

    @Test("a rule naming an ACL in a frontend without ACLs says so")
    func referenceWithoutACLs() {
        let yaml = minimalYAML.replacingOccurrences(
            of: "    default_backend: web\n",
            with: "    rules: [{ use_backend: web, if: api }]\n"
        )
        #expect(
            loadErrors(yaml) == [
                #"frontends[0].rules[0].if (line 4): undefined ACL "api"; no ACLs are defined"#
            ]
        )
    }

    @Test("a frontend needs a default_backend when it has no rules")
    func noDefaultBackendAndNoRules() {
        let yaml = """
            frontends:
              - name: public
                listen: "127.0.0.1:8080"
                rules: []
              - name: admin
                listen: "127.0.0.1:8081"
            backends:
              - name: web
                servers: [{ name: web1, address: "127.0.0.1:9001" }]
            """
        #expect(
            loadErrors(yaml) == [
                "frontends[0].default_backend (line 2): required when the frontend has no rules",
                "frontends[1].default_backend (line 5): required when the frontend has no rules",
            ]
        )
    }

    @Test("invalid and zero durations")
    func invalidDurations() {
        let yaml = """
            global:
              grace_period: -1s
            frontends:
              - name: public
                listen: "127.0.0.1:8080"
                timeouts: { client_idle: 0s, header_read: 10 s }
                default_backend: web
            backends:
              - name: web
                timeouts: { connect: 2sec, response: 1.5.5s, idle: soon }
                servers: [{ name: web1, address: "127.0.0.1:9001" }]
            """
        let expected = "is not a valid duration (expected a number and a unit: 250ms, 2s, 1m, 1h)"
        #expect(
            loadErrors(yaml) == [
                #"global.grace_period (line 2): "-1s" "# + expected,
                "frontends[0].timeouts.client_idle (line 6): must be greater than zero",
                #"frontends[0].timeouts.header_read (line 6): "10 s" "# + expected,
                #"backends[0].timeouts.connect (line 10): "2sec" "# + expected,
                #"backends[0].timeouts.response (line 10): "1.5.5s" "# + expected,
                #"backends[0].timeouts.idle (line 10): "soon" "# + expected,
            ]
        )
    }

    @Test("a zero grace period is allowed")
    func zeroGracePeriod() throws {
        let config = try ConfigLoader.load(yaml: "global: { grace_period: 0s }\n" + minimalYAML)
        #expect(config.global.gracePeriod == .zero)
    }

    @Test("invalid listen and server addresses")
    func invalidAddresses() {
        let yaml = """
            frontends:
              - name: public
                listen:
                  - "127.0.0.1"
                  - "::1:8080"
                  - "[::1]8080"
                  - "[fe80::zz]:80"
                  - "bad host:80"
                  - "127.0.0.256:80"
                  - ":8080"
                  - "[::1]:0"
                default_backend: web
            backends:
              - name: web
                servers:
                  - { name: web1, address: "127.0.0.1:99999" }
                  - { name: web2, address: "127.0.0.1:http" }
            """
        #expect(
            loadErrors(yaml) == [
                #"frontends[0].listen[0] (line 4): "127.0.0.1" has no port (expected host:port, e.g. 127.0.0.1:8080)"#,
                #"frontends[0].listen[1] (line 5): "::1:8080": an IPv6 address must be in brackets, e.g. [::1]:8080"#,
                #"frontends[0].listen[2] (line 6): "[::1]8080" has no port (expected host:port, e.g. [::1]:8080)"#,
                #"frontends[0].listen[3] (line 7): "[fe80::zz]:80" is not a valid IPv6 address"#,
                #"frontends[0].listen[4] (line 8): "bad host:80" is not a valid host"#,
                #"frontends[0].listen[5] (line 9): "127.0.0.256:80" is not a valid host"#,
                #"frontends[0].listen[6] (line 10): ":8080" has no host (use 0.0.0.0 or [::] for every address)"#,
                #"frontends[0].listen[7] (line 11): "[::1]:0" is not a valid port"#,
                #"backends[0].servers[0].address (line 16): "127.0.0.1:99999" is not a valid port"#,
                #"backends[0].servers[1].address (line 17): "127.0.0.1:http" is not a valid port"#,
            ]
        )
    }

    @Test("two listeners on one address, empty listen and servers lists")
    func listenersAndEmptyLists() {
        let yaml = """
            frontends:
              - name: a
                listen: ["127.0.0.1:8080", "[::1]:8080"]
                default_backend: web
              - name: b
                listen: ["127.0.0.1:8080", "[0:0::1]:8080", "127.0.0.1:8081"]
                default_backend: web
              - name: c
                listen: []
                default_backend: web
            backends:
              - name: web
                servers: []
            """
        #expect(
            loadErrors(yaml) == [
                #"frontends[1].listen[0] (line 6): "127.0.0.1:8080" is already used by frontend "a" at line 3"#,
                #"frontends[1].listen[1] (line 6): "[0:0::1]:8080" is already used by frontend "a" at line 3"#,
                "frontends[2].listen (line 9): a frontend must listen on at least one address",
                "backends[0].servers (line 13): a backend needs at least one server",
            ]
        )
    }

    @Test("empty frontends and backends lists")
    func emptySections() {
        #expect(
            loadErrors("frontends: []\nbackends:\n") == [
                "frontends (line 1): at least one frontend is required",
                "backends (line 2): at least one backend is required",
            ]
        )
    }

    @Test("invalid ACLs: regex, CIDR, host, method, path, header, no criteria, unknown criterion")
    func invalidACLs() {
        let yaml = """
            frontends:
              - name: public
                listen: "127.0.0.1:8080"
                acls:
                  bad_regex: { path_regex: "(css|js" }
                  bad_src: { src: ["10.0.0.0/33", "10.0.0.0/8", "300.1.1.1", "2001:db8::/129", "fe80:::1"] }
                  empty: {}
                  bad_host: { host: ["example.com:8080", "exa mple.com", "[::1]:80", "*.*.com"] }
                  bad_method: { method: [GET, BAD METHOD] }
                  bad_path: { path_prefix: api/ }
                  hdr_none: { header: { name: X-A } }
                  hdr_two: { header: { name: X-A, equals: a, prefix: b } }
                  typo: { paht: /x }
                default_backend: web
            backends:
              - name: web
                servers: [{ name: web1, address: "127.0.0.1:9001" }]
            """
        let cidr = "is not a valid CIDR block (expected e.g. 10.0.0.0/8, 2001:db8::/32 or a single address)"
        #expect(
            loadErrors(yaml) == [
                #"frontends[0].acls.bad_regex.path_regex (line 5): "(css|js" is not a valid regular expression: expected ')'"#,
                #"frontends[0].acls.bad_src.src[0] (line 6): "10.0.0.0/33" "# + cidr,
                #"frontends[0].acls.bad_src.src[2] (line 6): "300.1.1.1" "# + cidr,
                #"frontends[0].acls.bad_src.src[3] (line 6): "2001:db8::/129" "# + cidr,
                #"frontends[0].acls.bad_src.src[4] (line 6): "fe80:::1" "# + cidr,
                "frontends[0].acls.empty (line 7): an ACL needs at least one criterion: path_prefix, path, path_regex, host, method, header, src, sni, alpn",
                #"frontends[0].acls.bad_host.host[0] (line 8): "example.com:8080" has a port; the Host header is compared without its port"#,
                #"frontends[0].acls.bad_host.host[1] (line 8): "exa mple.com" is not a valid host name"#,
                #"frontends[0].acls.bad_host.host[2] (line 8): "[::1]:80" has a port; the Host header is compared without its port"#,
                #"frontends[0].acls.bad_host.host[3] (line 8): "*.*.com" is not a valid host name"#,
                #"frontends[0].acls.bad_method.method[1] (line 9): "BAD METHOD" is not a valid HTTP method"#,
                #"frontends[0].acls.bad_path.path_prefix (line 10): "api/" must start with "/""#,
                "frontends[0].acls.hdr_none.header (line 11): a header criterion needs one of: equals, prefix, contains, exists",
                "frontends[0].acls.hdr_two.header.prefix (line 12): a header criterion takes only one of: equals, prefix, contains, exists",
                #"frontends[0].acls.typo.paht (line 13): unknown key "paht"; allowed keys: path_prefix, path, path_regex, host, method, header, src, sni, alpn"#,
            ]
        )
    }

    @Test("rule actions: redirect codes, tarpit durations, header names and values are checked")
    func invalidRuleActions() {
        let yaml = """
            frontends:
              - name: public
                listen: "127.0.0.1:8080"
                rules:
                  - { redirect: { to: "https://a.test{uri}", code: 305 } }
                  - { redirect: { code: 301 } }
                  - { tarpit: soon }
                  - { set_header: { name: Content-Length, value: "1" } }
                  - { set_header: { name: "X Env", value: prod } }
                  - { del_header: Transfer-Encoding }
                  - { redirect: { to: /b }, tarpit: 1s }
                default_backend: web
            backends:
              - name: web
                servers: [{ name: web1, address: "127.0.0.1:9001" }]
            """
        let errors = loadErrors(yaml)
        #expect(errors.count == 7, "\(errors)")
        #expect(errors[0] == "frontends[0].rules[0].redirect.code (line 5): a redirect's code is one of 301, 302, 303, 307, 308")
        #expect(errors[1] == #"frontends[0].rules[1].redirect.to (line 6): required key "to" is missing"#)
        #expect(errors[2].hasPrefix("frontends[0].rules[2].tarpit (line 7):"))
        #expect(errors[3] == "frontends[0].rules[3].set_header.name (line 8): Content-Length is managed by Fulcrum and cannot be changed by a rule")
        #expect(errors[4] == #"frontends[0].rules[4].set_header.name (line 9): "X Env" is not a valid header name"#)
        #expect(errors[5] == "frontends[0].rules[5].del_header (line 10): Transfer-Encoding is managed by Fulcrum and cannot be changed by a rule")
        #expect(errors[6].hasPrefix("frontends[0].rules[6].tarpit (line 11): a rule takes exactly one action"))

        let valid = try? ConfigLoader.load(
            yaml: """
                frontends:
                  - name: public
                    listen: "127.0.0.1:8080"
                    acls: { old: { host: old.test } }
                    rules:
                      - { set_header: { name: X-Env, value: prod } }
                      - { del_header: X-Internal }
                      - { redirect: { to: "https://new.test{uri}", code: 301 }, if: old }
                      - { redirect: { to: /elsewhere } }
                      - { tarpit: 10s, unless: old }
                    default_backend: web
                backends:
                  - name: web
                    servers: [{ name: web1, address: "127.0.0.1:9001" }]
                """
        )
        #expect(
            valid?.frontends[0].rules.map(\.action) == [
                .setHeader(name: "X-Env", value: "prod"),
                .deleteHeader("X-Internal"),
                .redirect(to: "https://new.test{uri}", code: 301),
                .redirect(to: "/elsewhere", code: 302),
                .tarpit(.seconds(10)),
            ]
        )
    }

    @Test("bad values: workers, log, limits, deny, actions, error_files, algorithm, retries, weight")
    func invalidValues() {
        let yaml = """
            global:
              workers: 0
              log: { level: verbose, access: apache }
            frontends:
              - name: public
                listen: "127.0.0.1:8080"
                limits: { max_header_size: 0, max_body_size: lots }
                rules:
                  - { deny: 200 }
                  - { deny: 403, use_backend: web }
                  - { if: [] }
                error_files: { 302: no-such-fulcrum-page.html, 503: "" }
                default_backend: web
            backends:
              - name: web
                algorithm: fastest
                retries: -1
                servers:
                  - { name: web1, address: "127.0.0.1:9001", weight: 257 }
                  - { name: web2, address: "127.0.0.1:9002", weight: -1 }
            """
        #expect(
            loadErrors(yaml) == [
                #"global.workers (line 2): must be "auto" or a positive number of threads, found "0""#,
                #"global.log.level (line 3): unknown log level "verbose"; expected one of: trace, debug, info, notice, warning, error, critical"#,
                #"global.log.access (line 3): unknown access log format "apache"; expected one of: off, combined, json"#,
                "frontends[0].limits.max_header_size (line 7): must be greater than zero",
                #"frontends[0].limits.max_body_size (line 7): "lots" is not a valid size (expected bytes or a number with a unit: 65536, 64k, 64KB, 1MB)"#,
                "frontends[0].rules[0].deny (line 9): 200 is not an HTTP error status (expected 400…599)",
                "frontends[0].rules[1].use_backend (line 10): a rule takes exactly one action (use_backend, deny, redirect, tarpit, set_header, del_header)",
                "frontends[0].rules[2] (line 11): a rule needs an action: use_backend, deny, redirect, tarpit, set_header, del_header",
                #"frontends[0].error_files.302 (line 12): "302" is not an HTTP error status (expected 400…599)"#,
                #"frontends[0].error_files.302 (line 12): "no-such-fulcrum-page.html" does not exist"#,
                "frontends[0].error_files.503 (line 12): must not be empty",
                #"backends[0].algorithm (line 16): unknown algorithm "fastest"; expected one of: round_robin, weighted_round_robin, least_connections, random, power_of_two, least_response_time, peak_ewma, hash, adaptive"#,
                "backends[0].retries (line 17): must be 0 or more, found -1",
                "backends[0].servers[0].weight (line 19): must be between 0 and 256, found 257",
                "backends[0].servers[1].weight (line 20): must be between 0 and 256, found -1",
            ]
        )
    }

    @Test("error_files must be readable files")
    func errorFilesMustBeFiles() throws {
        try withTemporaryDirectory { directory in
            let yaml = minimalYAML.replacingOccurrences(
                of: "    default_backend: web\n",
                with: "    default_backend: web\n    error_files: { 502: pages, 503: missing.html }\n"
            )
            try FileManager.default.createDirectory(atPath: "\(directory)/pages", withIntermediateDirectories: true)
            try writeFile(yaml, to: "\(directory)/fulcrum.yaml")
            #expect(
                throws: ConfigErrors(errors: [
                    ConfigError(
                        path: "frontends[0].error_files.502",
                        line: 5,
                        message: #""pages" (\#(directory)/pages) is a directory, not a file"#
                    ),
                    ConfigError(
                        path: "frontends[0].error_files.503",
                        line: 5,
                        message: #""missing.html" (\#(directory)/missing.html) does not exist"#
                    ),
                ])
            ) {
                try ConfigLoader.load(contentsOfFile: "\(directory)/fulcrum.yaml")
            }
        }
    }

    @Test("every problem of a document is reported at once, in file order")
    func allErrorsAtOnce() throws {
        let yaml = """
            global: { workers: none }
            frontends:
              - name: public
                listen: "127.0.0.1:80800"
                acls:
                  api: { path_regex: "(" }
                rules:
                  - { use_backend: nowhere, if: [api] }
            backends:
              - name: web
                algorithm: fair
                servers:
                  - { name: web1, address: "127.0.0.1", weight: 1000 }
            """
        let expected = [
            #"global.workers (line 1): must be "auto" or a positive number of threads, found "none""#,
            #"frontends[0].listen (line 4): "127.0.0.1:80800" is not a valid port"#,
            #"frontends[0].acls.api.path_regex (line 6): "(" is not a valid regular expression: expected ')'"#,
            #"frontends[0].rules[0].use_backend (line 8): undefined backend "nowhere"; defined backends: web"#,
            #"backends[0].algorithm (line 11): unknown algorithm "fair"; expected one of: round_robin, weighted_round_robin, least_connections, random, power_of_two, least_response_time, peak_ewma, hash, adaptive"#,
            #"backends[0].servers[0].address (line 13): "127.0.0.1" has no port (expected host:port, e.g. 127.0.0.1:8080)"#,
            "backends[0].servers[0].weight (line 13): must be between 0 and 256, found 1000",
        ]
        #expect(loadErrors(yaml) == expected)

        let error = try #require(throws: ConfigErrors.self) { try ConfigLoader.load(yaml: yaml) }
        #expect(error.errors.map(\.line) == [1, 4, 6, 8, 11, 13, 13])
        #expect(error.description == expected.joined(separator: "\n"))
    }

    // MARK: Document-level problems

    @Test("a YAML syntax error is one error at the line the parser reports")
    func syntaxError() {
        let yaml = """
            frontends:
              - name: public
                listen: ["127.0.0.1:8080"
                default_backend: web
            backends: []
            """
        let errors = loadErrors(yaml)
        #expect(errors.count == 1)
        #expect(errors.first?.hasPrefix("config (line 4): invalid YAML at column 5: did not find expected ',' or ']'") == true)
        #expect(errors.first?.contains("while parsing a flow sequence at line 3, column 13") == true)
    }

    @Test("a tab used for indentation is called out")
    func tabIndentation() {
        #expect(
            loadErrors("frontends:\n\t- name: x\n") == [
                "config (line 2): invalid YAML at column 1: found character that cannot start any token"
                    + " (while scanning for the next token at line 2, column 1); YAML does not allow tabs for indentation"
            ]
        )
    }

    @Test("a control character is reported at its line")
    func controlCharacter() {
        let errors = loadErrors("frontends: []\nbackends: []\n# \u{1}\n")
        #expect(errors == ["config (line 3): invalid text: control characters are not allowed"])
    }

    @Test("lines are counted right in a file with CRLF line breaks")
    func crlfLineBreaks() {
        let yaml = minimalYAML.replacingOccurrences(of: "9001", with: "0").replacingOccurrences(of: "\n", with: "\r\n")
        #expect(loadErrors(yaml) == [#"backends[0].servers[0].address (line 8): "127.0.0.1:0" is not a valid port"#])
        #expect(loadErrors("frontends: []\r\nbackends:\r\n\t- x\r\n").first?.hasPrefix("config (line 3): ") == true)
    }

    @Test("a merge key must refer to mappings")
    func invalidMergeKey() {
        let yaml = minimalYAML.replacingOccurrences(of: "    default_backend: web\n", with: "    default_backend: web\n    <<: [a]\n")
        #expect(loadErrors(yaml) == ["frontends[0] (line 5): a merge key (<<) takes a mapping or a list of mappings"])
    }

    @Test("a syntax error names the source given")
    func syntaxErrorWithSourceName() throws {
        let error = try #require(throws: ConfigErrors.self) {
            try ConfigLoader.load(yaml: "frontends: [\n  a: b: c\n", sourceName: "edge.yaml")
        }
        #expect(error.errors.count == 1)
        #expect(error.errors.first?.path == "edge.yaml")
        #expect(error.errors.first?.line == 2)
    }

    @Test("an empty document and a document that is not a mapping")
    func emptyAndNonMappingDocuments() {
        #expect(loadErrors("") == ["config: the document is empty; it needs frontends and backends"])
        #expect(loadErrors("# nothing yet\n") == ["config: the document is empty; it needs frontends and backends"])
        #expect(loadErrors("- a\n- b\n") == ["config (line 1): expected a mapping, found a list"])
    }

    @Test("files that cannot be read become one error naming the file")
    func unreadableFiles() throws {
        try withTemporaryDirectory { directory in
            let missing = "\(directory)/missing.yaml"
            #expect(throws: ConfigErrors(errors: [ConfigError(path: missing, message: "no such file")])) {
                try ConfigLoader.load(contentsOfFile: missing)
            }
            #expect(throws: ConfigErrors(errors: [ConfigError(path: directory, message: "is a directory, not a file")])) {
                try ConfigLoader.load(contentsOfFile: directory)
            }
            let binary = "\(directory)/binary.yaml"
            try Data([0x66, 0x3a, 0x20, 0xff, 0xfe, 0x0a]).write(to: URL(fileURLWithPath: binary))
            #expect(throws: ConfigErrors(errors: [ConfigError(path: binary, message: "is not UTF-8 text")])) {
                try ConfigLoader.load(contentsOfFile: binary)
            }
            let broken = "\(directory)/broken.yaml"
            try writeFile("frontends:\n\t- name: x\n", to: broken)
            let error = try #require(throws: ConfigErrors.self) { try ConfigLoader.load(contentsOfFile: broken) }
            #expect(error.errors.map(\.path) == [broken])
            #expect(error.errors.map(\.line) == [2])
        }
    }
}
