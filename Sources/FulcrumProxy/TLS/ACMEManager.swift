import AsyncHTTPClient
import Crypto
internal import Foundation
import FulcrumACME
import FulcrumConfig
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import NIOSSL
import SwiftASN1
import X509

/// Obtains one TLS frontend's certificate from its ACME CA and renews it, into the frontend's
/// certificate directory, where `CertificateStore` serves it by SNI like any other file.
///
/// As Caddy does: the certificate is obtained at start (or when a reload changes `acme`) unless
/// the directory holds one for the domains already; it is renewed once two thirds of its
/// lifetime have passed; a failure is logged and retried after 10 s, doubling up to an hour,
/// while the certificate in place keeps serving. The account key is kept beside it, so a
/// restart finds the same account.
final class ACMEManager: Sendable {
    /// The first wait after a failure; each further one doubles, up to `longestRetry`.
    static let firstRetry = Duration.seconds(10)
    static let longestRetry = Duration.seconds(3600)

    private let frontend: String
    private let acme: ACMEConfig
    private let directory: String
    private let challenges: any ACMEChallengeResponder
    private let logger: Logger
    private let task = NIOLockedValueBox<Task<Void, Never>?>(nil)

    init(frontend: String, tls: FrontendTLSConfig, acme: ACMEConfig, challenges: any ACMEChallengeResponder, logger: Logger) {
        self.frontend = frontend
        self.acme = acme
        self.directory = tls.certificatesDirectory
        self.challenges = challenges
        self.logger = logger
    }

    /// Where the certificate and its key are written (`acme-DOMAIN.pem`).
    var certificatePath: String { "\(directory)/acme-\(acme.domains[0]).pem" }
    /// The account key: a dot file, which the certificate loader passes over.
    var accountKeyPath: String { "\(directory)/.acme-account.key" }

    /// Starts obtaining and renewing; `issued` is called, on NIO's thread pool for blocking
    /// work, once a new certificate is on disk.
    func start(issued: @escaping @Sendable () -> Void) {
        let task = Task { [self] in await run(issued: issued) }
        self.task.withLockedValue { $0 = task }
    }

    func stop() {
        task.withLockedValue { task in
            task?.cancel()
            task = nil
        }
    }

    private func run(issued: @escaping @Sendable () -> Void) async {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile = acme.caFile { tls.trustRoots = .file(caFile) }
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        var failures = 0
        while !Task.isCancelled {
            let renewal = try? await onThreadPool { Self.renewalTime(ofFileAt: self.certificatePath, domains: self.acme.domains) }
            if let renewal = renewal ?? nil, renewal > Date() {
                try? await Task.sleep(for: .seconds(min(renewal.timeIntervalSinceNow, 3600)))
                continue
            }
            do {
                let key = try await onThreadPool { try self.accountKey() }
                var settings = ACMEClient.Settings(directory: acme.directory, email: acme.email)
                settings.timeout = .seconds(300)
                let client = ACMEClient(settings: settings, accountKey: key, http: http, challenges: challenges, logger: logger)
                let certificate = try await client.obtain(domains: acme.domains)
                try await onThreadPool {
                    try Self.write(certificate.chainPEM + certificate.privateKeyPEM, to: self.certificatePath)
                    issued()
                    // A certificate that is due at once would be ordered again and again.
                    guard let renewal = Self.renewalTime(ofFileAt: self.certificatePath, domains: self.acme.domains), renewal > Date() else {
                        throw ACMEError.refused("the CA issued a certificate that does not cover the domains, or is due for renewal at once")
                    }
                }
                failures = 0
                logger.info(
                    "ACME: certificate obtained",
                    metadata: ["frontend": "\(frontend)", "domains": "\(acme.domains.joined(separator: ","))", "file": "\(certificatePath)"]
                )
            } catch {
                guard !Task.isCancelled else { break }
                failures += 1
                let wait = min(Self.firstRetry * (1 << min(failures - 1, 20)), Self.longestRetry)
                logger.error(
                    "ACME: no certificate obtained; the one in place (if any) keeps serving",
                    metadata: ["frontend": "\(frontend)", "reason": "\(error)", "retry_in": "\(wait)"]
                )
                try? await Task.sleep(for: wait)
            }
        }
        try? await http.shutdown()
    }

    /// When the certificate at `path` is due for renewal: two thirds into its lifetime. Now
    /// when there is none, it cannot be read, or it does not cover every one of `domains`.
    static func renewalTime(ofFileAt path: String, domains: [String]) -> Date? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
            let document = try? PEMDocument.parseMultiple(pemString: text).first(where: { $0.discriminator == "CERTIFICATE" }),
            let certificate = try? Certificate(pemDocument: document)
        else { return nil }
        let alternativeNames = ((try? certificate.extensions.subjectAlternativeNames) ?? nil).map { Array($0) } ?? []
        let names = Set(
            alternativeNames.compactMap { name -> String? in
                if case .dnsName(let dns) = name { return dns.lowercased() }
                return nil
            }
        )
        guard Set(domains).isSubset(of: names) else { return nil }
        let lifetime = certificate.notValidAfter.timeIntervalSince(certificate.notValidBefore)
        return certificate.notValidAfter - lifetime / 3
    }

    /// The account's key, made and saved (mode 0600) the first time.
    private func accountKey() throws -> ACMEAccountKey {
        if let text = try? String(contentsOfFile: accountKeyPath, encoding: .utf8) {
            return ACMEAccountKey(try P256.Signing.PrivateKey(pemRepresentation: text))
        }
        let key = ACMEAccountKey()
        try Self.write(key.privateKey.pemRepresentation, to: accountKeyPath)
        return key
    }

    /// Writes `text` to `path` in one rename, readable by its owner only (it holds a key).
    private static func write(_ text: String, to path: String) throws {
        let staged = (path as NSString).deletingLastPathComponent + "/.staged-" + (path as NSString).lastPathComponent
        guard FileManager.default.createFile(atPath: staged, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ACMEError.refused("cannot write \(staged)")
        }
        guard rename(staged, path) == 0 else { throw ACMEError.refused("cannot replace \(path)") }
    }

    private func onThreadPool<Value: Sendable>(_ body: @escaping @Sendable () throws -> Value) async throws -> Value {
        // File reads and writes block: NIO's thread pool for blocking work does them.
        try await NIOThreadPool.singleton.runIfActive(body)
    }
}
