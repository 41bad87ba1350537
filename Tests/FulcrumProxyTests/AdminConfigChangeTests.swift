import AsyncHTTPClient
import Foundation
import FulcrumAdmin
import FulcrumConfig
import FulcrumProxy
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// The admin API's configuration changes: the running configuration, a whole new one, servers
/// added, removed and re-weighted — each a real reload of a real proxy — and write-back.
@Suite("Admin API: configuration changes", .serialized)
struct AdminConfigChangeTests {
    @Test("GET /api/config is the running configuration as JSON that loads back to it")
    func getConfig() async throws {
        try await withAdminAPI { harness, admin in
            let response = try await admin.call(.GET, "/api/config", token: nil)
            #expect(response.status == .ok)
            #expect(response.headers["content-type"].first == "application/json")
            #expect(response.json?["backends"] != nil)
            let loaded = try ConfigLoader.load(yaml: String(buffer: response.body))
            #expect(loaded == harness.proxy.config)
        }
    }

    @Test("PUT /api/config applies a whole configuration; an invalid or unappliable one is a 422 and changes nothing")
    func putConfig() async throws {
        // Round robin, so that six requests one after another reach the added server (an
        // adaptive backend starts in peak_ewma, which prefers the servers it has measured).
        try await withAdminAPI(algorithm: "round_robin", workers: 3) { harness, admin in
            var config = harness.proxy.config
            config.backends[0].servers.append(
                ServerConfig(
                    name: "w3",
                    address: ServerAddress(host: "127.0.0.1", port: harness.workers[2].port)
                )
            )
            let applied = try await admin.call(.PUT, "/api/config", body: ConfigRenderer.yaml(config))
            #expect(applied.status == .ok)
            #expect(applied.json?["changed"] as? Bool == true)
            #expect(applied.json?["serversAdded"] as? [String] == ["app/w3"])
            #expect(harness.proxy.config == config)
            var seen = Set<String>()
            for _ in 0..<6 { seen.insert(try await harness.send("/work").worker ?? "?") }
            #expect(seen == ["w1", "w2", "w3"])

            // JSON is accepted too; the same configuration again is no change.
            let again = try await admin.call(.PUT, "/api/config", body: ConfigRenderer.json(config))
            #expect(again.status == .ok)
            #expect(again.json?["changed"] as? Bool == false)

            let invalid = try await admin.call(.PUT, "/api/config", body: "frontends: []\nbackends: nope\n")
            #expect(invalid.status == .unprocessableEntity)
            #expect(invalid.headers["content-type"].first == "application/problem+json")
            let errors = try #require(invalid.json?["errors"] as? [[String: Any]])
            #expect(errors.contains { ($0["path"] as? String) == "backends" })

            let squatter = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
            var taken = config
            taken.frontends[0].listen.append(ListenAddress(host: "127.0.0.1", port: squatter.localAddress!.port!))
            let unappliable = try await admin.call(.PUT, "/api/config", body: ConfigRenderer.yaml(taken))
            try await squatter.close()
            #expect(unappliable.status == .unprocessableEntity)
            #expect((unappliable.json?["detail"] as? String)?.contains("cannot be applied") == true)
            #expect(harness.proxy.config == config)

            #expect(try await admin.call(.PUT, "/api/config", body: ConfigRenderer.yaml(config), token: nil).status == .unauthorized)
        }
    }

