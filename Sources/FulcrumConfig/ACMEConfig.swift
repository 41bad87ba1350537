/// Certificates a TLS frontend obtains and renews itself from an ACME CA
/// (`frontends[].tls.acme`), as Caddy's automatic HTTPS does.
package struct ACMEConfig: Sendable, Equatable {
    /// The CA's directory URL (`directory`), e.g. Let's Encrypt's.
    package var directory: String
    /// The account's contact (`email`); nil: none.
    package var email: String?
    /// The names the certificate is for (`domains`), the first as its common name.
    package var domains: [String]
    /// How the CA checks that Fulcrum serves the names (`challenge`).
    package var challenge: ACMEChallenge = .http01
    /// PEM file of the roots that sign the CA's own HTTPS certificate (`ca`, absolute after
    /// loading), for a private or test CA such as pebble; nil: the system's.
    package var caFile: String?

    /// Let's Encrypt's production directory.
    package static let letsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

    package init(directory: String, domains: [String]) {
        self.directory = directory
        self.domains = domains
    }
}

/// An ACME challenge type (RFC 8555 §8).
package enum ACMEChallenge: String, Sendable, Equatable, CaseIterable {
    /// A file under `/.well-known/acme-challenge/`, fetched over plain HTTP on port 80.
    case http01 = "http-01"
    /// A certificate shown over TLS on port 443 to a client that offers only `acme-tls/1`
    /// (RFC 8737): the TLS frontend answers it, and no plain HTTP frontend is needed.
    case tlsALPN01 = "tls-alpn-01"
}
