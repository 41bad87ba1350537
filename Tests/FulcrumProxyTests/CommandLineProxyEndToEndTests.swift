import FulcrumConfig
import FulcrumWorker
import Testing

/// The configuration `fulcrum proxy` runs, running: requests reach every `--to` server.
@Suite("The one-line proxy, running")
struct CommandLineProxyEndToEndTests {
    @Test("fulcrum proxy's configuration balances over its servers and checks their health")
    func balances() async throws {
        let workers = Array(repeating: WorkerBehaviour(delayMilliseconds: 0), count: 2)
        let yaml: ([Int]) -> String = { ports in
            CommandLineProxy.yaml(
                CommandLineProxy.Options(from: "127.0.0.1:8080", to: ports.map { "127.0.0.1:\($0)" }, health: "/health")
            )
        }
        try await withProxy(workers: workers, yaml: yaml) { harness in
            let served = try await harness.workersServing(requests: 4)
            #expect(Set(served) == ["w1", "w2"])
            #expect(harness.proxy.config.backends[0].healthCheck?.path == "/health")
        }
    }
}
