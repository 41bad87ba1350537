import Foundation
import FulcrumAdmin
import FulcrumBalancing
import FulcrumConfig
import FulcrumProxy
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

/// The admin API against a fake `ProxyControl`: Hummingbird's router test mode sends each
/// request straight to the router, so no socket opens and each test takes milliseconds. The
/// end-to-end tests (FulcrumProxyTests' `AdminAPITests`) run it on a real listener over a
/// real proxy.
@Suite("Admin routes over a fake proxy")
struct AdminRoutesTests {
    static let token = "test-token"

    /// Runs `body` with a client of an admin API over `proxy`.
    func withAdmin(
        _ proxy: FakeProxyControl,
        _ body: @Sendable (any TestClientProtocol) async throws -> Void
    ) async throws {
        let logger = Logger(label: "admin-test")
        let reloader = ConfigReloader(proxy: proxy, path: nil, writeback: false, logger: logger)
        let admin = AdminServer(
            config: AdminConfig(listen: ListenAddress(host: "127.0.0.1", port: 0), tokenEnvironmentVariable: nil),
            token: Self.token,
            proxy: proxy,
            reloader: reloader,
            logger: logger
        )
        try await admin.application.test(.router, body)
    }

    static func json(_ response: TestResponse) -> Any? {
        try? JSONSerialization.jsonObject(with: Data(buffer: response.body))
    }

    static var authorized: HTTPFields { [.authorization: "Bearer \(token)", .contentType: "application/json"] }

    @Test("reads: health, the backends with the proxy's numbers and pin state, one backend")
    func reads() async throws {
        try await withAdmin(try FakeProxyControl()) { client in
            let health = try await client.execute(uri: "/api/health", method: .get)
            #expect(health.status == .ok)
            let backends = try await client.execute(uri: "/api/backends", method: .get)
            #expect(backends.status == .ok)
            let list = try #require(Self.json(backends) as? [[String: Any]])
            #expect(list.map { $0["name"] as? String } == ["app", "static"])
            #expect(list.first?["algorithm"] as? String == "adaptive")
            #expect(list.first?["activeAlgorithm"] as? String == "peak_ewma")
            #expect(list.last?["pinned"] as? Bool == false)
            #expect(list.first?["pinned"] as? Bool == false)
            let servers = try #require(list.first?["servers"] as? [[String: Any]])
            #expect(servers.map { $0["inFlight"] as? Int } == [1, 1])
            let one = try await client.execute(uri: "/api/backends/static", method: .get)
            #expect((Self.json(one) as? [String: Any])?["name"] as? String == "static")
        }
    }

