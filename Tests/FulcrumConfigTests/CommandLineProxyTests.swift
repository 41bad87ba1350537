import FulcrumConfig
import Testing

/// `fulcrum proxy`'s flags as a configuration, and the file `--print-config` writes.
@Suite("The one-line proxy")
struct CommandLineProxyTests {
    @Test("one frontend on --from, one backend over --to; :PORT and PORT listen everywhere; http:// is dropped")
    func config() throws {
        let options = CommandLineProxy.Options(
            from: ":8080",
            to: ["127.0.0.1:9001", "http://localhost:9002/"],
            algorithm: "least_connections",
            health: "/health"
        )
        let config = try CommandLineProxy.config(options)
        #expect(config.frontends.map(\.name) == ["proxy"])
        #expect(config.frontends[0].listen == [ListenAddress(host: "0.0.0.0", port: 8080)])
        #expect(config.frontends[0].defaultBackend == "servers")
        let backend = config.backends[0]
        #expect(backend.algorithm == .leastConnections)
        #expect(backend.servers.map(\.name) == ["s1", "s2"])
        #expect(backend.servers.map(\.address.description) == ["127.0.0.1:9001", "localhost:9002"])
        #expect(backend.healthCheck?.path == "/health")
        // The printed file is the same configuration.
        #expect(try ConfigLoader.load(yaml: CommandLineProxy.yaml(options)) == config)

        let plain = try CommandLineProxy.config(CommandLineProxy.Options(from: "9000", to: ["10.0.0.1:80"]))
        #expect(plain.frontends[0].listen == [ListenAddress(host: "0.0.0.0", port: 9000)])
        #expect(plain.backends[0].algorithm == .roundRobin && plain.backends[0].healthCheck == nil)
        let local = try CommandLineProxy.config(CommandLineProxy.Options(from: "127.0.0.1:9000", to: ["10.0.0.1:80"]))
        #expect(local.frontends[0].listen == [ListenAddress(host: "127.0.0.1", port: 9000)])
    }

    @Test("bad flags get the file's checks: an unknown algorithm, an address without a port, a quote that would break the YAML")
    func errors() {
        func problems(_ options: CommandLineProxy.Options) -> [String] {
            do {
                _ = try CommandLineProxy.config(options)
                return []
            } catch {
                return error.errors.map(\.message)
            }
        }
        #expect(problems(.init(from: ":8080", to: ["127.0.0.1:9001"], algorithm: "fastest")).first?.contains("unknown algorithm \"fastest\"") == true)
        #expect(!problems(.init(from: ":8080", to: ["127.0.0.1"])).isEmpty)
        #expect(!problems(.init(from: ":8080", to: ["a\"b: c:1"])).isEmpty)
        #expect(!problems(.init(from: ":8080", to: ["127.0.0.1:9001"], health: "no-slash")).isEmpty)
    }
}
