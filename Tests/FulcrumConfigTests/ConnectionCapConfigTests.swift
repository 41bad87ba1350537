import FulcrumConfig
import Testing

/// `global.max_connections` and `frontends[].max_connections`.
@Suite("Connection caps in the configuration")
struct ConnectionCapConfigTests {
    @Test("connection caps: a positive number, or auto for the global one")
    func connectionCaps() throws {
        let yaml = """
            global:
              max_connections: 0
            frontends:
              - name: public
                listen: "127.0.0.1:8080"
                max_connections: auto
                default_backend: web
              - name: other
                listen: "127.0.0.1:8081"
                max_connections: -5
                default_backend: web
            backends:
              - name: web
                servers: [{ name: web1, address: "127.0.0.1:9001" }]
            """
        #expect(
            loadErrors(yaml) == [
                #"global.max_connections (line 2): must be "auto" or a positive number of connections, found "0""#,
                #"frontends[0].max_connections (line 6): expected an integer, found "auto""#,
                "frontends[1].max_connections (line 10): must be 1 or more, found -5",
            ]
        )
        let capped = try ConfigLoader.load(yaml: "global: { max_connections: 300 }\n" + minimalYAML)
        #expect(capped.global.maxConnections == .fixed(300))
        #expect(capped.frontends[0].maxConnections == nil)
        #expect(try ConfigLoader.load(yaml: minimalYAML).global.maxConnections == .auto)
    }

    @Test("max_connections: auto is half the descriptors left after a reserve")
    func automaticConnectionCap() {
        #expect(ConnectionCap.automatic(descriptorLimit: 1024) == 462)
        #expect(ConnectionCap.automatic(descriptorLimit: 64) == 24)
        #expect(ConnectionCap.automatic(descriptorLimit: 1_048_576) == 524_238)
        #expect(ConnectionCap.automatic(descriptorLimit: 4) == 1)
    }
}
