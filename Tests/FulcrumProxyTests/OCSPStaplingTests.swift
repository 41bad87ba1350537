import Foundation
import FulcrumConfig
import FulcrumWorker
import Testing

@testable import FulcrumProxy

/// OCSP stapling from `CERT.ocsp` beside a certificate (HAProxy's convention). The responses
/// are real ones, made by `openssl ocsp` for the test CA; the tests skip, saying so, where
/// the `openssl` command is missing.
@Suite("OCSP stapling", .serialized)
struct OCSPStaplingTests {
    @Test("a valid response is stapled, and a replaced one is served after the reload")
    func staplesAndReloads() async throws {
        guard let responder = try await OCSPResponder.make() else { return }
        defer { responder.remove() }
        let certificate = responder.directory.appendingPathComponent("certs/localhost.pem")
        let staple = certificate.appendingPathExtension("ocsp")
        try await responder.respond(for: certificate, revoked: false).write(to: staple)
        let yaml = { (ports: [Int]) in
            simpleConfig(ports, frontendExtra: "    tls: { certificates: \"\(certificate.deletingLastPathComponent().path)\" }")
        }
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: yaml) { harness async throws in
            let first = try await stapledStatus(responder.openssl, port: harness.port)
            #expect(first == "good")

            try await responder.respond(for: certificate, revoked: true).write(to: staple)
            try await waitUntil(timeout: .seconds(15)) {
                try await stapledStatus(responder.openssl, port: harness.port) == "revoked"
            }
            try FileManager.default.removeItem(at: staple)
            try await waitUntil(timeout: .seconds(15)) {
                try await stapledStatus(responder.openssl, port: harness.port) == nil
            }
        }
    }

    @Test("an unreadable, invalid, foreign or expired response is reported, and the certificate serves unstapled")
    func badResponsesAreReported() async throws {
        guard let responder = try await OCSPResponder.make() else { return }
        defer { responder.remove() }
        let certificates = responder.directory.appendingPathComponent("certs")
        let certificate = certificates.appendingPathComponent("localhost.pem")
        let other = certificates.appendingPathComponent("other.pem")
        try pemFile(try responder.authority.issue(commonName: "other", names: ["other.test"], notValidAfter: Date() + 10 * 86400))
            .write(to: other, atomically: true, encoding: .utf8)
        let tls = FrontendTLSConfig(certificatesDirectory: certificates.path)
        func load(now: Date = Date()) -> (files: [String: Date?], problems: [String: String]) {
            let (table, problems) = CertificateLoader.load(tls, now: now)
            #expect(problems.allSatisfy { !$0.skipsCertificate })
            return (
                Dictionary(uniqueKeysWithValues: table.certificates.map { ($0.file, $0.ocspNextUpdate) }),
                Dictionary(uniqueKeysWithValues: problems.map { ($0.file, $0.reason) })
            )
        }

        // None: no stapling, no problem.
        var loaded = load()
        #expect(loaded.problems.isEmpty)
        #expect(loaded.files["localhost.pem"] == .some(nil))

        let staple = certificate.appendingPathExtension("ocsp")
        try Data("not DER".utf8).write(to: staple)
        // A response about another certificate (of the same CA).
        try await responder.respond(for: certificate, revoked: false).write(to: other.appendingPathExtension("ocsp"))
        loaded = load()
        #expect(loaded.problems["localhost.pem.ocsp"]?.hasPrefix("not a DER OCSP response") == true, "\(loaded.problems)")
        #expect(loaded.problems["other.pem.ocsp"]?.hasPrefix("it is not about this certificate") == true, "\(loaded.problems)")
        #expect(loaded.files.count == 2)

        // Valid now (one day), expired two days from now.
        try await responder.respond(for: certificate, revoked: false).write(to: staple)
        loaded = load()
        #expect(loaded.problems["localhost.pem.ocsp"] == nil)
        #expect(loaded.files["localhost.pem"].flatMap { $0 } != nil)
        loaded = load(now: Date() + 2 * 86400)
        #expect(loaded.problems["localhost.pem.ocsp"]?.hasPrefix("it expired on") == true, "\(loaded.problems)")
        #expect(loaded.files["localhost.pem"] == .some(nil))

        // Unreadable (root reads everything: then this part proves nothing, and says so).
        try FileManager.default.setAttributes([.posixPermissions: 0], ofItemAtPath: staple.path)
        if FileManager.default.isReadableFile(atPath: staple.path) {
            print("note: running as root, so an unreadable .ocsp cannot be made; that case is not checked")
        } else {
            #expect(load().problems["localhost.pem.ocsp"]?.hasPrefix("cannot be read") == true)
        }
    }
}

