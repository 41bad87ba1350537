import Foundation
import FulcrumConfig
import FulcrumProxy
import FulcrumTestSupport
import FulcrumWorker
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import Testing
import X509

/// A TLS frontend with `acme`, against a real pebble: the certificate is obtained at start
/// (by HTTP-01 or TLS-ALPN-01), served by SNI, renewed before it expires, and kept when a
/// renewal fails.
@Suite(
    "ACME on a TLS frontend, against a real pebble",
    .enabled(
        if: PebbleProcess.executable != nil && DnsmasqProcess.executable != nil,
        "pebble or dnsmasq is not installed: skipped"
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

    /// The serial number of the certificate `port` serves for `name` by SNI, when it covers
    /// `name`; nil when the handshake gives none. Read in this process by a NIOSSL client that
    /// keeps the chain it is shown (no openssl process: children of a test run can keep other
    /// tests' sockets open).
    private static func servedSerial(port: Int, name: String) async throws -> String? {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        let context = try NIOSSLContext(configuration: tls)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let shown = loop.makePromise(of: NIOSSLCertificate?.self)
        let timeout = loop.scheduleTask(in: .seconds(5)) { shown.succeed(nil) }
        defer { timeout.cancel() }
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let handler = try NIOSSLClientHandler(context: context, serverHostname: name) { chain, verdict in
                            shown.succeed(chain.first)
                            verdict.succeed(.certificateVerified)
                        }
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .connect(host: "127.0.0.1", port: port).get()
        } catch {
            shown.succeed(nil)
            return nil
        }
        // A connection the server closes without a certificate shows none.
        channel.closeFuture.whenComplete { _ in shown.succeed(nil) }
        let leaf = try await shown.futureResult.get()
        try? await channel.close()
        guard let leaf else { return nil }
        let certificate = try Certificate(derEncoded: try leaf.toDERBytes())
        let names = try certificate.extensions.subjectAlternativeNames.map { Array($0) } ?? []
        guard names.contains(.dnsName(name)) else { return nil }
        return "\(certificate.serialNumber)"
    }

    /// The proxy, on a loop of its own, its log kept; certificate files checked every 200 ms.
    private static func startProxy(_ config: Config) async throws -> (ProxyServer, MultiThreadedEventLoopGroup, Messages) {
        let messages = Messages()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let proxy = try await ProxyServer.start(
            config: config,
            group: group,
            logger: Logger(label: "acme") { _ in messages },
            certificatePollInterval: .milliseconds(200)
        )
        return (proxy, group, messages)
    }

    /// A new, empty certificate directory.
    private static func makeCertificateDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-acme-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    private func waitFor<Value: Sendable>(_ what: String, seconds: Int, _ probe: @Sendable () async throws -> Value?) async throws -> Value {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if let value = try await probe() { return value }
            try await Task.sleep(for: .milliseconds(250))
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
        let certificates = try Self.makeCertificateDirectory()
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
        let (proxy, group, messages) = try await Self.startProxy(config)
        do {
            // Issued through HTTP-01 on the plain frontend (which redirects everything else).
            let first = try await waitFor("the first certificate", seconds: 30) {
                try await Self.servedSerial(port: httpsPort, name: "www.fulcrum.test")
            }
            #expect(FileManager.default.fileExists(atPath: "\(certificates)/acme-www.fulcrum.test.pem"))
            #expect(FileManager.default.fileExists(atPath: "\(certificates)/.acme-account.key"))
            // Renewed once two thirds of its 24 s have passed, and served without a restart.
            let second = try await waitFor("the renewal", seconds: 40) {
                try await Self.servedSerial(port: httpsPort, name: "www.fulcrum.test").flatMap { $0 == first ? nil : $0 }
            }
            // The CA gone: the next renewal fails, is logged, and the certificate in place stays.
            pebble.stop()
            _ = try await waitFor("the failed renewal", seconds: 40) {
                messages.lines.withLockedValue { $0.contains { $0.hasPrefix("ACME: no certificate obtained") } } ? true : nil
            }
            #expect(try await Self.servedSerial(port: httpsPort, name: "www.fulcrum.test") == second)
        } catch {
            Issue.record(error, "log: \(messages.lines.withLockedValue { $0 }.suffix(8))")
        }
        await proxy.shutdown(gracePeriod: .seconds(1))
        try await group.shutdownGracefully()
        try await worker.shutdown()
    }

    @Test("TLS-ALPN-01: the TLS frontend answers the CA's check on its own port, with no plain HTTP frontend")
    func tlsALPN01() async throws {
        let httpsPort = try await freeLoopbackPort()
        let dns = try await DnsmasqProcess.start(hosts: ["127.0.0.1 alpn.fulcrum.test"])
        defer { dns.stop() }
        // Its HTTP-01 port has nothing on it: only TLS-ALPN-01 can pass.
        let pebble = try await PebbleProcess.start(httpPort: try await freeLoopbackPort(), tlsPort: httpsPort, dnsServer: dns.port)
        defer { pebble.stop() }
        let certificates = try Self.makeCertificateDirectory()
        defer { try? FileManager.default.removeItem(atPath: certificates) }
        let worker = try await WorkerServer.start(name: "w1", group: MultiThreadedEventLoopGroup.singleton)
        let config = try ConfigLoader.load(
            yaml: """
                frontends:
                  - name: secure
                    listen: "127.0.0.1:\(httpsPort)"
                    default_backend: app
                    tls:
                      certificates: \(certificates)
                      acme:
                        directory: "\(pebble.directoryURL)"
                        domains: [alpn.fulcrum.test]
                        challenge: tls-alpn-01
                        ca: \(pebble.caFile)
                backends:
                  - name: app
                    servers: [{ name: w1, address: "127.0.0.1:\(worker.port)" }]
                """
        )
        let (proxy, group, messages) = try await Self.startProxy(config)
        do {
            _ = try await waitFor("the certificate", seconds: 30) {
                try await Self.servedSerial(port: httpsPort, name: "alpn.fulcrum.test")
            }
            #expect(FileManager.default.fileExists(atPath: "\(certificates)/acme-alpn.fulcrum.test.pem"))
            #expect(messages.lines.withLockedValue { $0.allSatisfy { !$0.hasPrefix("ACME: no certificate obtained") } })
        } catch {
            Issue.record(error, "log: \(messages.lines.withLockedValue { $0 }.suffix(8))")
        }
        await proxy.shutdown(gracePeriod: .seconds(1))
        try await group.shutdownGracefully()
        try await worker.shutdown()
    }
}
