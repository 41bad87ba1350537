import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// A test certificate authority that issues server certificates, all generated in the test
/// (P-256 keys), and writes them as PEM files.
struct TestCertificateAuthority {
    let key = P256.Signing.PrivateKey()
    let name: DistinguishedName
    let certificate: Certificate

    init(name commonName: String = "Fulcrum Test CA") throws {
        name = try DistinguishedName { CommonName(commonName) }
        let now = Date()
        certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: .init(key.publicKey),
            notValidBefore: now - 3600,
            notValidAfter: now + 86400,
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true))
            },
            issuerPrivateKey: .init(key)
        )
    }

    /// A server certificate for `names` (DNS SANs; none: the CN only) and its key.
    func issue(
        commonName: String,
        names: [String],
        notValidAfter: Date = Date() + 86400
    ) throws -> (certificate: Certificate, key: P256.Signing.PrivateKey) {
        let key = P256.Signing.PrivateKey()
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: .init(key.publicKey),
            notValidBefore: Date() - 3600,
            notValidAfter: notValidAfter,
            issuer: name,
            subject: try DistinguishedName { CommonName(commonName) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                if !names.isEmpty {
                    SubjectAlternativeNames(names.map { .dnsName($0) })
                }
            },
            issuerPrivateKey: .init(self.key)
        )
        return (certificate, key)
    }

    /// The CA certificate as NIOSSL sees it (for a client's trust roots).
    var nioCertificate: NIOSSLCertificate {
        get throws { try NIOSSLCertificate(bytes: try certificate.serializeAsPEM().derBytes, format: .der) }
    }
}

/// `certificate` then `key`, as one PEM text (the `NAME.pem` form).
func pemFile(_ issued: (certificate: Certificate, key: P256.Signing.PrivateKey)) throws -> String {
    try issued.certificate.serializeAsPEM().pemString + "\n" + issued.key.pemRepresentation + "\n"
}

/// A fresh temporary directory, removed by the caller.
func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
