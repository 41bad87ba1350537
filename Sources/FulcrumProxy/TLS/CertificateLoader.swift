internal import Foundation
import FulcrumConfig
import NIOSSL
import SwiftASN1
import X509

/// Reads a frontend's certificate directory into a `CertificateTable`.
///
/// Every `NAME.pem` holds a chain (leaf first) and its private key; a `NAME.crt` with a
/// `NAME.key` beside it is the same split in two files. A file that cannot serve — unreadable,
/// no certificate, no key, a key that does not match the certificate, expired — is skipped and
/// reported with its name and the reason; the others serve.
///
/// A `CERT.ocsp` beside a certificate file (`NAME.pem.ocsp`, `NAME.crt.ocsp`: HAProxy's
/// convention) holds a DER OCSP response to staple. None: no stapling. One that cannot be
/// read, is invalid, is about another certificate or has expired is reported, and the
/// certificate serves without it (HAProxy warns the same way).
enum CertificateLoader {
    /// One file (or pair) that was skipped, or an OCSP response that was not stapled, and why.
    struct Problem: Sendable, Equatable, CustomStringConvertible {
        var file: String
        var reason: String
        /// False for an OCSP problem: the certificate serves, without (or with a revoked) staple.
        var skipsCertificate = true
        var description: String { "\(file): \(reason)" }
    }

    /// A certificate that loaded: the names it serves and a TLS context for it.
    struct Loaded: Sendable {
        var file: String
        /// Lowercased DNS names from the SAN extension (or the CN without one), wildcards as `*.example.com`.
        var names: [String]
        var context: NIOSSLContext
        /// The leaf certificate (what an OCSP response must be about).
        var leaf: Certificate
        /// Until when the stapled OCSP response is valid; nil: nothing stapled.
        var ocspNextUpdate: Date?
    }

    static let ocspSuffix = ".ocsp"

