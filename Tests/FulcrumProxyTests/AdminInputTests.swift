import AsyncHTTPClient
import Foundation
import FulcrumConfig
import NIOCore
import NIOHTTP1
import Testing

/// What the admin API takes from a caller, on a real listener over a real proxy: names under
/// the configuration file's rule (`ConfigName`), and methods a route does not have.
@Suite("Admin API: input", .serialized)
struct AdminInputTests {
    static let invalidNames = [
        "..", ".", "-w3", "w 3", "w3/x", "wé", String(repeating: "w", count: 65), String(repeating: "x", count: 5000),
    ]

    @Test("POST a server: names follow the file's rule (no '..', at most 64 characters); valid names still join")
    func serverNames() async throws {
        try await withAdminAPI(algorithm: "round_robin", workers: 3) { harness, admin in
            let address = "127.0.0.1:\(harness.workers[2].port)"
            for name in Self.invalidNames {
                let body = String(data: try JSONSerialization.data(withJSONObject: ["name": name, "address": address]), encoding: .utf8)!
                let refused = try await admin.call(.POST, "/api/backends/app/servers", body: body)
                #expect(refused.status == .unprocessableEntity, "\(name.prefix(20))")
                #expect(refused.headers["content-type"].first == "application/problem+json")
                #expect(refused.json?["field"] as? String == "name")
                let message = (refused.json?["errors"] as? [[String: Any]])?.first?["message"] as? String ?? ""
                #expect(message.contains("is not a valid server name"), "\(message)")
                // The answer quotes a long name shortened.
                #expect(refused.body.readableBytes < 1000)
            }
            #expect(harness.proxy.config.backends[0].servers.map(\.name) == ["w1", "w2"])

            let longest = "w3." + String(repeating: "a", count: ConfigName.maximumLength - 5) + "_-"
            for name in ["w3", longest] {
                let added = try await admin.call(.POST, "/api/backends/app/servers", body: #"{"name": "\#(name)", "address": "\#(address)"}"#)
                #expect(added.status == .created, "\(name)")
                #expect(try await admin.call(.DELETE, "/api/backends/app/servers/\(name)").status == .ok)
            }
        }
    }

    @Test("PUT /api/config: a backend or server named against the rule is a 422 naming its path")
    func configNames() async throws {
        try await withAdminAPI(algorithm: "round_robin") { harness, admin in
            let running = harness.proxy.config
            for name in ["..", String(repeating: "b", count: 5000)] {
                var renamed = running
                renamed.backends[0].name = name
                renamed.frontends[0].defaultBackend = name
                let backend = try await admin.call(.PUT, "/api/config", body: ConfigRenderer.json(renamed))
                #expect(backend.status == .unprocessableEntity)
                #expect(backend.json?["field"] as? String == "backends[0].name")

                var server = running
                server.backends[0].servers[0].name = name
                let answer = try await admin.call(.PUT, "/api/config", body: ConfigRenderer.json(server))
                #expect(answer.status == .unprocessableEntity)
                #expect(answer.json?["field"] as? String == "backends[0].servers[0].name")
            }
            #expect(harness.proxy.config == running)
        }
    }

    @Test("a name in a path that breaks the rule is a 404 saying why, without echoing it whole")
    func pathNames() async throws {
        try await withAdminAPI(algorithm: "round_robin") { _, admin in
            let long = String(repeating: "x", count: 5000)
            let cases: [(HTTPMethod, String, String?, String)] = [
                (.GET, "/api/backends/\(long)", nil, "backend"),
                (.DELETE, "/api/backends/app/servers/\(long)", nil, "server"),
                (.PATCH, "/api/backends/app/servers/\(long)", #"{"state": "drain"}"#, "server"),
                (.PATCH, "/api/backends/app/servers/-w1", #"{"state": "drain"}"#, "server"),
            ]
            for (method, path, body, field) in cases {
                let answer = try await admin.call(method, path, body: body)
                #expect(answer.status == .notFound, "\(method) \(path.prefix(40))")
                #expect(answer.json?["field"] as? String == field)
                let detail = answer.json?["detail"] as? String ?? ""
                #expect(detail.contains("is not a valid \(field) name"), "\(detail)")
                #expect(detail.count < 300)
            }
        }
    }

    @Test("a method a route does not have is a 405 with Allow; HEAD works where GET does; unknown paths stay 404")
    func methodNotAllowed() async throws {
        try await withAdminAPI(algorithm: "round_robin") { _, admin in
            let cases: [(HTTPMethod, String, String)] = [
                (.PUT, "/api/health", "GET, HEAD"),
                (.POST, "/api/backends", "GET, HEAD"),
                (.DELETE, "/api/config", "GET, HEAD, PUT"),
                (.GET, "/api/config/validate", "POST"),
                (.GET, "/api/backends/app/servers", "POST"),
                (.PUT, "/api/backends/app/servers/w1", "PATCH, DELETE"),
                (.POST, "/api/backends/app/algorithm", "PUT, DELETE"),
                (.DELETE, "/api/backends/app", "GET, HEAD"),
                // The route exists whatever the backend: still a 405, not a 404.
                (.OPTIONS, "/api/backends/nope/decisions", "GET, HEAD"),
                (.TRACE, "/", "GET, HEAD"),
            ]
            for (method, path, allow) in cases {
                let answer = try await admin.call(method, path)
                #expect(answer.status == .methodNotAllowed, "\(method) \(path)")
                #expect(answer.headers["allow"].first == allow, "\(method) \(path)")
                #expect(answer.headers["content-type"].first == "application/problem+json", "\(method) \(path)")
                #expect(answer.json?["status"] as? Int == 405)
                #expect((answer.json?["detail"] as? String)?.contains(allow) == true, "\(method) \(path)")
            }
            let head = try await admin.call(.HEAD, "/api/backends")
            #expect(head.status == .ok)
            #expect(head.headers["content-type"].first == "application/json")
            #expect(head.body.readableBytes == 0)
            // An error to HEAD has no content either, and the connection carries on.
            let headMissing = try await admin.call(.HEAD, "/api/nothing-here")
            #expect(headMissing.status == .notFound)
            #expect(headMissing.body.readableBytes == 0)
            let headPostOnly = try await admin.call(.HEAD, "/api/config/validate")
            #expect(headPostOnly.status == .methodNotAllowed)
            #expect(headPostOnly.headers["allow"].first == "POST")
            #expect(headPostOnly.body.readableBytes == 0)
            #expect(try await admin.call(.GET, "/api/health").status == .ok)
            for method: HTTPMethod in [.GET, .PUT, .DELETE] {
                #expect(try await admin.call(method, "/api/nothing-here").status == .notFound, "\(method)")
                #expect(try await admin.call(method, "/api/backends/app/servers/w1/more").status == .notFound, "\(method)")
            }
        }
    }

    @Test("PATCH and PUT algorithm bodies: an unknown key or a null is a 400 naming it, and nothing changes")
    func strictBodies() async throws {
        try await withAdminAPI { harness, admin in
            let cases: [(HTTPMethod, String, String, String?)] = [
                (.PATCH, "/api/backends/app/servers/w1", #"{"state": "drain", "wieght": 3}"#, "wieght"),
                (.PATCH, "/api/backends/app/servers/w1", #"{"weight": null}"#, "weight"),
                (.PATCH, "/api/backends/app/servers/w1", #"{"weight": "3"}"#, "weight"),
                (.PATCH, "/api/backends/app/servers/w1", "[]", nil),
                (.PUT, "/api/backends/app/algorithm", #"{"algorithm": "round_robin", "pin": null}"#, "pin"),
                (.PUT, "/api/backends/app/algorithm", #"{"algorithm": "round_robin", "pinned": true}"#, "pinned"),
            ]
            for (method, path, body, field) in cases {
                let answer = try await admin.call(method, path, body: body)
                #expect(answer.status == .badRequest, "\(method) \(body)")
                #expect(answer.headers["content-type"].first == "application/problem+json")
                #expect(answer.json?["field"] as? String == field, "\(method) \(body)")
                #expect((answer.json?["detail"] as? String)?.isEmpty == false)
            }
            let backend = try await admin.call(.GET, "/api/backends/app")
            #expect(backend.json?["pinned"] as? Bool == false)
            let servers = try #require(backend.json?["servers"] as? [[String: Any]])
            #expect(servers.allSatisfy { $0["state"] as? String == "up" && $0["weight"] as? Int == 1 })
        }
    }
}
