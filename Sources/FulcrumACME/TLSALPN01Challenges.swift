import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOSSL
import SwiftASN1
import X509

/// The TLS-ALPN-01 answers an ACME order waits on (RFC 8737): for each name under check, a
/// self-signed certificate carrying the key authorization's digest, shown to a TLS client
/// that asks for the name and offers only the `acme-tls/1` protocol, while the CA checks it.
///
/// The TLS frontend itself answers, on its own port (443 for a public CA): no plain HTTP
/// frontend is needed, unlike HTTP-01. The TLS context is made when the answer is published,
/// off the event loops, so the handshake that shows it only looks it up.
package final class TLSALPN01Challenges: ACMEChallengeResponder {
    /// The protocol a CA's check offers, alone (RFC 8737 §6.2).
    package static let applicationProtocol = "acme-tls/1"
    /// The `acmeIdentifier` extension (RFC 8737 §6.1).
    package static let identifierExtension: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 1, 31]

    private let contexts = NIOLockedValueBox<[String: NIOSSLContext]>([:])

    package var challengeType: String { "tls-alpn-01" }

    package init() {}

    package func publish(domain: String, token: String, keyAuthorization: String) throws {
        let key = P256.Signing.PrivateKey()
        let certificate = try Self.validationCertificate(domain: domain, keyAuthorization: keyAuthorization, key: key)
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: serializer.serializedBytes, format: .der))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem))
        )
        configuration.applicationProtocols = [Self.applicationProtocol]
        // RFC 8737 §3: TLS 1.2 or later.
        configuration.minimumTLSVersion = .tlsv12
        let context = try NIOSSLContext(configuration: configuration)
        contexts.withLockedValue { $0[domain.lowercased()] = context }
    }

    package func withdraw(domain: String, token: String) {
        contexts.withLockedValue { $0[domain.lowercased()] = nil }
    }

    /// The context that answers a check of `serverName`, or nil when none is under way.
    package func context(for serverName: String) -> NIOSSLContext? {
        contexts.withLockedValue { $0[serverName.lowercased()] }
    }

    /// Whether a ClientHello offering `protocols` is a CA's check: `acme-tls/1` and nothing
    /// else, as RFC 8737 §3 has the CA send (and as Caddy tells one apart).
    package static func isValidation(offering protocols: [String]) -> Bool {
        protocols.count == 1 && protocols[0] == applicationProtocol
    }

    /// The certificate RFC 8737 §3 asks for: self-signed, `domain` its only subject
    /// alternative name, and a critical `acmeIdentifier` extension holding the SHA-256 digest
    /// of the key authorization as a DER OCTET STRING.
    package static func validationCertificate(domain: String, keyAuthorization: String, key: P256.Signing.PrivateKey) throws -> Certificate {
        let digest = SHA256.hash(data: Data(keyAuthorization.utf8))
        var value = DER.Serializer()
        try value.serialize(ASN1OctetString(contentBytes: ArraySlice(digest)))
        let name = try DistinguishedName { CommonName(domain) }
        let now = Date()
        return try Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: .init(key.publicKey),
            notValidBefore: now - 3600,
            notValidAfter: now + 7 * 86400,
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                SubjectAlternativeNames([.dnsName(domain)])
                Certificate.Extension(oid: identifierExtension, critical: true, value: value.serializedBytes[...])
            },
            issuerPrivateKey: .init(key)
        )
    }
}
