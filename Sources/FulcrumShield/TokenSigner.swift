import Crypto

/// The HMAC-SHA256 machinery the clearance cookie and the proof-of-work challenge share.
///
/// A token is dot-separated ASCII text whose last field is the base64url MAC of everything
/// before it, prefixed with a label naming the kind of token. One secret can therefore sign
/// both kinds without a challenge ever verifying as a cookie, and any change to any byte of
/// the text — even one that parses to the same number — breaks the MAC.
///
/// A token carries a *client fingerprint*: a keyed hash of the client's address prefix and
/// User-Agent. Because the MAC covers it, a verifier can tell a genuine token shown by another
/// client (a phone that changed networks, a stolen cookie) from a forged one. Being keyed, the
/// fingerprint reveals nothing about the client to whoever reads the token: a plain hash of a
/// /24 could be reversed by trying all 2^24 of them.
struct TokenSigner: Sendable {
    let key: SymmetricKey

    /// Bytes of fingerprint a token carries: 96 bits, so a token cannot be moved to another
    /// client by chance, and the text stays short.
    static let fingerprintLength = 12
    static let macLength = SHA256.byteCount
    /// Bytes of the User-Agent's SHA-256 that enter the fingerprint: a fixed-size field keeps
    /// the fingerprint's input unambiguous without a length prefix.
    static let userAgentHashLength = 16

    init(key: SymmetricKey) {
        self.key = key
    }

    /// The keyed fingerprint of a client, base64url-encoded as tokens carry it.
    func fingerprint(client: ClientPrefix, userAgent: String) -> String {
        var input = Array("fulcrum-shield-client-v1\u{0}".utf8)
        client.appendBinding(to: &input)
        input.append(contentsOf: Array(SHA256.hash(data: Array(userAgent.utf8))).prefix(Self.userAgentHashLength))
        let mac = HMAC<SHA256>.authenticationCode(for: input, using: key)
        return Base64URL.encode(Array(mac).prefix(Self.fingerprintLength))
    }

    /// `payload` followed by `.` and its MAC.
    func sign(_ payload: String, label: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Self.message(payload.utf8, label: label), using: key)
        return payload + "." + Base64URL.encode(Array(mac))
    }

    /// Splits a signed token into its payload fields and checks the MAC in constant time.
    ///
    /// - Returns: `nil` when the text is not shaped like a token of `fieldCount` payload
    ///   fields; otherwise the payload's fields and whether the MAC is the one this key gives.
    func open(_ token: Substring, label: String, fieldCount: Int) -> (fields: [Substring], authentic: Bool)? {
        // Tokens are short; refusing long text bounds the work an attacker can ask for.
        guard token.utf8.count <= 512, let lastDot = token.utf8.lastIndex(of: UInt8(ascii: ".")) else { return nil }
        let payload = token[..<lastDot]
        let macText = token.utf8[token.utf8.index(after: lastDot)...]
        guard macText.count == Base64URL.encodedLength(of: Self.macLength),
            let mac = Base64URL.decode(macText)
        else { return nil }
        let fields = payload.split(separator: ".", omittingEmptySubsequences: false)
        guard fields.count == fieldCount, fields.allSatisfy({ !$0.isEmpty }) else { return nil }
        let authentic = HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Self.message(payload.utf8, label: label), using: key)
        return (fields, authentic)
    }

    private static func message(_ payload: some Collection<UInt8>, label: String) -> [UInt8] {
        var message = Array(label.utf8)
        message.append(0)
        message.append(contentsOf: payload)
        return message
    }
}

/// A decimal field as tokens write it: digits only, no sign, no leading zero (one spelling per
/// number), at most `UInt64.max`.
func parseDecimal(_ text: Substring) -> UInt64? {
    guard !text.isEmpty, text.utf8.count <= 20,
        text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
        text == "0" || text.utf8.first != UInt8(ascii: "0")
    else { return nil }
    return UInt64(text)
}

/// Compares two strings in time that depends on their lengths only, not on where they differ.
func constantTimeEquals(_ lhs: Substring, _ rhs: String) -> Bool {
    guard lhs.utf8.count == rhs.utf8.count else { return false }
    var difference: UInt8 = 0
    for (a, b) in zip(lhs.utf8, rhs.utf8) {
        difference |= a ^ b
    }
    return difference == 0
}
