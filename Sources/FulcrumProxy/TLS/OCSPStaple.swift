import Crypto
internal import Foundation
import SwiftASN1
import X509

/// A DER OCSP response (RFC 6960) read from beside a certificate, checked as HAProxy checks
/// one before stapling it: a successful basic response, with a single response for this very
/// certificate (serial number and issuer name hash), whose status is good or revoked, that has
/// a `nextUpdate` still to come.
///
/// The signature is not verified here: the client verifies it against the issuer, and a
/// response that is well formed but badly signed is only as useless as none.
struct OCSPStaple {
    /// What was wrong with a response that is not stapled.
    struct Invalid: Error, Equatable {
        var reason: String
    }

    /// The response's bytes, as stapled.
    let der: [UInt8]
    /// The response says the certificate is revoked (stapled all the same, as HAProxy does:
    /// it is the truth, and a client that checks would find it out anyway).
    let isRevoked: Bool
    let nextUpdate: Date

    /// How far `thisUpdate` may be ahead of the local clock.
    static let clockSkew: TimeInterval = 300

    init(der: [UInt8], for certificate: Certificate, now: Date = Date()) throws(Invalid) {
        do {
            (isRevoked, nextUpdate) = try Self.check(der, for: certificate, now: now)
        } catch let invalid as Invalid {
            throw invalid
        } catch {
            throw Invalid(reason: "not a DER OCSP response (\(error))")
        }
        self.der = der
    }

    private static let basicResponseType: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 48, 1, 1]
    private static let sha1: ASN1ObjectIdentifier = [1, 3, 14, 3, 2, 26]
    private static let sha256: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 1]

    private static func check(_ der: [UInt8], for certificate: Certificate, now: Date) throws -> (revoked: Bool, nextUpdate: Date) {
        // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT ResponseBytes OPTIONAL }
        let response = try children(of: DER.parse(der))
        guard response.count == 2 else {
            let status = try response.first.map { try Int(derEncoded: $0, withIdentifier: .enumerated) }
            throw Invalid(reason: "the responder answered status \(status.map(String.init) ?? "?") (not successful)")
        }
        // ResponseBytes ::= SEQUENCE { responseType OID, response OCTET STRING }
        let responseBytes = try children(of: try single(children(of: response[1])))
        guard responseBytes.count == 2, try ASN1ObjectIdentifier(derEncoded: responseBytes[0]) == basicResponseType else {
            throw Invalid(reason: "not a basic OCSP response")
        }
        // BasicOCSPResponse ::= SEQUENCE { tbsResponseData ResponseData, signatureAlgorithm, signature, certs [0] OPTIONAL }
        let basic = try children(of: DER.parse(ASN1OctetString(derEncoded: responseBytes[1]).bytes))
        // ResponseData ::= SEQUENCE { version [0] OPTIONAL, responderID, producedAt, responses SEQUENCE OF SingleResponse, ... }
        var responseData = try children(of: basic[0])[...]
        if responseData.first?.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
            responseData = responseData.dropFirst()
        }
        guard responseData.count >= 3 else { throw Invalid(reason: "the response data is incomplete") }
        let singles = try children(of: responseData[responseData.startIndex + 2])
        var serializer = DER.Serializer()
        try serializer.serialize(certificate.issuer)
        let issuerName = serializer.serializedBytes
        let serial = certificate.serialNumber.bytes
        for entry in singles {
            // SingleResponse ::= SEQUENCE { certID, certStatus, thisUpdate, nextUpdate [0] EXPLICIT OPTIONAL, ... }
            let fields = try children(of: entry)
            // CertID ::= SEQUENCE { hashAlgorithm, issuerNameHash OCTET STRING, issuerKeyHash, serialNumber INTEGER }
            let certID = try children(of: fields[0])
            let algorithm = try ASN1ObjectIdentifier(derEncoded: try children(of: certID[0])[0])
            let nameHash = Array(try ASN1OctetString(derEncoded: certID[1]).bytes)
            let serialBytes = try ArraySlice<UInt8>(derEncoded: certID[3])
            guard serialBytes == serial, hash(issuerName, algorithm) ?? nameHash == nameHash else { continue }
            let revoked: Bool
            switch fields[1].identifier.tagNumber {
            case 0: revoked = false
            case 1: revoked = true
            default: throw Invalid(reason: "the responder does not know the certificate (status unknown)")
            }
            let thisUpdate = try date(GeneralizedTime(derEncoded: fields[2]))
            guard thisUpdate <= now + clockSkew else { throw Invalid(reason: "it is not valid before \(thisUpdate)") }
            guard fields.count > 3, fields[3].identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) else {
                throw Invalid(reason: "it has no nextUpdate, so it never expires")
            }
            let nextUpdate = try date(GeneralizedTime(derEncoded: single(children(of: fields[3]))))
            guard nextUpdate > now else { throw Invalid(reason: "it expired on \(nextUpdate)") }
            return (revoked, nextUpdate)
        }
        throw Invalid(reason: "it is not about this certificate (no response for its serial number and issuer)")
    }

    private static func children(of node: ASN1Node) throws -> [ASN1Node] {
        guard case .constructed(let nodes) = node.content else {
            throw ASN1Error.invalidASN1Object(reason: "expected a constructed node")
        }
        return Array(nodes)
    }

    private static func single(_ nodes: [ASN1Node]) throws -> ASN1Node {
        guard nodes.count == 1 else { throw ASN1Error.invalidASN1Object(reason: "expected one node") }
        return nodes[0]
    }

    private static func hash(_ bytes: [UInt8], _ algorithm: ASN1ObjectIdentifier) -> [UInt8]? {
        switch algorithm {
        case sha1: Array(Insecure.SHA1.hash(data: bytes))
        case sha256: Array(SHA256.hash(data: bytes))
        default: nil
        }
    }

    private static func date(_ time: GeneralizedTime) throws -> Date {
        var components = DateComponents()
        components.timeZone = TimeZone(identifier: "UTC")
        (components.year, components.month, components.day) = (time.year, time.month, time.day)
        (components.hour, components.minute, components.second) = (time.hours, time.minutes, time.seconds)
        guard let date = Calendar(identifier: .gregorian).date(from: components) else {
            throw Invalid(reason: "a time in it is not a date")
        }
        return date
    }
}
