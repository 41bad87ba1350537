import Foundation
import FulcrumAdmin
import FulcrumConfig
import FulcrumProxy
import FulcrumWorker
import Logging
import Testing
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// The file triggers of a reload: the configuration file changing, and SIGHUP.
@Suite("Reload triggers", .serialized)
struct ConfigReloaderTests {
    /// A proxy over three workers whose configuration (naming w1 and w2) is in a file, and a
    /// reloader for that file.
    private static func withFile(
        _ body: (ProxyHarness, ConfigReloader, String) async throws -> Void
    ) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-reload-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("fulcrum.yaml").path
        let workers = Array(repeating: WorkerBehaviour(delayMilliseconds: 0), count: 3)
        try await withProxy(workers: workers, yaml: { simpleConfig(Array($0.prefix(2))) }) { harness in
            try ConfigRenderer.yaml(harness.proxy.config).write(toFile: file, atomically: true, encoding: .utf8)
            var logger = Logger(label: "fulcrum.reload.test")
            logger.logLevel = .critical
            let reloader = ConfigReloader(proxy: harness.proxy, path: file, writeback: false, logger: logger)
            try await body(harness, reloader, file)
        }
    }

    /// The harness's configuration with w3 added, as the file would be edited.
    private static func withThirdServer(_ harness: ProxyHarness) -> String {
        var config = harness.proxy.config
        config.backends[0].servers.append(
            ServerConfig(
                name: "w3",
                address: ServerAddress(host: "127.0.0.1", port: harness.workers[2].port)
            )
        )
        return ConfigRenderer.yaml(config)
    }

    @Test("a changed file is reloaded; an invalid one is refused and the running configuration stays")
    func fileWatch() async throws {
        try await Self.withFile { harness, reloader, file in
            let watching = Task { await reloader.watchFile(every: .milliseconds(50)) }
            defer { watching.cancel() }

            try "backends: [\n".write(toFile: file, atomically: true, encoding: .utf8)
            try await waitUntil(timeout: .seconds(15)) { reloader.reloadCounts.failed == 1 }
            #expect(harness.proxy.config.backends[0].servers.count == 2)
            #expect(try await harness.send("/work").status == .ok)

            try Self.withThirdServer(harness).write(toFile: file, atomically: true, encoding: .utf8)
            try await waitUntil(timeout: .seconds(15)) { harness.proxy.config.backends[0].servers.count == 3 }
            #expect(reloader.reloadCounts == ConfigReloader.Counts(succeeded: 1, failed: 1))
            var seen = Set<String>()
            for _ in 0..<6 { seen.insert(try await harness.send("/work").worker ?? "?") }
            #expect(seen == ["w1", "w2", "w3"])
        }
    }

    @Test("SIGHUP reloads the file")
    func hangUp() async throws {
        try await Self.withFile { harness, reloader, file in
            // Trapping is in place once the sequence exists.
            let signals = await UnixSignalsSequence(trapping: .sighup)
            let listening = Task { await reloader.reloadFile(on: signals) }
            defer { listening.cancel() }

            try Self.withThirdServer(harness).write(toFile: file, atomically: true, encoding: .utf8)
            // Without a signal (and no watcher), nothing happens.
            try await Task.sleep(for: .milliseconds(200))
            #expect(harness.proxy.config.backends[0].servers.count == 2)

            kill(getpid(), SIGHUP)
            try await waitUntil(timeout: .seconds(15)) { harness.proxy.config.backends[0].servers.count == 3 }
            #expect(reloader.reloadCounts.succeeded == 1)
        }
    }
}