    @Test("POST a server adds it to rotation; DELETE removes it; errors name the field")
    func addAndRemoveServers() async throws {
        try await withAdminAPI(algorithm: "round_robin", workers: 3) { harness, admin in
            let port = harness.workers[2].port
            let added = try await admin.call(
                .POST,
                "/api/backends/app/servers",
                body: #"{"name": "w3", "address": "127.0.0.1:\#(port)", "weight": 2}"#
            )
            #expect(added.status == .created)
            let server = try #require(added.json?["server"] as? [String: Any])
            #expect(server["name"] as? String == "w3")
            #expect(server["weight"] as? Int == 2)
            #expect((added.json?["reload"] as? [String: Any])?["serversAdded"] as? [String] == ["app/w3"])
            var seen = Set<String>()
            for _ in 0..<6 { seen.insert(try await harness.send("/work").worker ?? "?") }
            #expect(seen == ["w1", "w2", "w3"])

            let duplicate = try await admin.call(.POST, "/api/backends/app/servers", body: #"{"name": "w3", "address": "127.0.0.1:\#(port)"}"#)
            #expect(duplicate.status == .conflict)
            #expect(duplicate.json?["field"] as? String == "name")
            let badAddress = try await admin.call(.POST, "/api/backends/app/servers", body: #"{"name": "w4", "address": "nowhere"}"#)
            #expect(badAddress.status == .unprocessableEntity)
            #expect(badAddress.json?["field"] as? String == "address")
            let badWeight = try await admin.call(
                .POST,
                "/api/backends/app/servers",
                body: #"{"name": "w4", "address": "127.0.0.1:1", "weight": 1000}"#
            )
            #expect(badWeight.status == .unprocessableEntity)
            #expect(badWeight.json?["field"] as? String == "weight")
            #expect(try await admin.call(.POST, "/api/backends/nope/servers", body: #"{"name": "w4", "address": "127.0.0.1:1"}"#).status == .notFound)
            #expect(
                try await admin.call(.POST, "/api/backends/app/servers", body: #"{"name": "w4", "address": "127.0.0.1:1"}"#, token: nil).status
                    == .unauthorized
            )
            #expect(harness.proxy.config.backends[0].servers.map(\.name) == ["w1", "w2", "w3"])

            let removed = try await admin.call(.DELETE, "/api/backends/app/servers/w1")
            #expect(removed.status == .ok)
            #expect(removed.json?["serversRemoved"] as? [String] == ["app/w1"])
            seen = []
            for _ in 0..<6 { seen.insert(try await harness.send("/work").worker ?? "?") }
            #expect(seen == ["w2", "w3"])
            #expect(try await admin.call(.DELETE, "/api/backends/app/servers/w1").status == .notFound)
            #expect(try await admin.call(.DELETE, "/api/backends/app/servers/w2", token: nil).status == .unauthorized)
            _ = try await admin.call(.DELETE, "/api/backends/app/servers/w2")
            let last = try await admin.call(.DELETE, "/api/backends/app/servers/w3")
            #expect(last.status == .unprocessableEntity, "a backend needs at least one server")
            #expect(harness.proxy.config.backends[0].servers.map(\.name) == ["w3"])
        }
    }

    @Test("PATCH a weight reloads with it; weight and state together are checked before either applies")
    func weights() async throws {
        try await withAdminAPI(algorithm: "weighted_round_robin") { harness, admin in
            let changed = try await admin.call(.PATCH, "/api/backends/app/servers/w1", body: #"{"weight": 3}"#)
            #expect(changed.status == .ok)
            #expect(try await harness.proxy.reload(to: harness.proxy.config).changed == false)
            #expect(changed.json?["weight"] as? Int == 3)
            #expect(harness.proxy.config.backends[0].servers[0].weight == 3)
            var counts: [String: Int] = [:]
            for _ in 0..<8 { counts[try await harness.send("/work").worker ?? "?", default: 0] += 1 }
            #expect(counts == ["w1": 6, "w2": 2])

            let mixed = try await admin.call(.PATCH, "/api/backends/app/servers/w1", body: #"{"weight": 5, "state": "asleep"}"#)
            #expect(mixed.status == .unprocessableEntity)
            #expect(harness.proxy.config.backends[0].servers[0].weight == 3)
        }
    }

    @Test("config_writeback: API changes reach the file atomically (previous kept as .bak); a restart from it serves them")
    func writeback() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-writeback-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("fulcrum.yaml").path
        try await withAdminAPI(algorithm: "round_robin", workers: 3, configFile: file, writeback: true) { harness, admin in
            let original = try String(contentsOfFile: file, encoding: .utf8)
            let port = harness.workers[2].port
            #expect(
                try await admin.call(.POST, "/api/backends/app/servers", body: #"{"name": "w3", "address": "127.0.0.1:\#(port)"}"#).status == .created
            )
            let weighted = try await admin.call(.PATCH, "/api/backends/app/servers/w2", body: #"{"weight": 4}"#)
            #expect(weighted.status == .ok)

            let written = try ConfigLoader.load(contentsOfFile: file)
            #expect(written == harness.proxy.config)
            #expect(written.backends[0].servers.map(\.name) == ["w1", "w2", "w3"])
            #expect(written.backends[0].servers[1].weight == 4)
            // The previous version: after the server was added, before the weight changed.
            let backup = try ConfigLoader.load(contentsOfFile: file + ".bak")
            #expect(backup.backends[0].servers.map(\.name) == ["w1", "w2", "w3"])
            #expect(backup.backends[0].servers[1].weight == 1)
            #expect(original != (try String(contentsOfFile: file, encoding: .utf8)))
            // No temporary files left beside it.
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() == ["fulcrum.yaml", "fulcrum.yaml.bak"])

            // A restart from the file serves the same configuration (on another port: the
            // first proxy still holds its own).
            var restart = written
            restart.frontends[0].listen = [ListenAddress(host: "127.0.0.1", port: try deadPort())]
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let restarted = try await ProxyServer.start(config: restart, group: group, logger: Logger(label: "test"))
            let stats = try await restarted.stats()
            #expect(stats[0].servers.map(\.name) == ["w1", "w2", "w3"])
            #expect(stats[0].servers.map(\.weight) == [1, 4, 1])
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(restarted.listeners[0].address.port!)/work")
            request.method = .GET
            #expect(try await harness.client.execute(request, timeout: .seconds(5)).status == .ok)
            await restarted.shutdown(gracePeriod: .zero)
            try await group.shutdownGracefully()
        }
    }
}
