import FulcrumConfig
import Testing

/// `global.admin`.
@Suite struct AdminConfigTests {
    private static func withAdmin(_ admin: String) -> String {
        "global:\n  admin: \(admin)\n" + minimalYAML
    }

    @Test("admin: none by default; a listener with and without a token")
    func parsesAdmin() throws {
        #expect(try ConfigLoader.load(yaml: minimalYAML).global.admin == nil)
        let loopback = try ConfigLoader.load(yaml: Self.withAdmin("{ listen: \"127.0.0.1:9090\" }")).global.admin
        #expect(loopback == AdminConfig(listen: ListenAddress(host: "127.0.0.1", port: 9090)))
        #expect(loopback?.isLoopback == true)
        let remote = try ConfigLoader.load(yaml: Self.withAdmin("{ listen: \"0.0.0.0:9090\", token_env: FULCRUM_ADMIN_TOKEN }")).global.admin
        #expect(remote?.tokenEnvironmentVariable == "FULCRUM_ADMIN_TOKEN")
        #expect(remote?.isLoopback == false)
        #expect(try ConfigLoader.load(yaml: Self.withAdmin("{ listen: \"[::1]:9090\" }")).global.admin?.isLoopback == true)
        #expect(loopback?.configWriteback == false)
        let writing = try ConfigLoader.load(yaml: Self.withAdmin("{ listen: \"127.0.0.1:9090\", config_writeback: true }")).global.admin
        #expect(writing?.configWriteback == true)
        #expect(loadErrors(Self.withAdmin("{ listen: \"127.0.0.1:9090\", config_writeback: sometimes }")).count == 1)
    }

    @Test("one server entry loads as in a file (the admin API's POST), with errors relative to it")
    func loadsServer() throws {
        let server = try ConfigLoader.loadServer(yaml: #"{"name": "web3", "address": "10.0.0.7:8080", "weight": 2}"#, sourceName: "body")
        #expect(server.name == "web3")
        #expect(server.address == ServerAddress(host: "10.0.0.7", port: 8080))
        #expect(server.weight == 2)
        #expect(throws: ConfigErrors.self) { try ConfigLoader.loadServer(yaml: #"{"name": "x", "address": "nowhere"}"#, sourceName: "body") }
        do {
            _ = try ConfigLoader.loadServer(yaml: #"{"name": "x", "address": "h:1", "weight": 999, "colour": 1}"#, sourceName: "body")
            Issue.record("expected errors")
        } catch {
            #expect(error.errors.map(\.path).sorted() == ["colour", "weight"])
        }
    }

    @Test("an admin listener beyond loopback without a token, a missing listen and unknown keys are reported")
    func rejectsBadAdmin() {
        #expect(
            loadErrors(Self.withAdmin("{ listen: \"0.0.0.0:9090\" }")) == [
                "global.admin.listen (line 2): an admin listener beyond loopback needs a token (set token_env)"
            ]
        )
        #expect(
            loadErrors(Self.withAdmin("{ token_env: T, port: 9 }")) == [
                #"global.admin.port (line 2): unknown key "port"; allowed keys: listen, token_env, config_writeback"#,
                #"global.admin.listen (line 2): required key "listen" is missing"#,
            ]
        )
    }
}
