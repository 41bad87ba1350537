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
    }

    @Test("an admin listener beyond loopback without a token, a missing listen and unknown keys are reported")
    func rejectsBadAdmin() {
        #expect(loadErrors(Self.withAdmin("{ listen: \"0.0.0.0:9090\" }")) == [
            "global.admin.listen (line 2): an admin listener beyond loopback needs a token (set token_env)",
        ])
        #expect(loadErrors(Self.withAdmin("{ token_env: T, port: 9 }")) == [
            #"global.admin.port (line 2): unknown key "port"; allowed keys: listen, token_env"#,
            #"global.admin.listen (line 2): required key "listen" is missing"#,
        ])
    }
}
