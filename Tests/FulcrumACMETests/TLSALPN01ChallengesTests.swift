import Crypto
import Foundation
import FulcrumACME
import SwiftASN1
import Testing
import X509

/// The TLS-ALPN-01 certificate (RFC 8737 §3) and how a check is told apart.
@Suite struct TLSALPN01ChallengesTests {
    @Test("The certificate: self-signed, the name alone, and the digest in a critical acmeIdentifier")
    func validationCertificate() throws {
        let key = P256.Signing.PrivateKey()
        let keyAuthorization = "token-1.thumbprint"
        let certificate = try TLSALPN01Challenges.validationCertificate(domain: "www.fulcrum.test", keyAuthorization: keyAuthorization, key: key)
        #expect(try certificate.extensions.subjectAlternativeNames.map { Array($0) } == [.dnsName("www.fulcrum.test")])
        let identifier = try #require(certificate.extensions[oid: TLSALPN01Challenges.identifierExtension])
        #expect(identifier.critical)
        // The extension's value is the DER OCTET STRING of SHA-256(key authorization).
        let octets = try ASN1OctetString(derEncoded: identifier.value)
        #expect(Array(octets.bytes) == Array(SHA256.hash(data: Data(keyAuthorization.utf8))))
        #expect(identifier.value.count == 34 && identifier.value.first == 0x04)
        // Self-signed by the key it carries.
        #expect(certificate.issuer == certificate.subject)
        #expect(certificate.publicKey.isValidSignature(certificate.signature, for: certificate))
    }

    @Test("A context while the check is published, under any case of the name; none after")
    func publishAndWithdraw() throws {
        let challenges = TLSALPN01Challenges()
        #expect(challenges.challengeType == "tls-alpn-01")
        try challenges.publish(domain: "www.fulcrum.test", token: "t", keyAuthorization: "t.k")
        #expect(challenges.context(for: "WWW.Fulcrum.test") != nil)
        #expect(challenges.context(for: "other.fulcrum.test") == nil)
        challenges.withdraw(domain: "www.fulcrum.test", token: "t")
        #expect(challenges.context(for: "www.fulcrum.test") == nil)
    }

    @Test("A check offers acme-tls/1 and nothing else")
    func isValidation() {
        #expect(TLSALPN01Challenges.isValidation(offering: ["acme-tls/1"]))
        #expect(!TLSALPN01Challenges.isValidation(offering: ["h2", "acme-tls/1"]))
        #expect(!TLSALPN01Challenges.isValidation(offering: []))
        #expect(!TLSALPN01Challenges.isValidation(offering: ["acme-tls/2"]))
    }
}
