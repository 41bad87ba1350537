import FulcrumConfig
import FulcrumProxy
import Logging
import NIOCore
import NIOPosix
import Testing

/// A configuration the data plane cannot apply fails with an error naming the part at fault,
/// and leaves nothing listening.
@Suite("Startup")
struct StartupTests {
    private func config(listenPort: Int, server: String) throws -> Config {
        try ConfigLoader.load(
            yaml: """
                frontends:
                  - name: edge
                    listen: ["127.0.0.1:\(listenPort)"]
                    default_backend: app
                backends:
                  - name: app
                    servers:
                      - { name: s1, address: "\(server)" }
                """
        )
    }

    @Test("an unresolvable server name is reported with its backend and server")
    func unresolvableServer() async throws {
        let config = try config(listenPort: 18_402, server: "no-such-host.invalid:80")
        await #expect {
            _ = try await ProxyServer.start(config: config, group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"))
        } throws: { error in
            "\(error)".hasPrefix("backend app, server s1: cannot resolve no-such-host.invalid:80")
        }
    }

    @Test("an address already in use is reported with its frontend")
    func addressInUse() async throws {
        let occupier = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = occupier.localAddress!.port!
        let config = try config(listenPort: port, server: "127.0.0.1:9")
        await #expect {
            _ = try await ProxyServer.start(config: config, group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"))
        } throws: { error in
            "\(error)" == "frontend edge: cannot listen on 127.0.0.1:\(port) (Address already in use)"
        }
        try await occupier.close()
    }
}
