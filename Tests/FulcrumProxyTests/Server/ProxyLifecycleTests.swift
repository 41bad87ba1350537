import FulcrumConfig
import FulcrumProxy
import FulcrumWorker
import Logging
import ServiceLifecycle
import Testing

/// `ProxyServer` as a swift-service-lifecycle service: it serves until the group shuts down
/// gracefully, then drains, and refuses reloads from then on.
@Suite("Proxy lifecycle")
struct ProxyLifecycleTests {
    @Test("in a ServiceGroup: serves, drains on a graceful shutdown, then refuses reloads")
    func serviceGroup() async throws {
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: { simpleConfig($0) }) { harness in
            #expect(harness.proxy.lifecycleState == .running)
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: [harness.proxy],
                    logger: Logger(label: "lifecycle-test")
                )
            )
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                #expect(try await harness.send("/work").status == .ok)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            #expect(harness.proxy.lifecycleState == .shutDown)
            #expect(harness.proxy.listeners.isEmpty)
            await #expect(throws: StartupError.self) {
                try await harness.proxy.reload(to: harness.proxy.config)
            }
            // A second shutdown (the harness's own) returns at once.
            await harness.proxy.shutdown(gracePeriod: .seconds(5))
        }
    }
}
