import Foundation
import FulcrumConfig
import Testing

/// The example configuration of the brief and of docs/config.md, verbatim.
let referenceYAML = #"""
    global:
      workers: auto                 # event-loop threads; auto = number of cores
      log: { level: info, access: combined }   # access: off | combined | json

    frontends:
      - name: public
        listen: ["127.0.0.1:8080"]
        timeouts: { client_idle: 60s, header_read: 10s }
        acls:
          api:     { path_prefix: /api/ }
          static:  { path_regex: '\.(css|js|png)$' }
          blog:    { host: blog.example.com }
          posts:   { method: [POST, PUT] }
          beta:    { header: { name: X-Beta, equals: "1" } }
          office:  { src: ["10.0.0.0/8", "127.0.0.1/32"] }
        rules:                      # first match wins; `if` = all listed ACLs match, `unless` = none match
          - { use_backend: api, if: [api] }
          - { deny: 403, if: [posts], unless: [office] }
        default_backend: web

    backends:
      - name: web
        algorithm: round_robin      # round_robin | weighted_round_robin | least_connections | random | power_of_two
        retries: 2                  # tries on other servers when a connection cannot be made
        timeouts: { connect: 2s, response: 30s }
        servers:
          - { name: web1, address: 127.0.0.1:9001, weight: 2 }
          - { name: web2, address: 127.0.0.1:9002 }
      - name: api
        algorithm: least_connections
        servers:
          - { name: api1, address: "localhost:9101" }
    """#

/// A small valid configuration for tests to start from.
let minimalYAML = """
    frontends:
      - name: public
        listen: "127.0.0.1:8080"
        default_backend: web
    backends:
      - name: web
        servers:
          - { name: web1, address: "127.0.0.1:9001" }
    """

/// The descriptions of the errors loading `yaml` produces; records an issue if it loads.
func loadErrors(_ yaml: String, sourceLocation: SourceLocation = #_sourceLocation) -> [String] {
    do throws(ConfigErrors) {
        _ = try ConfigLoader.load(yaml: yaml)
        Issue.record("expected the configuration to be rejected", sourceLocation: sourceLocation)
        return []
    } catch {
        return error.errors.map(\.description)
    }
}

/// A fresh directory under the system's temporary directory, removed by `body`'s end.
func withTemporaryDirectory<Result>(_ body: (String) throws -> Result) throws -> Result {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("fulcrum-config-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try body(directory.path)
}

func writeFile(_ contents: String, to path: String) throws {
    try contents.write(toFile: path, atomically: true, encoding: .utf8)
}
