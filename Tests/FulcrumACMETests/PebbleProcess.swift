import AsyncHTTPClient
import Crypto
import Foundation
import FulcrumTestSupport
import NIOConcurrencyHelpers
import NIOSSL
import X509

/// A real pebble, Let's Encrypt's test CA, on loopback ports: its HTTPS under a CA the test
/// makes (`trustRoots`), names resolved by the `dnsServer` given (a dnsmasq), HTTP-01
/// challenges checked on `httpPort` and TLS-ALPN-01 ones on `tlsPort`.
final class PebbleProcess: @unchecked Sendable {
    static let executable: String? = ["/usr/bin/pebble", "/usr/local/bin/pebble"].first { FileManager.default.isExecutableFile(atPath: $0) }

    let directoryURL: String
    /// The CA that signed pebble's own HTTPS certificate, and its PEM file (`acme.ca`).
    let trustRoots: [NIOSSLCertificate]
    let caFile: String
    private let pid: NIOLockedValueBox<pid_t?>
    private let directory: URL

    /// - Parameters:
    ///   - httpPort: where it checks HTTP-01 challenges.
    ///   - tlsPort: where it checks TLS-ALPN-01 challenges (nil: a free port, for tests that
    ///     use HTTP-01).
    ///   - validity: how long the certificates it issues are valid (nil: pebble's default,
    ///     five years).
    ///
    /// Its own ports are ones free a moment ago, which another test may take first: then pebble
    /// exits, or another server answers there. Either way it starts again on fresh ones, up to
    /// three times; it is ready once its directory answers over its HTTPS.
    static func start(httpPort: Int, tlsPort: Int? = nil, dnsServer: Int, validity: Duration? = nil) async throws -> PebbleProcess {
        var attempt = 1
        while true {
            do {
                return try await launch(httpPort: httpPort, tlsPort: tlsPort, dnsServer: dnsServer, validity: validity)
            } catch is PebbleStartError where attempt < 3 {
                attempt += 1
            }
        }
    }

    private static func launch(httpPort: Int, tlsPort: Int?, dnsServer: Int, validity: Duration?) async throws -> PebbleProcess {
        guard let executable else { throw RedisServerError("pebble is not installed") }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-pebble-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // Pebble's HTTPS: a CA of the test's, and a certificate for localhost under it.
        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName { CommonName("Fulcrum test CA for pebble") }
        let now = Date()
        let ca = try Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: .init(caKey.publicKey),
            notValidBefore: now - 3600,
            notValidAfter: now + 86400,
            issuer: caName,
            subject: caName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true))
            },
            issuerPrivateKey: .init(caKey)
        )
        let key = P256.Signing.PrivateKey()
        let leaf = try Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: .init(key.publicKey),
            notValidBefore: now - 3600,
            notValidAfter: now + 86400,
            issuer: caName,
            subject: try DistinguishedName { CommonName("localhost") },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                SubjectAlternativeNames([.dnsName("localhost")])
            },
            issuerPrivateKey: .init(caKey)
        )
        let certificatePath = directory.appendingPathComponent("cert.pem").path
        let keyPath = directory.appendingPathComponent("key.pem").path
        try leaf.serializeAsPEM().pemString.write(toFile: certificatePath, atomically: true, encoding: .utf8)
        try key.pemRepresentation.write(toFile: keyPath, atomically: true, encoding: .utf8)
        let port = try await freeLoopbackPort()
        var validationPort = tlsPort ?? 0
        if tlsPort == nil { validationPort = try await freeLoopbackPort() }
        let config = """
            {"pebble": {"listenAddress": "127.0.0.1:\(port)", "managementListenAddress": "127.0.0.1:\(try await freeLoopbackPort())",
            "certificate": "\(certificatePath)", "privateKey": "\(keyPath)", "httpPort": \(httpPort), "tlsPort": \(validationPort),
            "ocspResponderURL": "", "externalAccountBindingRequired": false\(validity.map { ", \"certificateValidityPeriod\": \($0.components.seconds)" } ?? "")}}
            """
        let configPath = directory.appendingPathComponent("pebble.json").path
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        let pid = try spawnProcess(
            [executable, "-config", configPath, "-dnsserver", "127.0.0.1:\(dnsServer)"],
            // No random waits before validating, and no nonce refused at random.
            environment: ["PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"]
        )
        let caFile = directory.appendingPathComponent("ca.pem").path
        try ca.serializeAsPEM().pemString.write(toFile: caFile, atomically: true, encoding: .utf8)
        let pebble = PebbleProcess(
            directoryURL: "https://localhost:\(port)/dir",
            trustRoots: [try NIOSSLCertificate(bytes: Array(ca.serializeAsPEM().pemString.utf8), format: .pem)],
            caFile: caFile,
            pid: pid,
            directory: directory
        )
        // Ready when it listens, and what listens is pebble: its directory, over its HTTPS.
        let deadline = ContinuousClock.now + .seconds(10)
        while !loopbackAccepts(port: port) {
            if pebble.exited() {
                pebble.stop()
                throw PebbleStartError(description: "pebble exited at start")
            }
            guard ContinuousClock.now < deadline else {
                pebble.stop()
                throw RedisServerError("pebble did not listen within 10 s")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        guard await pebble.directoryAnswers() else {
            pebble.stop()
            throw PebbleStartError(description: "another server answers on pebble's port \(port)")
        }
        return pebble
    }

    /// Whether it has exited; if so it is reaped, and its pid forgotten (it may be another
    /// process's soon, which `stop` must not kill).
    private func exited() -> Bool {
        pid.withLockedValue { pid in
            guard let running = pid else { return true }
            guard exitStatus(of: running) != nil else { return false }
            pid = nil
            return true
        }
    }

    /// Whether its directory answers, over HTTPS under the test's CA, within 10 s.
    private func directoryAnswers() async -> Bool {
        let client = makeClient()
        var answered = false
        let deadline = ContinuousClock.now + .seconds(10)
        while !answered, ContinuousClock.now < deadline {
            var request = HTTPClientRequest(url: directoryURL)
            request.method = .GET
            if let response = try? await client.execute(request, timeout: .seconds(2)), response.status == .ok,
                let body = try? await response.body.collect(upTo: 65_536), String(buffer: body).contains("newAccount")
            {
                answered = true
            } else if exited() {
                // Pebble answers at once once it listens; one that exited never will.
                break
            } else {
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        try? await client.shutdown()
        return answered
    }

    private init(directoryURL: String, trustRoots: [NIOSSLCertificate], caFile: String, pid: pid_t, directory: URL) {
        self.directoryURL = directoryURL
        self.trustRoots = trustRoots
        self.caFile = caFile
        self.pid = NIOLockedValueBox(pid)
        self.directory = directory
    }

    /// An HTTP client that trusts pebble's HTTPS.
    func makeClient() -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(trustRoots)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
    }

    /// Kills it (once: a pid is not killed again after it was reaped, it may be another's).
    func stop() {
        if let running = pid.withLockedValue({ pid in
            defer { pid = nil }
            return pid
        }) {
            killProcess(running)
        }
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Pebble could not start on the ports chosen: fresh ones may do.
private struct PebbleStartError: Error, CustomStringConvertible {
    let description: String
}
