import NIOConcurrencyHelpers

/// The HTTP-01 answers an ACME order waits on (RFC 8555 §8.3): a token's key authorization,
/// served at `/.well-known/acme-challenge/TOKEN` on port 80 while the CA checks it.
package final class HTTP01Challenges: ACMEChallengeResponder {
    /// Where a CA asks.
    package static let pathPrefix = "/.well-known/acme-challenge/"

    private let answers = NIOLockedValueBox<[String: String]>([:])

    package var challengeType: String { "http-01" }

    package init() {}

    /// The CA asks by token alone: the same answers serve every name.
    package func publish(domain: String, token: String, keyAuthorization: String) {
        answers.withLockedValue { $0[token] = keyAuthorization }
    }

    package func withdraw(domain: String, token: String) {
        answers.withLockedValue { $0[token] = nil }
    }

    /// The body to answer `path` with, or nil when it asks for no token published here.
    package func answer(forPath path: String) -> String? {
        guard path.hasPrefix(Self.pathPrefix) else { return nil }
        let token = path.dropFirst(Self.pathPrefix.count)
        return answers.withLockedValue { $0[String(token)] }
    }
}
