import AsyncHTTPClient
import Foundation
import FulcrumWorker
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Testing
import X509

@testable import FulcrumProxy

/// HTTPS frontends: certificates from a directory chosen by SNI, reloaded when files change,
/// bad files skipped; and the plain-HTTP redirect to HTTPS. Certificates are generated here.
@Suite("TLS frontends", .serialized)
struct TLSFrontendTests {
    private static func tlsConfig(_ ports: [Int], directory: URL, extra: String = "") -> String {
        simpleConfig(ports, frontendExtra: "    tls: { certificates: \"\(directory.path)\"\(extra) }")
    }

    @Test("SNI picks the certificate: exact name, wildcard, and the default for unknown names or no SNI")
    func sniSelection() async throws {
        let authority = try TestCertificateAuthority()
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try pemFile(try authority.issue(commonName: "a.test", names: ["a.test"]))
            .write(to: directory.appendingPathComponent("a.pem"), atomically: true, encoding: .utf8)
        let wildcard = try authority.issue(commonName: "b wildcard", names: ["*.b.test"])
        try wildcard.certificate.serializeAsPEM().pemString
            .write(to: directory.appendingPathComponent("b.crt"), atomically: true, encoding: .utf8)
        try wildcard.key.pemRepresentation
            .write(to: directory.appendingPathComponent("b.key"), atomically: true, encoding: .utf8)
        try pemFile(try authority.issue(commonName: "c.test", names: []))  // CN only
            .write(to: directory.appendingPathComponent("c.pem"), atomically: true, encoding: .utf8)

        let yaml = { Self.tlsConfig($0, directory: directory, extra: ", default_certificate: c.test") }
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: yaml) { harness async throws in
            #expect(try await servedCertificate(port: harness.port, serverName: "a.test").commonName == "a.test")
            #expect(try await servedCertificate(port: harness.port, serverName: "A.TEST").commonName == "a.test")
            #expect(try await servedCertificate(port: harness.port, serverName: "x.b.test").commonName == "b wildcard")
            // A wildcard covers one label only.
            #expect(try await servedCertificate(port: harness.port, serverName: "y.x.b.test").commonName == "c.test")
            #expect(try await servedCertificate(port: harness.port, serverName: "b.test").commonName == "c.test")
            #expect(try await servedCertificate(port: harness.port, serverName: "unknown.test").commonName == "c.test")
            #expect(try await servedCertificate(port: harness.port, serverName: nil).commonName == "c.test")
        }
    }

    @Test("the hello is read across segments; bytes that are not a hello get no HTTP; acme-tls/1 alone, unchecked, gets nothing")
    func helloReading() async throws {
        let authority = try TestCertificateAuthority()
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try pemFile(try authority.issue(commonName: "a.test", names: ["a.test"]))
            .write(to: directory.appendingPathComponent("a.pem"), atomically: true, encoding: .utf8)
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: { Self.tlsConfig($0, directory: directory) }) { harness in
            // A hello in three segments: the server's hello answers once the last arrives.
            var hello = try ClientHelloTests.clientHello(serverName: "a.test", protocols: ["http/1.1"])
            let split = try await HeldConnection.open(port: harness.port)
            for length in [3, 40, hello.readableBytes - 43] {
                try await split.send(bytes: hello.readSlice(length: length)!)
                try await Task.sleep(for: .milliseconds(100))
                if hello.readableBytes > 0 { #expect(split.text.isEmpty) }
            }
            try await waitUntil(timeout: .seconds(5)) { split.text.utf8.first == 22 }
            await split.close()
            // Plain HTTP on the TLS port: a failed handshake and a close, never an HTTP answer.
            let plain = try await HeldConnection.open(port: harness.port)
            try await plain.sendRequest()
            try await waitUntil(timeout: .seconds(5)) { plain.closedByServer }
            #expect(!plain.text.hasPrefix("HTTP"))
            // A CA's TLS-ALPN-01 check when none is under way: closed without a certificate.
            await #expect(throws: (any Error).self) {
                try await servedCertificate(port: harness.port, serverName: "a.test", protocols: ["acme-tls/1"])
            }
            // acme-tls/1 among others is not a check: the site's certificate.
            let mixed = try await servedCertificate(port: harness.port, serverName: "a.test", protocols: ["h2", "acme-tls/1"])
            #expect(mixed.commonName == "a.test")
        }
    }

    @Test("an HTTPS request is proxied with X-Forwarded-Proto: https, verified against the test CA")
    func httpsRequest() async throws {
        let authority = try TestCertificateAuthority()
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try pemFile(try authority.issue(commonName: "localhost", names: ["localhost"]))
            .write(to: directory.appendingPathComponent("localhost.pem"), atomically: true, encoding: .utf8)
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: { Self.tlsConfig($0, directory: directory) }) {
            harness async throws in
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .certificates([try authority.nioCertificate])
            var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
            configuration.httpVersion = .http1Only
            let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
            do {
                for _ in 0..<3 {  // keep-alive over TLS
                    let response = try await client.execute(
                        HTTPClientRequest(url: "https://localhost:\(harness.port)/echo"),
                        timeout: .seconds(10)
                    )
                    #expect(response.status == .ok)
                    let body = try await response.body.collect(upTo: 1 << 20)
                    let json = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
                    let headers = (json?["headers"] as? [[String]]) ?? []
                    #expect(headers.first { $0.first?.lowercased() == "x-forwarded-proto" }?.last == "https")
                }
            } catch {
                try await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }

    @Test("replacing, adding and removing files changes what new connections get, without a restart")
    func reloadsOnChange() async throws {
        let authority = try TestCertificateAuthority()
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("a.pem")
        try pemFile(try authority.issue(commonName: "first", names: ["a.test"])).write(to: file, atomically: true, encoding: .utf8)
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: { Self.tlsConfig($0, directory: directory) }) {
            harness async throws in
            #expect(try await servedCertificate(port: harness.port, serverName: "a.test").commonName == "first")

            try pemFile(try authority.issue(commonName: "second", names: ["a.test"])).write(to: file, atomically: true, encoding: .utf8)
            try await waitUntil(timeout: .seconds(15)) {
                try await servedCertificate(port: harness.port, serverName: "a.test").commonName == "second"
            }

            let added = directory.appendingPathComponent("d.pem")
            try pemFile(try authority.issue(commonName: "d", names: ["d.test"])).write(to: added, atomically: true, encoding: .utf8)
            try await waitUntil(timeout: .seconds(15)) {
                try await servedCertificate(port: harness.port, serverName: "d.test").commonName == "d"
            }
            try FileManager.default.removeItem(at: added)
            try await waitUntil(timeout: .seconds(15)) {
                try await servedCertificate(port: harness.port, serverName: "d.test").commonName == "second"
            }
        }
    }

    @Test("bad files are skipped with their reason; the good ones load")
    func badFilesAreSkipped() throws {
        let authority = try TestCertificateAuthority()
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        func write(_ text: String, _ name: String) throws {
            try text.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        try write(try pemFile(try authority.issue(commonName: "good", names: ["good.test"])), "good.pem")
        let one = try authority.issue(commonName: "mismatch", names: ["m.test"])
        let other = try authority.issue(commonName: "other", names: ["o.test"])
        try write(try one.certificate.serializeAsPEM().pemString + "\n" + other.key.pemRepresentation, "mismatch.pem")
        try write(try pemFile(try authority.issue(commonName: "old", names: ["old.test"], notValidAfter: Date() - 60)), "expired.pem")
        try write(try one.certificate.serializeAsPEM().pemString, "nokey.pem")
        try write(try one.certificate.serializeAsPEM().pemString, "lonely.crt")
        try write("not a certificate at all\n", "garbage.pem")

        let (table, problems) = CertificateLoader.load(.init(certificatesDirectory: directory.path))
        #expect(table.certificates.map(\.file) == ["good.pem"])
        let reasons = Dictionary(uniqueKeysWithValues: problems.map { ($0.file, $0.reason) })
        #expect(reasons["mismatch.pem"] == "the private key does not match the certificate")
        #expect(reasons["expired.pem"]?.hasPrefix("the certificate expired on ") == true)
        #expect(reasons["nokey.pem"] == "no private key in nokey.pem")
        #expect(reasons["lonely.crt"] == "no lonely.key beside it")
        #expect(reasons["garbage.pem"] != nil)
        #expect(problems.count == 5, "\(problems)")
    }

    @Test("redirect_to_https answers 308 to the same host and path on the HTTPS port")
    func redirectToHTTPS() async throws {
        let yaml = { (ports: [Int]) in simpleConfig(ports, frontendExtra: "    redirect_to_https: 8443") }
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: yaml) { harness async throws in
            let response = try await harness.send("/a/b?c=1", headers: [("Host", "example.com:8080")])
            #expect(response.status == .permanentRedirect)
            #expect(response.headers.first(name: "Location") == "https://example.com:8443/a/b?c=1")
            #expect(harness.workers[0].requestsServed == 0)
        }
    }
}

