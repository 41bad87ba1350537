import Crypto

/// The signed cookie a client receives once it has solved a challenge, and that lets it pass
/// the shield until the cookie expires.
///
/// The cookie is bound to the client's network (`ClientPrefix`: IPv4 /24, IPv6 /64) and to
/// its User-Agent, so a cookie copied into a bot farm elsewhere, or replayed with another
/// User-Agent, does not pass. Verification is stateless: the proxy keeps no list of issued
/// cookies, any instance holding the secret verifies any other's, and a restart loses nothing.
///
/// ## Format
///
/// `1.<expiry>.<fingerprint>.<mac>`, 73 characters (while Unix time has 10 digits) of the
/// base64url alphabet, dots and digits, which a cookie carries unquoted:
/// - `1`: the format version;
/// - `<expiry>`: Unix time in seconds, decimal, when the cookie stops being valid;
/// - `<fingerprint>`: base64url of the first 12 bytes of HMAC-SHA256(key, client prefix ‖
///   first 16 bytes of SHA-256(User-Agent)) — see `TokenSigner`;
/// - `<mac>`: base64url (unpadded, 43 characters) of HMAC-SHA256(key,
///   `"fulcrum-clearance" ‖ 0x00 ‖ "1.<expiry>.<fingerprint>"`).
///
/// Because the fingerprint travels inside the MAC-covered text, verification can tell a
/// genuine cookie shown by another client (`.otherClient`: a phone that moved to another
/// network, or a stolen cookie) from one nobody holding the key made (`.forged`).
///
/// ## Secret
/// Changing the key invalidates every cookie issued with the old one (clients solve a new
/// challenge). The key should be 32 random bytes, shared by every instance.
package struct ClearanceCookie: Sendable {
    /// The outcome of checking a cookie, in the order the checks run: a cookie must first be
    /// well-formed, then authentic, then belong to this client, then be unexpired.
    package enum Verdict: Hashable, Sendable {
        /// Authentic, this client's, not expired: let the request through.
        case valid
        /// Authentic and this client's, but past its expiry.
        case expired
        /// Well-formed but not signed by this key (made up, altered, or signed by an old key).
        case forged
        /// Authentic, but issued to another network prefix or another User-Agent.
        case otherClient
        /// Not a cookie of this format at all.
        case malformed
    }

    /// The cookie's name in `Set-Cookie` and `Cookie` headers.
    package static let name = "fulcrum_clearance"
    static let label = "fulcrum-clearance"
    static let version = "1"

    private let signer: TokenSigner

    package init(key: SymmetricKey) {
        signer = TokenSigner(key: key)
    }

    /// A cookie value for a client that has just proven itself.
    ///
    /// - Parameters:
    ///   - clientAddress: the client's IP address literal (see `ClientPrefix(address:)`).
    ///   - userAgent: the request's User-Agent, empty when it has none.
    ///   - now: Unix time, seconds.
    ///   - ttl: seconds the cookie stays valid.
    package func issue(clientAddress: String, userAgent: String, now: UInt64, ttl: UInt64) -> String {
        issue(client: ClientPrefix(address: clientAddress), userAgent: userAgent, now: now, ttl: ttl)
    }

    /// `issue(clientAddress:userAgent:now:ttl:)` for a prefix computed once per connection.
    package func issue(client: ClientPrefix, userAgent: String, now: UInt64, ttl: UInt64) -> String {
        let expiry = now + ttl
        let fingerprint = signer.fingerprint(client: client, userAgent: userAgent)
        return signer.sign("\(Self.version).\(expiry).\(fingerprint)", label: Self.label)
    }

    /// Checks a cookie value the client sent.
    ///
    /// The MAC comparison is constant-time (`HMAC.isValidAuthenticationCode`), as is the
    /// fingerprint comparison, so response timing does not help anyone build a cookie byte
    /// by byte.
    ///
    /// - Parameter now: Unix time, seconds. The cookie is valid while `now < expiry`.
    package func verify(_ value: String, clientAddress: String, userAgent: String, now: UInt64) -> Verdict {
        verify(Substring(value), client: ClientPrefix(address: clientAddress), userAgent: userAgent, now: now)
    }

    /// `verify(_:clientAddress:userAgent:now:)` for a value cut out of a `Cookie` header and a
    /// prefix computed once per connection.
    package func verify(_ value: Substring, client: ClientPrefix, userAgent: String, now: UInt64) -> Verdict {
        guard let (fields, authentic) = signer.open(value, label: Self.label, fieldCount: 3),
            fields[0] == Self.version,
            let expiry = parseDecimal(fields[1])
        else { return .malformed }
        guard authentic else { return .forged }
        guard constantTimeEquals(fields[2], signer.fingerprint(client: client, userAgent: userAgent)) else {
            return .otherClient
        }
        return now < expiry ? .valid : .expired
    }

    /// The value of this cookie in a `Cookie` request header (`a=1; fulcrum_clearance=…`), or
    /// `nil` when the header does not carry it. With several, the first one counts.
    package static func value(inCookieHeader header: Substring) -> Substring? {
        for pair in header.split(separator: ";") {
            let trimmed = pair.drop(while: { $0 == " " || $0 == "\t" })
            guard let equals = trimmed.firstIndex(of: "=") else { continue }
            if trimmed[..<equals] == name {
                var value = trimmed[trimmed.index(after: equals)...]
                while let last = value.last, last == " " || last == "\t" { value = value.dropLast() }
                return value
            }
        }
        return nil
    }

    /// A `Set-Cookie` header value for `value`: host-only, whole site, not readable from
    /// JavaScript, sent on top-level navigations from other sites (`Lax`, so a link to the site
    /// does not meet the challenge again), `Secure` when the site is served over HTTPS.
    package static func setCookieHeader(value: String, ttl: UInt64, secure: Bool) -> String {
        "\(name)=\(value); Max-Age=\(ttl); Path=/; HttpOnly; SameSite=Lax" + (secure ? "; Secure" : "")
    }
}