    @Test("unknown backends and servers are 404 problems")
    func notFound() async throws {
        try await withAdmin(try FakeProxyControl()) { client in
            let backend = try await client.execute(uri: "/api/backends/nope", method: .get)
            #expect(backend.status == .notFound)
            #expect(backend.headers[.contentType] == "application/problem+json")
            let server = try await client.execute(
                uri: "/api/backends/app/servers/nope",
                method: .patch,
                headers: Self.authorized,
                body: ByteBuffer(string: #"{"state": "drain"}"#)
            )
            #expect(server.status == .notFound)
        }
    }

    @Test("a change needs the token; with it, PATCH sets the server's state on the proxy")
    func serverState() async throws {
        let proxy = try FakeProxyControl()
        try await withAdmin(proxy) { client in
            let refused = try await client.execute(
                uri: "/api/backends/app/servers/w1",
                method: .patch,
                headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"state": "drain"}"#)
            )
            #expect(refused.status == .unauthorized)
            #expect(proxy.recorded.withLock { $0.states.isEmpty })
            let drained = try await client.execute(
                uri: "/api/backends/app/servers/w1",
                method: .patch,
                headers: Self.authorized,
                body: ByteBuffer(string: #"{"state": "drain"}"#)
            )
            #expect(drained.status == .ok)
            #expect((Self.json(drained) as? [String: Any])?["state"] as? String == "draining")
            #expect(proxy.recorded.withLock { $0.states["app/w1"] } == .draining)
            let unknown = try await client.execute(
                uri: "/api/backends/app/servers/w1",
                method: .patch,
                headers: Self.authorized,
                body: ByteBuffer(string: #"{"state": "asleep"}"#)
            )
            #expect(unknown.status == .unprocessableContent)
        }
    }

    @Test("PUT algorithm: switches and pins an adaptive backend, switches any other; DELETE returns it")
    func algorithm() async throws {
        let proxy = try FakeProxyControl()
        try await withAdmin(proxy) { client in
            let pinned = try await client.execute(
                uri: "/api/backends/app/algorithm",
                method: .put,
                headers: Self.authorized,
                body: ByteBuffer(string: #"{"algorithm": "least_connections", "pin": true}"#)
            )
            #expect(pinned.status == .ok)
            #expect((Self.json(pinned) as? [String: Any])?["pinned"] as? Bool == true)
            #expect(proxy.recorded.withLock { $0.selections.map(\.0) } == [.leastConnections])
            let unpinned = try await client.execute(
                uri: "/api/backends/app/algorithm",
                method: .put,
                headers: Self.authorized,
                body: ByteBuffer(string: #"{"pin": false}"#)
            )
            #expect((Self.json(unpinned) as? [String: Any])?["pinned"] as? Bool == false)
            let switched = try await client.execute(
                uri: "/api/backends/static/algorithm",
                method: .put,
                headers: Self.authorized,
                body: ByteBuffer(string: #"{"algorithm": "random"}"#)
            )
            #expect(switched.status == .ok)
            #expect((Self.json(switched) as? [String: Any])?["activeAlgorithm"] as? String == "random")
            #expect((Self.json(switched) as? [String: Any])?["pinned"] as? Bool == true)
            let reset = try await client.execute(uri: "/api/backends/static/algorithm", method: .delete, headers: Self.authorized)
            #expect((Self.json(reset) as? [String: Any])?["activeAlgorithm"] as? String == "round_robin")
            #expect(proxy.recorded.withLock { $0.choices.isEmpty })
        }
    }

    @Test("configuration changes go through a reload: a broken one is refused and applies nothing")
    func configurationChanges() async throws {
        let proxy = try FakeProxyControl()
        try await withAdmin(proxy) { client in
            let broken = try await client.execute(
                uri: "/api/config",
                method: .put,
                headers: Self.authorized,
                body: ByteBuffer(string: "backends: [ { name: app, algorithm: fastest } ]")
            )
            #expect(broken.status == .unprocessableContent)
            #expect(proxy.recorded.withLock { $0.reloads.isEmpty })

            let removed = try await client.execute(uri: "/api/backends/app/servers/w2", method: .delete, headers: Self.authorized)
            #expect(removed.status == .ok)
            let reloads = proxy.recorded.withLock { $0.reloads }
            #expect(reloads.count == 1)
            #expect(reloads.last?.backends.first?.servers.map(\.name) == ["w1"])

            let added = try await client.execute(
                uri: "/api/backends/static/servers",
                method: .post,
                headers: Self.authorized,
                body: ByteBuffer(string: #"{"name": "s2", "address": "127.0.0.1:9004"}"#)
            )
            #expect(added.status == .created)
            #expect(proxy.config.backends.last?.servers.map(\.name) == ["s1", "s2"])
        }
    }

    @Test("/metrics: the proxy's servers and connections in Prometheus text")
    func metrics() async throws {
        try await withAdmin(try FakeProxyControl()) { client in
            let metrics = try await client.execute(uri: "/metrics", method: .get)
            #expect(metrics.status == .ok)
            let text = String(buffer: metrics.body)
            #expect(text.contains(#"fulcrum_server_up{backend="app",server="w1"} 1"#))
            #expect(text.contains(#"fulcrum_server_in_flight{backend="static",server="s1"} 1"#))
        }
    }
}
