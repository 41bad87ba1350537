/// `fulcrum proxy --from :8080 --to 127.0.0.1:9001 --to 127.0.0.1:9002`: a load balancer with
/// no file, as Caddy's `reverse-proxy` does. The flags become a configuration file's text,
/// which the ordinary loader reads, so they are checked as a file is and `--print-config`
/// can show the file they stand for.
package enum CommandLineProxy {
    package struct Options: Sendable {
        /// `--from`: `:8080` (every interface), `8080`, or `host:port`.
        package var from: String
        /// `--to`: the servers, `host:port` each (an `http://` in front is dropped).
        package var to: [String]
        /// `--algorithm`: a balancing algorithm's name (default round robin).
        package var algorithm: String
        /// `--health`: a path to probe each server with; nil: no health checks.
        package var health: String?

        package init(from: String, to: [String], algorithm: String = "round_robin", health: String? = nil) {
            self.from = from
            self.to = to
            self.algorithm = algorithm
            self.health = health
        }
    }

    /// The configuration file the flags stand for: a frontend `proxy` on `from`, a backend
    /// `servers` over `to` (servers `s1`, `s2`, …).
    package static func yaml(_ options: Options) -> String {
        var listen = options.from
        if listen.hasPrefix(":") { listen = "0.0.0.0" + listen }
        if !listen.isEmpty, listen.allSatisfy(\.isNumber) { listen = "0.0.0.0:" + listen }
        let servers = options.to.enumerated().map { index, address in
            var address = address
            if address.hasPrefix("http://") { address.removeFirst("http://".count) }
            while address.hasSuffix("/") { address.removeLast() }
            return "      - { name: s\(index + 1), address: \(ConfigDocument.doubleQuoted(address)) }"
        }
        let health = options.health.map { "\n    health_check: { path: \(ConfigDocument.doubleQuoted($0)) }" } ?? ""
        return """
            # Written by fulcrum proxy --print-config; run it with fulcrum run -c FILE.
            frontends:
              - name: proxy
                listen: [\(ConfigDocument.doubleQuoted(listen))]
                default_backend: servers
            backends:
              - name: servers
                algorithm: \(ConfigDocument.doubleQuoted(options.algorithm))\(health)
                servers:
            \(servers.joined(separator: "\n"))

            """
    }

    /// The configuration the flags stand for; its errors name the file's keys.
    package static func config(_ options: Options) throws(ConfigErrors) -> Config {
        try ConfigLoader.load(yaml: yaml(options), sourceName: "fulcrum proxy")
    }
}