/// A test CA that answers OCSP with `openssl ocsp`, and a `certs/localhost.pem` it issued.
private struct OCSPResponder {
    let openssl: ExternalTool
    let authority: TestCertificateAuthority
    let directory: URL

    /// Nil (and says so) where `openssl` is not installed.
    static func make() async throws -> OCSPResponder? {
        guard let openssl = ExternalTool.find("openssl") else {
            print("skipped: the openssl command is not installed")
            return nil
        }
        let authority = try TestCertificateAuthority()
        let directory = try makeTemporaryDirectory()
        try authority.certificate.serializeAsPEM().pemString.write(to: directory.appendingPathComponent("ca.pem"), atomically: true, encoding: .utf8)
        try authority.key.pemRepresentation.write(to: directory.appendingPathComponent("ca.key"), atomically: true, encoding: .utf8)
        let certificates = directory.appendingPathComponent("certs")
        try FileManager.default.createDirectory(at: certificates, withIntermediateDirectories: true)
        // Valid longer than the responses, so that only they expire in `load(now:)`.
        try pemFile(try authority.issue(commonName: "localhost", names: ["localhost"], notValidAfter: Date() + 10 * 86400))
            .write(to: certificates.appendingPathComponent("localhost.pem"), atomically: true, encoding: .utf8)
        return OCSPResponder(openssl: openssl, authority: authority, directory: directory)
    }

    /// A DER response for `certificate`, valid for a day, signed by the CA itself.
    func respond(for certificate: URL, revoked: Bool) async throws -> Data {
        let serialRun = try await openssl.run(["x509", "-in", certificate.path, "-noout", "-serial"])
        let serial = try #require(serialRun.output.split(separator: "=").last).trimmingCharacters(in: .whitespacesAndNewlines)
        // openssl's CA database: status, expiry, revocation time, serial, file, subject.
        let entry = revoked ? "R\t301231000000Z\t240101000000Z\t" : "V\t301231000000Z\t\t"
        try "\(entry)\(serial)\tunknown\t/CN=localhost\n".write(to: directory.appendingPathComponent("index.txt"), atomically: true, encoding: .utf8)
        let output = directory.appendingPathComponent("response.der")
        let run = try await openssl.run(
            [
                "ocsp", "-index", "index.txt", "-rsigner", "ca.pem", "-rkey", "ca.key", "-CA", "ca.pem",
                "-issuer", "ca.pem", "-cert", certificate.path, "-respout", output.path, "-ndays", "1", "-no_nonce",
            ],
            in: directory
        )
        #expect(run.status == 0, "\(run.output)")
        return try Data(contentsOf: output)
    }

    func remove() {
        try? FileManager.default.removeItem(at: directory)
    }
}

/// The certificate status in the OCSP response the proxy stapled; nil when it stapled none.
private func stapledStatus(_ openssl: ExternalTool, port: Int) async throws -> String? {
    let run = try await openssl.run(["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "localhost", "-status"])
    guard !run.output.contains("OCSP response: no response sent") else { return nil }
    return run.output.split(separator: "\n").first { $0.contains("Cert Status:") }
        .map { $0.split(separator: ":").last!.trimmingCharacters(in: .whitespaces) }
}
