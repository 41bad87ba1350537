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
enum CertificateLoader {
    /// One file (or pair) that was skipped, and why.
    struct Problem: Sendable, Equatable, CustomStringConvertible {
        var file: String
        var reason: String
        var description: String { "\(file): \(reason)" }
    }

    /// A certificate that loaded: the names it serves and a TLS context for it.
    struct Loaded: Sendable {
        var file: String
        /// Lowercased DNS names from the SAN extension (or the CN without one), wildcards as `*.example.com`.
        var names: [String]
        var context: NIOSSLContext
    }

    /// What changed-detection compares: every candidate file's name, size and modification time.
    static func signature(of directory: String) -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return files.filter(isCandidate).sorted().map { file in
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
                loaded.append(try load(directory: directory, sources: sources, tls: tls, now: now))
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
        configuration.minimumTLSVersion = tls.minimumVersion == .v1_3 ? .tlsv13 : .tlsv12
        configuration.applicationProtocols = tls.alpn
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw LoadFailure(reason: "TLS rejected the certificate or key (\(error))")
        }
        return Loaded(file: sources.certificate, names: names, context: context)
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
                loaded: table.certificates.map { "\($0.file) (\($0.names.joined(separator: ", ")))" },
                problems: problems.map(\.description)
            )
        }
    }
}
