import Crypto
import Foundation
import FulcrumBalancing
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Testing
import X509

/// HTTPS backends: verification against a CA file (on by default), the explicit opt-out,
/// SNI, and client certificates. The servers are TLS servers started here with certificates
/// generated here.
@Suite("TLS backends", .serialized)
struct TLSBackendTests {
    private static func config(port: Int, tls: String) -> String {
        simpleConfig([port], retries: 0).replacingOccurrences(
            of: "address: \"127.0.0.1:\(port)\" }",
            with: "address: \"127.0.0.1:\(port)\", tls: \(tls) }"
        )
    }

    @Test("a server verified against the configured CA is proxied; one from another CA gets 502 and a log line")
    func verification() async throws {
        let servers = try await TrustedAndUntrusted.start()
        defer { servers.close() }
        let (caFile, trusted, untrusted) = (servers.caFile, servers.trusted, servers.untrusted)
        let verified = "{ ca: \"\(caFile.path)\", sni: api.internal }"
        try await withProxy(workers: [], yaml: { _ in Self.config(port: trusted.port, tls: verified) }) { harness async throws in
            for _ in 0..<3 {
                let response = try await harness.send("/hello")
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "tls ok /hello sni=api.internal")
            }
        }
        let logs = LogCapture()
        try await withProxy(workers: [], logs: logs, yaml: { _ in Self.config(port: untrusted.port, tls: verified) }) { harness async throws in
            let response = try await harness.send("/hello")
            #expect(response.status == .badGateway)
            #expect(
                logs.messages.contains { $0.hasPrefix("TLS to server failed: TLS handshake failed") && $0.contains("server=w1") },
                "\(logs.messages)"
            )
        }
        // The wrong name fails verification too.
        let wrongName = "{ ca: \"\(caFile.path)\", sni: other.internal }"
        try await withProxy(workers: [], yaml: { _ in Self.config(port: trusted.port, tls: wrongName) }) { harness async throws in
            #expect(try await harness.send("/hello").status == .badGateway)
        }
        // Only an explicit opt-out skips verification.
        try await withProxy(workers: [], yaml: { _ in Self.config(port: untrusted.port, tls: "{ verify: false }") }) { harness async throws in
            #expect(try await harness.send("/hello").status == .ok)
        }
    }

    @Test("health checks of HTTPS servers go over TLS, verified like their traffic")
    func healthChecksOverTLS() async throws {
        let servers = try await TrustedAndUntrusted.start()
        defer { servers.close() }
        let (caFile, trusted, untrusted) = (servers.caFile, servers.trusted, servers.untrusted)
        let tls = "tls: { ca: \"\(caFile.path)\", sni: api.internal }"
        let yaml = simpleConfig([trusted.port, untrusted.port], retries: 0)
            .replacingOccurrences(of: "address: \"127.0.0.1:\(trusted.port)\" }", with: "address: \"127.0.0.1:\(trusted.port)\", \(tls) }")
            .replacingOccurrences(of: "address: \"127.0.0.1:\(untrusted.port)\" }", with: "address: \"127.0.0.1:\(untrusted.port)\", \(tls) }")
            .replacingOccurrences(
                of: "    retries:",
                with: "    health_check: { path: /health, interval: 100ms, timeout: 500ms, rise: 1, fall: 2 }\n    retries:"
            )
        try await withProxy(workers: [], yaml: { _ in yaml }) { harness async throws in
            try await waitUntil(timeout: .seconds(15)) {
                try await harness.proxy.stats()[0].servers.map(\.state) == [.up, .down]
            }
            // And the trusted one keeps passing.
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await harness.proxy.stats()[0].servers.map(\.state) == [.up, .down])
            #expect(try await harness.send("/hello").status == .ok)
        }
    }

    @Test("a server that requires a client certificate gets the configured one (mutual TLS)")
    func mutualTLS() async throws {
        let authority = try TestCertificateAuthority()
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let caFile = directory.appendingPathComponent("ca.pem")
        try authority.certificate.serializeAsPEM().pemString.write(to: caFile, atomically: true, encoding: .utf8)
        let clientFile = directory.appendingPathComponent("client.pem")
        try pemFile(try authority.issue(commonName: "fulcrum", names: ["fulcrum.internal"]))
            .write(to: clientFile, atomically: true, encoding: .utf8)

        let server = try await TLSTestServer.start(
            certificate: try authority.issue(commonName: "api", names: ["api.internal"]),
            requireClientCertificateFrom: authority
        )
        defer { Task { try? await server.close() } }
        let withClient = "{ ca: \"\(caFile.path)\", sni: api.internal, client_certificate: \"\(clientFile.path)\" }"
        try await withProxy(workers: [], yaml: { _ in Self.config(port: server.port, tls: withClient) }) { harness async throws in
            #expect(try await harness.send("/hello").status == .ok)
        }
        let withoutClient = "{ ca: \"\(caFile.path)\", sni: api.internal }"
        try await withProxy(workers: [], yaml: { _ in Self.config(port: server.port, tls: withoutClient) }) { harness async throws in
            #expect(try await harness.send("/hello").status == .badGateway)
        }
    }
}

