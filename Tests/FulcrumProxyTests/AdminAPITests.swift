import AsyncHTTPClient
import Foundation
import FulcrumAdmin
import FulcrumConfig
import FulcrumWorker
import Logging
import NIOCore
import NIOHTTP1
import Testing

/// The admin REST API on a real listener, over a real proxy and workers.
@Suite("Admin API", .serialized)
struct AdminAPITests {
    @Test("reads: health, backends with their servers' live numbers, one backend, stats")
    func reads() async throws {
        try await withAdminAPI { harness, admin in
            for _ in 0..<4 { #expect(try await harness.send("/health").status == .ok) }
            let health = try await admin.call(.GET, "/api/health")
            #expect(health.status == .ok)
            #expect(health.json?["status"] as? String == "ok")

            let backends = try await admin.call(.GET, "/api/backends")
            #expect(backends.status == .ok)
            #expect(backends.headers["content-type"].first == "application/json")
            let list = try #require(backends.array)
            #expect(list.count == 1)
            let app = try #require(list.first)
            #expect(app["name"] as? String == "app")
            #expect(app["algorithm"] as? String == "adaptive")
            #expect(app["pinned"] as? Bool == false)
            let servers = try #require(app["servers"] as? [[String: Any]])
            #expect(servers.map { $0["name"] as? String } == ["w1", "w2"])
            #expect(servers.allSatisfy { $0["state"] as? String == "up" })
            let requests = servers.compactMap { ($0["totals"] as? [String: Any])?["requests"] as? Int }
            #expect(requests.reduce(0, +) == 4)

            #expect(try await admin.call(.GET, "/api/backends/app").json?["name"] as? String == "app")
            #expect(try await admin.call(.GET, "/api/stats").json?["backends"] as? [Any] != nil)
            // Reads need no token on loopback.
            #expect(try await admin.call(.GET, "/api/backends", token: nil).status == .ok)
        }
    }

    @Test("PATCH a server's state: drain takes it out of rotation, ready puts it back")
    func serverState() async throws {
        try await withAdminAPI(algorithm: "round_robin") { harness, admin in
            let drained = try await admin.call(.PATCH, "/api/backends/app/servers/w1", body: #"{"state": "drain"}"#)
            #expect(drained.status == .ok)
            #expect(drained.json?["state"] as? String == "draining")
            #expect(try await harness.workersServing(requests: 6) == Array(repeating: "w2", count: 6))
            let ready = try await admin.call(.PATCH, "/api/backends/app/servers/w1", body: #"{"state": "ready"}"#)
            #expect(ready.json?["state"] as? String == "up")
            #expect(Set(try await harness.workersServing(requests: 6)) == ["w1", "w2"])
        }
    }

    @Test("PUT an adaptive backend's algorithm: switch and pin, then unpin; its decisions are listed")
    func manualAlgorithm() async throws {
        try await withAdminAPI { _, admin in
            let pinned = try await admin.call(.PUT, "/api/backends/app/algorithm", body: #"{"algorithm": "least_connections", "pin": true}"#)
            #expect(pinned.status == .ok)
            #expect(pinned.json?["activeAlgorithm"] as? String == "least_connections")
            #expect(pinned.json?["pinned"] as? Bool == true)
            let unpinned = try await admin.call(.PUT, "/api/backends/app/algorithm", body: #"{"pin": false}"#)
            #expect(unpinned.json?["pinned"] as? Bool == false)
            let decisions = try await admin.call(.GET, "/api/backends/app/decisions")
            #expect(decisions.status == .ok)
            #expect(decisions.json?["decisions"] as? [Any] != nil)
        }
    }

    @Test("errors are problem+json naming the field: unknown names 404, invalid changes 422, no token 401")
    func errors() async throws {
        try await withAdminAPI(algorithm: "round_robin") { _, admin in
            let unauthorized = try await admin.call(.PATCH, "/api/backends/app/servers/w1", body: #"{"state": "drain"}"#, token: nil)
            #expect(unauthorized.status == .unauthorized)
            #expect(unauthorized.headers["www-authenticate"].first?.hasPrefix("Bearer") == true)
            #expect(unauthorized.headers["content-type"].first == "application/problem+json")
            let wrong = try await admin.call(.PATCH, "/api/backends/app/servers/w1", body: #"{"state": "drain"}"#, token: "s3cret-tokem")
            #expect(wrong.status == .unauthorized)

            let cases: [(HTTPMethod, String, String?, HTTPResponseStatus, String?)] = [
                (.GET, "/api/backends/nope", nil, .notFound, "backend"),
                (.PATCH, "/api/backends/app/servers/nope", #"{"state": "drain"}"#, .notFound, "server"),
                (.PATCH, "/api/backends/app/servers/w1", #"{"state": "asleep"}"#, .unprocessableEntity, "state"),
                (.PATCH, "/api/backends/app/servers/w1", #"{"weight": 999}"#, .unprocessableEntity, "weight"),
                (.PUT, "/api/backends/app/algorithm?persist=true", #"{"algorithm": "least_connections"}"#, .conflict, "persist"),
                (.GET, "/api/backends/app/decisions", nil, .unprocessableEntity, "backend"),
                (.GET, "/api/nothing-here", nil, .notFound, nil),
            ]
            for (method, path, body, status, field) in cases {
                let response = try await admin.call(method, path, body: body)
                #expect(response.status == status, "\(method) \(path)")
                #expect(response.headers["content-type"].first == "application/problem+json", "\(method) \(path)")
                #expect(response.json?["status"] as? Int == Int(status.code), "\(method) \(path)")
                #expect(response.json?["field"] as? String == field, "\(method) \(path)")
                #expect((response.json?["detail"] as? String)?.isEmpty == false, "\(method) \(path)")
            }
            let notJSON = try await admin.call(.PATCH, "/api/backends/app/servers/w1", body: "state=drain")
            #expect(notJSON.status == .badRequest)
        }
        try await withAdminAPI { _, admin in
            let unknown = try await admin.call(.PUT, "/api/backends/app/algorithm", body: #"{"algorithm": "fastest"}"#)
            #expect(unknown.status == .unprocessableEntity)
            #expect(unknown.json?["field"] as? String == "algorithm")
        }
    }

    @Test("docs/admin-api.yaml is what the API serves, and lists exactly the routes it registers")
    func openAPIDocument() async throws {
        let file = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/admin-api.yaml")
        let onDisk = try String(contentsOf: file, encoding: .utf8)
        #expect(onDisk == AdminServer.openAPIDocument, "docs/admin-api.yaml and the embedded document differ")
        try await withAdminAPI { harness, admin in
            let served = try await admin.call(.GET, "/api/openapi.yaml")
            #expect(served.status == .ok)
            #expect(String(buffer: served.body) == onDisk)
            let reloader = ConfigReloader(proxy: harness.proxy, path: nil, writeback: false, logger: Logger(label: "test"))
            let registered = Set(
                AdminServer.routes(proxy: harness.proxy, reloader: reloader).map { route in
                    let path = route.path.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }
                    return "\(route.method) /\(path.joined(separator: "/"))"
                }
            )
            #expect(registered.count == 16)
            #expect(registered == Self.documentedOperations(onDisk))
        }
    }

    /// `METHOD /path` for every operation under `paths:` (two-space paths, four-space methods).
    private static func documentedOperations(_ yaml: String) -> Set<String> {
        var operations: Set<String> = []
        var path: String?
        for line in yaml.split(separator: "\n") {
            if !line.hasPrefix(" ") {
                path = nil
            } else if line.hasPrefix("  /"), line.hasSuffix(":") {
                path = String(line.dropFirst(2).dropLast())
            } else if let path, let method = ["get", "put", "patch", "post", "delete"].first(where: { line == "    \($0):" }) {
                operations.insert("\(method.uppercased()) \(path)")
            }
        }
        return operations
    }

    @Test("POST /api/config/validate: a valid configuration, and one with every error listed")
    func validate() async throws {
        try await withAdminAPI { harness, admin in
            let valid = try await admin.call(.POST, "/api/config/validate", body: simpleConfig([9001]), token: nil)
            #expect(valid.status == .ok)
            #expect(valid.json?["valid"] as? Bool == true)
            let broken = try await admin.call(
                .POST,
                "/api/config/validate",
                body: simpleConfig([9001], algorithm: "fastest").replacingOccurrences(of: "retries: 2", with: "retries: lots"),
                token: nil
            )
            #expect(broken.status == .unprocessableEntity)
            let errors = try #require(broken.json?["errors"] as? [[String: Any]])
            #expect(errors.compactMap { $0["path"] as? String } == ["backends[0].algorithm", "backends[0].retries"])
            #expect(errors.allSatisfy { ($0["line"] as? Int ?? 0) > 0 && ($0["message"] as? String)?.isEmpty == false })
            // Nothing was applied.
            #expect(try await harness.send("/health").status == .ok)
        }
    }

    @Test("without a configured token, nothing can be changed")
    func noToken() async throws {
        try await withAdminAPI(token: nil) { _, admin in
            #expect(try await admin.call(.GET, "/api/backends", token: nil).status == .ok)
            let refused = try await admin.call(.PATCH, "/api/backends/app/servers/w1", body: #"{"state": "drain"}"#, token: "anything")
            #expect(refused.status == .forbidden)
        }
    }
}

/// A proxy over `workers` (backend `app`, `algorithm`), its admin API on an ephemeral port of
/// `listenHost`, and a function to call that API.
/// A proxy over workers (backend `app` naming the first two, w1 and w2, picked by
/// `algorithm`), its admin API on an ephemeral port, and a function to call that API.
///
/// - Parameters:
///   - workers: how many workers to start.
///   - configFile: a file the harness's configuration is written to first; the API's changes
///     are written back to it when `writeback` is set.
func withAdminAPI(
    algorithm: String = "adaptive",
    listenHost: String = "127.0.0.1",
    token: String? = "s3cret-token",
    workers count: Int = 2,
    configFile: String? = nil,
    writeback: Bool = false,
    yaml: (([Int]) -> String)? = nil,
    _ body: (ProxyHarness, AdminClient) async throws -> Void
) async throws {
    let workers = Array(repeating: WorkerBehaviour(delayMilliseconds: 0), count: count)
    let metrics = MetricsExporter()
    let yaml = yaml ?? { simpleConfig(Array($0.prefix(2)), algorithm: algorithm) }
    try await withProxy(workers: workers, metricsFactory: metrics.factory, yaml: yaml) { harness in
        if let configFile {
            try ConfigRenderer.yaml(harness.proxy.config).write(toFile: configFile, atomically: true, encoding: .utf8)
        }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        // Stopping by cancellation makes Hummingbird log an error; it is expected here.
        var logger = Logger(label: "fulcrum.admin.test")
        logger.logLevel = .critical
        let admin = AdminServer(
            config: AdminConfig(listen: ListenAddress(host: listenHost, port: 0), tokenEnvironmentVariable: nil),
            token: token,
            proxy: harness.proxy,
            reloader: ConfigReloader(proxy: harness.proxy, path: configFile, writeback: writeback, logger: logger),
            metrics: metrics,
            logger: logger
        ) { port in continuation.yield(port) }
        let running = Task { try await admin.run() }
        defer { running.cancel() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            Issue.record("the admin API did not start")
            return
        }
        try await body(harness, AdminClient(client: harness.client, port: port))
    }
}

/// Calls the admin API with AsyncHTTPClient.
struct AdminClient {
    let client: HTTPClient
    let port: Int

    struct Answer {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: ByteBuffer
        var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] }
        var array: [[String: Any]]? { (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [[String: Any]] }
    }

    func call(_ method: HTTPMethod, _ path: String, body: String? = nil, token: String? = "s3cret-token") async throws -> Answer {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = method
        if let token { request.headers.add(name: "authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await client.execute(request, timeout: .seconds(10))
        return Answer(status: response.status, headers: response.headers, body: try await response.body.collect(upTo: 1 << 20))
    }
}
