import Crypto
import Foundation

/// An ACME account's key (P-256, ES256) and what RFC 8555 builds from it: the JWK (RFC 7517),
/// its thumbprint (RFC 7638), and JWS signatures in the flattened JSON form (§6.2).
package struct ACMEAccountKey: Sendable {
    package let privateKey: P256.Signing.PrivateKey

    package init(_ privateKey: P256.Signing.PrivateKey = P256.Signing.PrivateKey()) {
        self.privateKey = privateKey
    }

    /// The public key as a JWK, with its members in the order RFC 7638 hashes them.
    package var jwk: [(String, String)] {
        let raw = privateKey.publicKey.rawRepresentation
        return [
            ("crv", "P-256"),
            ("kty", "EC"),
            ("x", Base64URL.encode(raw.prefix(32))),
            ("y", Base64URL.encode(raw.suffix(32))),
        ]
    }

    /// The JWK's thumbprint: SHA-256 of its required members, sorted, without whitespace.
    package var thumbprint: String {
        let canonical = "{" + jwk.map { "\"\($0.0)\":\"\($0.1)\"" }.joined(separator: ",") + "}"
        return Base64URL.encode(Data(SHA256.hash(data: Data(canonical.utf8))))
    }

    /// `token.thumbprint`: what an HTTP-01 challenge's file holds (§8.1).
    package func keyAuthorization(token: String) -> String {
        "\(token).\(thumbprint)"
    }

    /// A flattened JWS of `payload` (nil: the empty payload of a POST-as-GET, §6.3) for `url`,
    /// signed with ES256; names the key by `keyID` (the account URL) or, before there is an
    /// account, by its JWK.
    package func sign(_ payload: Data?, url: String, nonce: String, keyID: String?) throws -> Data {
        var header = "{\"alg\":\"ES256\",\"nonce\":\(json(nonce)),\"url\":\(json(url)),"
        if let keyID {
            header += "\"kid\":\(json(keyID))}"
        } else {
            header += "\"jwk\":{" + jwk.map { "\(json($0.0)):\(json($0.1))" }.joined(separator: ",") + "}}"
        }
        let protected = Base64URL.encode(Data(header.utf8))
        let encodedPayload = payload.map(Base64URL.encode) ?? ""
        let signature = try privateKey.signature(for: Data("\(protected).\(encodedPayload)".utf8))
        let body =
            "{\"protected\":\"\(protected)\",\"payload\":\"\(encodedPayload)\",\"signature\":\"\(Base64URL.encode(signature.rawRepresentation))\"}"
        return Data(body.utf8)
    }

    private func json(_ string: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [string], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
        return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
    }
}

/// Base64 with the URL alphabet and no padding (RFC 4648 §5), as JOSE writes it.
package enum Base64URL {
    package static func encode<Bytes: DataProtocol>(_ bytes: Bytes) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
