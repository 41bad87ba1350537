/// What answers a CA's check of one kind of challenge (RFC 8555 §8) while an order waits on
/// it: `HTTP01Challenges` (a file over plain HTTP) or `TLSALPN01Challenges` (a certificate
/// over TLS).
package protocol ACMEChallengeResponder: Sendable {
    /// The challenge's type, as the CA names it (`http-01`, `tls-alpn-01`).
    var challengeType: String { get }

    /// Answers `domain`'s challenge `token` with its key authorization, until `withdraw`.
    func publish(domain: String, token: String, keyAuthorization: String) throws

    func withdraw(domain: String, token: String)
}