/// What a TLS client asking for `serverName` (nil: no SNI), and offering `protocols`, is
/// served by the proxy.
private func servedCertificate(port: Int, serverName: String?, protocols: [String] = []) async throws -> (commonName: String, names: [String]) {
    var configuration = TLSConfiguration.makeClientConfiguration()
    configuration.certificateVerification = .none
    configuration.applicationProtocols = protocols
    let context = try NIOSSLContext(configuration: configuration)
    let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
    let served = eventLoop.makePromise(of: NIOSSLCertificate.self)
    let channel = try await ClientBootstrap(group: eventLoop)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: serverName))
                try channel.pipeline.syncOperations.addHandler(HandshakeWatcher(served: served))
            }
        }
        .connect(host: "127.0.0.1", port: port)
        .get()
    defer { channel.close(promise: nil) }
    let certificate = try Certificate(derEncoded: try await served.futureResult.get().toDERBytes())
    var commonName = ""
    for relativeName in certificate.subject {
        for attribute in relativeName where attribute.type == .RDNAttributeType.commonName {
            commonName = String(attribute.value) ?? ""
        }
    }
    return (commonName, CertificateLoader.serverNames(of: certificate))
}

/// Reports the server's certificate once the handshake completed.
private final class HandshakeWatcher: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let served: EventLoopPromise<NIOSSLCertificate>

    init(served: EventLoopPromise<NIOSSLCertificate>) {
        self.served = served
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            do {
                let handler = try context.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self)
                if let certificate = handler.peerCertificate {
                    served.succeed(certificate)
                } else {
                    served.fail(ChannelError.ioOnClosedChannel)
                }
            } catch {
                served.fail(error)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        served.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        served.fail(ChannelError.eof)
        context.fireChannelInactive()
    }
}
