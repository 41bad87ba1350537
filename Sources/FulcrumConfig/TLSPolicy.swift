/// A frontend's TLS protocol policy (`tls.profile`), after Mozilla's server-side TLS
/// recommendations (guidelines 5.7).
///
/// - `intermediate` (the default): TLS 1.2 and 1.3. TLS 1.2 offers only forward-secret AEAD
///   suites (ECDHE with AES-GCM or ChaCha20-Poly1305), no CBC suite (LUCKY13), no static RSA
///   key exchange. Mozilla's list also has three DHE-RSA suites; BoringSSL, under
///   swift-nio-ssl, has no finite-field DHE at all, so they are left out.
/// - `modern`: TLS 1.3 only, whose suites are all AEAD and not configurable.
///
/// TLS 1.3's suites are BoringSSL's fixed set (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305);
/// `tls.ciphers` only ever changes TLS 1.2.
package enum TLSProfile: String, Sendable, Equatable, CaseIterable {
    case intermediate
    case modern

    /// The TLS 1.2 suites of Mozilla's intermediate profile that BoringSSL implements, in its
    /// order of preference (ECDSA before RSA, AES-128 before AES-256 before ChaCha20).
    package static let intermediateCiphers = [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    /// The lowest version the profile accepts.
    package var minimumVersion: TLSVersionName {
        switch self {
        case .intermediate: .v1_2
        case .modern: .v1_3
        }
    }
}

/// `Strict-Transport-Security` on the responses of a TLS frontend (`tls.hsts`, RFC 6797).
package struct HSTSConfig: Sendable, Equatable {
    /// How long browsers remember to use HTTPS only, in whole seconds (`max_age`; default two
    /// years, Mozilla's recommendation; 0 tells browsers to forget the policy).
    package var maxAgeSeconds: Int
    /// The policy covers every subdomain too (`include_subdomains`, default false).
    package var includeSubdomains: Bool
    /// Consent to browsers' preload lists (`preload`, default false). The lists require
    /// `include_subdomains` and at least a year, so the parser asks for both.
    package var preload: Bool

    package static let defaultMaxAgeSeconds = 63_072_000
    /// hstspreload.org's minimum for `preload`.
    package static let preloadMinimumMaxAgeSeconds = 31_536_000

    package init(maxAgeSeconds: Int = defaultMaxAgeSeconds, includeSubdomains: Bool = false, preload: Bool = false) {
        self.maxAgeSeconds = maxAgeSeconds
        self.includeSubdomains = includeSubdomains
        self.preload = preload
    }

    /// The header's value, built once when the configuration is compiled.
    package var headerValue: String {
        var value = "max-age=\(maxAgeSeconds)"
        if includeSubdomains { value += "; includeSubDomains" }
        if preload { value += "; preload" }
        return value
    }
}