/// Two HTTPS servers for `api.internal`: one with a certificate from the CA in `caFile`, one
/// from another CA.
private struct TrustedAndUntrusted {
    let directory: URL
    let caFile: URL
    let trusted: TLSTestServer
    let untrusted: TLSTestServer

    static func start() async throws -> TrustedAndUntrusted {
        let authority = try TestCertificateAuthority()
        let stranger = try TestCertificateAuthority(name: "Someone Else")
        let directory = try makeTemporaryDirectory()
        let caFile = directory.appendingPathComponent("ca.pem")
        try authority.certificate.serializeAsPEM().pemString.write(to: caFile, atomically: true, encoding: .utf8)
        return TrustedAndUntrusted(
            directory: directory,
            caFile: caFile,
            trusted: try await TLSTestServer.start(certificate: try authority.issue(commonName: "api", names: ["api.internal"])),
            untrusted: try await TLSTestServer.start(certificate: try stranger.issue(commonName: "api", names: ["api.internal"]))
        )
    }

    func close() {
        try? FileManager.default.removeItem(at: directory)
        Task { [trusted, untrusted] in
            try? await trusted.close()
            try? await untrusted.close()
        }
    }
}

/// An HTTPS server answering every request with `tls ok PATH sni=NAME` (the name the
/// latest handshake asked for), keep-alive.
final class TLSTestServer: Sendable {
    let port: Int
    private let channel: any Channel

    private init(channel: any Channel) {
        self.channel = channel
        self.port = channel.localAddress!.port!
    }

    static func start(
        certificate issued: (certificate: Certificate, key: P256.Signing.PrivateKey),
        requireClientCertificateFrom clientAuthority: TestCertificateAuthority? = nil
    ) async throws -> TLSTestServer {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: try issued.certificate.serializeAsPEM().derBytes, format: .der))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(issued.key.derRepresentation), format: .der))
        )
        if let clientAuthority {
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = .certificates([try clientAuthority.nioCertificate])
        }
        let lastServerName = NIOLockedValueBox<String?>(nil)
        configuration.sslContextCallback = { values, promise in
            lastServerName.withLockedValue { $0 = values.serverHostname }
            promise.succeed(.noChanges)
        }
        let context = try NIOSSLContext(configuration: configuration)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let tls = NIOSSLServerHandler(context: context)
                    try channel.pipeline.syncOperations.addHandler(tls)
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Responder(lastServerName: lastServerName))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return TLSTestServer(channel: channel)
    }

    func close() async throws {
        try await channel.close()
    }

    private final class Responder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        private let lastServerName: NIOLockedValueBox<String?>
        private var path = ""

        init(lastServerName: NIOLockedValueBox<String?>) {
            self.lastServerName = lastServerName
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                path = head.uri
            case .body:
                break
            case .end:
                let sni = lastServerName.withLockedValue { $0 }
                var body = context.channel.allocator.buffer(capacity: 64)
                body.writeString("tls ok \(path) sni=\(sni ?? "none")")
                var headers = HTTPHeaders()
                headers.add(name: "Content-Length", value: "\(body.readableBytes)")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