    /// What changed-detection compares: every candidate file's name, size and modification
    /// time, OCSP responses included (a renewed response is reloaded with its certificate).
    static func signature(of directory: String) -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return files.filter { isCandidate($0) || $0.hasSuffix(ocspSuffix) }.sorted().map { file in
            let attributes = try? FileManager.default.attributesOfItem(atPath: directory + "/" + file)
            let size = (attributes?[.size] as? NSNumber)?.intValue ?? -1
            let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? -1
            return "\(file) \(size) \(modified)"
        }
    }

    private static func isCandidate(_ file: String) -> Bool {
        !file.hasPrefix(".") && (file.hasSuffix(".pem") || file.hasSuffix(".crt") || file.hasSuffix(".key"))
    }

    /// Loads every certificate in `tls.certificatesDirectory`, as of `now`.
    static func load(_ tls: FrontendTLSConfig, now: Date = Date()) -> (table: CertificateTable, problems: [Problem]) {
        let directory = tls.certificatesDirectory
        let files: [String]
        do {
            files = try FileManager.default.contentsOfDirectory(atPath: directory).filter(isCandidate).sorted()
        } catch {
            return (
                CertificateTable(certificates: [], defaultName: tls.defaultCertificate),
                [
                    Problem(file: directory, reason: "cannot read the directory (\(error.localizedDescription))")
                ]
            )
        }
        var loaded: [Loaded] = []
        var problems: [Problem] = []
        for file in files {
            let stem = String(file.dropLast(4))
            let sources: (certificate: String, key: String)
            if file.hasSuffix(".pem") {
                sources = (file, file)
            } else if file.hasSuffix(".crt") {
                guard files.contains(stem + ".key") else {
                    problems.append(Problem(file: file, reason: "no \(stem).key beside it"))
                    continue
                }
                sources = (file, stem + ".key")
            } else {
                // A .key is read with its .crt; alone it is reported.
                if !files.contains(stem + ".crt") {
                    problems.append(Problem(file: file, reason: "no \(stem).crt beside it"))
                }
                continue
            }
            do {
                var certificate = try load(directory: directory, sources: sources, tls: tls, now: now)
                if let problem = stapleOCSP(on: &certificate, directory: directory, now: now) {
                    problems.append(problem)
                }
                loaded.append(certificate)
            } catch let problem as LoadFailure {
                problems.append(Problem(file: file, reason: problem.reason))
            } catch {
                problems.append(Problem(file: file, reason: "\(error)"))
            }
        }
        if loaded.isEmpty, problems.isEmpty {
            problems.append(Problem(file: directory, reason: "no certificates (*.pem, or NAME.crt with NAME.key)"))
        }
        return (CertificateTable(certificates: loaded, defaultName: tls.defaultCertificate), problems)
    }

    private struct LoadFailure: Error {
        var reason: String
    }

    private static func load(
        directory: String,
        sources: (certificate: String, key: String),
        tls: FrontendTLSConfig,
        now: Date
    ) throws -> Loaded {
        func read(_ file: String) throws -> String {
            guard let data = FileManager.default.contents(atPath: directory + "/" + file) else {
                throw LoadFailure(reason: "cannot read \(file)")
            }
            return String(decoding: data, as: UTF8.self)
        }
        let certificateText = try read(sources.certificate)
        let keyText = sources.key == sources.certificate ? certificateText : try read(sources.key)

        let certificateDocuments = try documents(in: certificateText, file: sources.certificate)
        let keyDocuments =
            sources.key == sources.certificate
            ? certificateDocuments
            : try documents(in: keyText, file: sources.key)
        let chain = certificateDocuments.filter { $0.discriminator == "CERTIFICATE" }
        guard let leafDocument = chain.first else { throw LoadFailure(reason: "no certificate in \(sources.certificate)") }
        guard let keyDocument = keyDocuments.first(where: { $0.discriminator.hasSuffix("PRIVATE KEY") }) else {
            throw LoadFailure(reason: "no private key in \(sources.key)")
        }
        let leaf: Certificate
        let key: Certificate.PrivateKey
        do {
            leaf = try Certificate(pemDocument: leafDocument)
        } catch {
            throw LoadFailure(reason: "the certificate cannot be parsed (\(error))")
        }
        do {
            key = try Certificate.PrivateKey(pemDocument: keyDocument)
        } catch {
            throw LoadFailure(reason: "the private key cannot be parsed (\(error))")
        }
        guard key.publicKey == leaf.publicKey else {
            throw LoadFailure(reason: "the private key does not match the certificate")
        }
        guard leaf.notValidAfter > now else {
            throw LoadFailure(reason: "the certificate expired on \(leaf.notValidAfter)")
        }
        let names = serverNames(of: leaf)
        guard !names.isEmpty else { throw LoadFailure(reason: "the certificate names no host (no DNS SAN, no CN)") }

        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try chain.map { .certificate(try NIOSSLCertificate(bytes: $0.derBytes, format: .der)) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: keyDocument.derBytes, format: .der))
        )
        configuration.minimumTLSVersion = tls.effectiveMinimumVersion == .v1_3 ? .tlsv13 : .tlsv12
        // Checked when the configuration loaded (`TLSCipherList`): NIOSSL stops the process
        // on a string that selects nothing.
        configuration.cipherSuites = tls.effectiveCiphers
        configuration.applicationProtocols = tls.alpn
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw LoadFailure(reason: "TLS rejected the certificate or key (\(error))")
        }
        return Loaded(file: sources.certificate, names: names, context: context, leaf: leaf)
    }

    /// Staples `CERT.ocsp` on the certificate's context, if there is one; what went wrong otherwise.
    private static func stapleOCSP(on certificate: inout Loaded, directory: String, now: Date) -> Problem? {
        let file = certificate.file + ocspSuffix
        let path = directory + "/" + file
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        func problem(_ reason: String) -> Problem {
            Problem(file: file, reason: reason, skipsCertificate: false)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            return problem("cannot be read; \(certificate.file) serves without OCSP stapling")
        }
        let staple: OCSPStaple
        do {
            staple = try OCSPStaple(der: Array(data), for: certificate.leaf, now: now)
        } catch {
            return problem("\(error.reason); \(certificate.file) serves without OCSP stapling")
        }
        guard certificate.context.stapleOCSPResponse(staple.der) else {
            return problem("this build's TLS library offers no way to staple it (swift-nio-ssl changed)")
        }
        certificate.ocspNextUpdate = staple.nextUpdate
        return staple.isRevoked ? problem("the response says \(certificate.file) is REVOKED (stapled as it is)") : nil
    }

    /// The host names a certificate serves: its DNS SANs, or its CN when it has no SAN (RFC 6125).
    static func serverNames(of certificate: Certificate) -> [String] {
        if let alternatives = try? certificate.extensions.subjectAlternativeNames {
            let names = alternatives.compactMap { name -> String? in
                if case .dnsName(let dns) = name { return dns.lowercased() }
                return nil
            }
            if !names.isEmpty { return names }
        }
        var names: [String] = []
        for relativeName in certificate.subject {
            for attribute in relativeName where attribute.type == .RDNAttributeType.commonName {
                if let text = String(attribute.value) { names.append(text.lowercased()) }
            }
        }
        return names
    }

    private static func documents(in text: String, file: String) throws -> [PEMDocument] {
        do {
            return try PEMDocument.parseMultiple(pemString: text)
        } catch {
            throw LoadFailure(reason: "\(file) is not PEM (\(error))")
        }
    }
}

/// What the certificate directory of one TLS frontend holds (`fulcrum check`).
package struct CertificateReport: Sendable {
    package let frontend: String
    /// Each certificate that loaded, as `file (name, name…)`.
    package let loaded: [String]
    /// Each file skipped, as `file: reason`.
    package let problems: [String]

    /// Reads the certificate directory of every TLS frontend of `config`.
    package static func check(_ config: Config) -> [CertificateReport] {
        config.frontends.compactMap { frontend in
            guard let tls = frontend.tls else { return nil }
            let (table, problems) = CertificateLoader.load(tls)
            return CertificateReport(
                frontend: frontend.name,
                loaded: table.certificates.map { certificate in
                    let stapling = certificate.ocspNextUpdate.map { ", OCSP stapled until \($0)" } ?? ""
                    return "\(certificate.file) (\(certificate.names.joined(separator: ", "))\(stapling))"
                },
                problems: problems.map(\.description)
            )
        }
    }
}
