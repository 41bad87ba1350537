import Foundation
import FulcrumConfig
import FulcrumProxy
import FulcrumTestSupport
import FulcrumWorker
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import Testing

/// A TLS frontend with `acme`, against a real pebble: the certificate is obtained at start,
/// served by SNI, renewed before it expires, and kept when a renewal fails.
@Suite(
    "ACME on a TLS frontend, against a real pebble",
    .enabled(
        if: PebbleProcess.executable != nil && DnsmasqProcess.executable != nil && FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl"),
        "pebble, dnsmasq or openssl is not installed: skipped"
    ),
    .timeLimit(.minutes(3))
)
struct ACMEFrontendTests {
    /// Log messages at warning and above.
    private final class Messages: LogHandler, @unchecked Sendable {
        let lines = NIOLockedValueBox<[String]>([])
        var logLevel: Logger.Level = .info
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            lines.withLockedValue { $0.append("\(event.message) \(fields)") }
        }
    }

    /// The serial number of the certificate `port` serves for `name` by SNI, as openssl reads it.
    private static func servedSerial(port: Int, name: String) throws -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = [
            "-c",
            "timeout 10 openssl s_client -connect 127.0.0.1:\(port) -servername \(name) </dev/null 2>/dev/null | openssl x509 -noout -serial -ext subjectAltName 2>/dev/null",
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard text.contains("DNS:\(name)"), let line = text.split(separator: "\n").first(where: { $0.hasPrefix("serial=") }) else { return nil }
        return String(line.dropFirst("serial=".count))
    }

    /// Probes every second (each probe runs two openssl processes), on NIO's thread pool for blocking work: a probe runs and waits for
    /// openssl, which must not hold one of the few threads every test's tasks share.
    private func waitFor<Value: Sendable>(_ what: String, seconds: Int, _ probe: @escaping @Sendable () throws -> Value?) async throws -> Value {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if let value = try await NIOThreadPool.singleton.runIfActive(probe) { return value }
            try await Task.sleep(for: .seconds(1))
        }
        throw RedisServerError("\(what) did not happen within \(seconds) s")
    }

    @Test("Obtained at start and served by SNI; renewed a third before expiry; a failed renewal keeps the certificate")
    func obtainsRenewsAndKeeps() async throws {
        let httpPort = try await freeLoopbackPort()
        let httpsPort = try await freeLoopbackPort()
        let dns = try await DnsmasqProcess.start(hosts: ["127.0.0.1 www.fulcrum.test"])
        defer { dns.stop() }
        // Certificates valid for 24 s: renewed at 16 s.
        let pebble = try await PebbleProcess.start(httpPort: httpPort, dnsServer: dns.port, validity: .seconds(24))
        defer { pebble.stop() }
        let certificates = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-acme-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: certificates, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: certificates) }
        let worker = try await WorkerServer.start(name: "w1", group: MultiThreadedEventLoopGroup.singleton)
        let config = try ConfigLoader.load(
            yaml: """
                frontends:
                  - name: plain
                    listen: "127.0.0.1:\(httpPort)"
                    redirect_to_https: \(httpsPort)
                    default_backend: app
                  - name: secure
                    listen: "127.0.0.1:\(httpsPort)"
                    default_backend: app
                    tls:
                      certificates: \(certificates)
                      acme: { directory: "\(pebble.directoryURL)", email: ops@fulcrum.test, domains: [www.fulcrum.test], ca: \(pebble.caFile) }
                backends:
                  - name: app
                    servers: [{ name: w1, address: "127.0.0.1:\(worker.port)" }]
                """
        )
        let messages = Messages()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let proxy = try await ProxyServer.start(
            config: config,
            group: group,
            logger: Logger(label: "acme") { _ in messages },
            certificatePollInterval: .milliseconds(200)
        )
        do {
            // Issued through HTTP-01 on the plain frontend (which redirects everything else).
            let first = try await waitFor("the first certificate", seconds: 30) { try Self.servedSerial(port: httpsPort, name: "www.fulcrum.test") }
            #expect(FileManager.default.fileExists(atPath: "\(certificates)/acme-www.fulcrum.test.pem"))
            #expect(FileManager.default.fileExists(atPath: "\(certificates)/.acme-account.key"))
            // Renewed once two thirds of its 24 s have passed, and served without a restart.
            let second = try await waitFor("the renewal", seconds: 40) {
                try Self.servedSerial(port: httpsPort, name: "www.fulcrum.test").flatMap { $0 == first ? nil : $0 }
            }
            // The CA gone: the next renewal fails, is logged, and the certificate in place stays.
            pebble.stop()
            _ = try await waitFor("the failed renewal", seconds: 40) {
                messages.lines.withLockedValue { $0.contains { $0.hasPrefix("ACME: no certificate obtained") } } ? true : nil
            }
            let last = try await NIOThreadPool.singleton.runIfActive { try Self.servedSerial(port: httpsPort, name: "www.fulcrum.test") }
            #expect(last == second)
        } catch {
            Issue.record(error, "log: \(messages.lines.withLockedValue { $0 }.suffix(8))")
        }
        await proxy.shutdown(gracePeriod: .seconds(1))
        try await group.shutdownGracefully()
        try await worker.shutdown()
    }
}
