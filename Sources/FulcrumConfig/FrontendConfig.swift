/// What a frontend or backend carries (`mode`): HTTP requests, or a TCP byte stream.
package enum ProxyMode: String, Sendable, Equatable, CaseIterable {
    case http, tcp
}

/// A listener and its routing (`frontends[]`).
package struct FrontendConfig: Sendable, Equatable {
    package var name: String
    /// HTTP (requests, routed one by one) or TCP (each connection relayed as bytes to one
    /// server of a `mode: tcp` backend; HAProxy's `mode tcp`).
    package var mode: ProxyMode = .http
    package var listen: [ListenAddress]
    package var timeouts: FrontendTimeouts
    package var limits: FrontendLimits
    /// Named conditions, in file order.
    package var acls: [ACL]
    /// Evaluated in order; the first rule whose condition holds decides.
    package var rules: [Rule]
    /// Used when no rule decides. `nil` only when there is at least one rule.
    package var defaultBackend: String?
    /// Custom error pages: status code → file path (`error_files: { 503: ./503.html }`).
    package var errorFiles: [Int: String]
    /// TLS on every address of the frontend; nil: plain HTTP.
    package var tls: FrontendTLSConfig?
    /// Answer every request with `308` to `https://host:PORT/path` (`redirect_to_https`).
    package var redirectToHTTPSPort: Int?
    /// A plain listener also accepts HTTP/2 with prior knowledge (`h2c`, default false).
    /// (TLS listeners offer HTTP/2 by ALPN, `tls.alpn`.)
    package var h2c = false
    /// Client connections open at once on this frontend (`max_connections`, HAProxy's
    /// frontend `maxconn`); nil: only the global cap applies.
    package var maxConnections: Int?
    /// Per-client request limits (`rate_limits`), checked in order before the rules.
    package var rateLimits: [RateLimitConfig] = []
    /// The anti-bot shield (`antibot`), checked after the rate limits, before the rules.
    package var antibot: AntibotConfig?
    /// Connections from these sources start with a PROXY protocol header (v1 or v2), whose
    /// client address replaces theirs (`accept_proxy: { from: [CIDR…] }`, HAProxy's
    /// `accept-proxy` limited to trusted sources); nil: no connection may send one.
    package var acceptProxyFrom: [CIDRBlock]?
    /// How the client's address is learnt from proxies in front, and passed on to servers.
    package var forwarding = ForwardingConfig()

    /// Whether its rules need the client's TLS ClientHello (`sni` and `alpn` ACLs).
    package var routesByClientHello: Bool { acls.contains(where: \.readsClientHello) }

    package init(
        name: String,
        listen: [ListenAddress],
        timeouts: FrontendTimeouts = FrontendTimeouts(),
        limits: FrontendLimits = FrontendLimits(),
        acls: [ACL] = [],
        rules: [Rule] = [],
        defaultBackend: String?,
        errorFiles: [Int: String] = [:]
    ) {
        self.name = name
        self.listen = listen
        self.timeouts = timeouts
        self.limits = limits
        self.acls = acls
        self.rules = rules
        self.defaultBackend = defaultBackend
        self.errorFiles = errorFiles
    }
}

/// TLS on a frontend (`frontends[].tls`): certificates from a watched directory, chosen per
/// connection by SNI.
package struct FrontendTLSConfig: Sendable, Equatable {
    /// A directory of certificates: every `*.pem` (chain and key in one file) or
    /// `NAME.crt` + `NAME.key` pair. Absolute after loading.
    package var certificatesDirectory: String
    /// The host name whose certificate is served when SNI is missing or matches nothing; nil:
    /// the first certificate by file name.
    package var defaultCertificate: String?
    /// The lowest version accepted (`min_version`); `profile: modern` implies 1.3.
    package var minimumVersion: TLSVersionName = .v1_2
    /// Protocols offered by ALPN, in preference order (HTTP/2 first, as browsers expect).
    package var alpn: [String] = ["h2", "http/1.1"]
    /// Versions and TLS 1.2 suites, after Mozilla's profiles (`profile`, default intermediate).
    package var profile: TLSProfile = .intermediate
    /// TLS 1.2 suites as an OpenSSL cipher string (`ciphers`), replacing the profile's list, as
    /// HAProxy's `ciphers` replaces `ssl-default-bind-ciphers`; nil: the profile's.
    package var ciphers: String?
    /// `Strict-Transport-Security` on every response of the frontend (`hsts`); nil: none.
    package var hsts: HSTSConfig?
    /// Certificates obtained and renewed from an ACME CA, kept in `certificatesDirectory`
    /// (`acme`); nil: only the files placed there.
    package var acme: ACMEConfig?

    package init(certificatesDirectory: String) {
        self.certificatesDirectory = certificatesDirectory
    }

    /// The lowest version served: the profile's, or `min_version` if that is higher.
    package var effectiveMinimumVersion: TLSVersionName {
        profile == .modern || minimumVersion == .v1_3 ? .v1_3 : .v1_2
    }

    /// The TLS 1.2 cipher string handed to BoringSSL.
    package var effectiveCiphers: String { ciphers ?? TLSProfile.intermediateCiphers }
}

/// The lowest TLS version a frontend accepts (`min_version`).
package enum TLSVersionName: String, Sendable, Equatable, CaseIterable {
    case v1_2 = "1.2"
    case v1_3 = "1.3"
}

/// `host:port` a frontend listens on. `host` is an IP literal or a name (IPv6 without brackets).
package struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    package var host: String
    package var port: Int

    package init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    package var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Client-side timeouts of a frontend (`frontends[].timeouts`).
package struct FrontendTimeouts: Sendable, Equatable {
    /// A keep-alive connection with no request in progress is closed after this long.
    package var clientIdle: Duration
    /// Once the first byte of a request arrives, its whole head must arrive within this (else 408).
    package var headerRead: Duration
    /// An HTTP/1.1 connection idle between requests this long is parked: its socket leaves its
    /// channel, which frees the channel's buffers (zero: never).
    package var parkAfter: Duration

    package init(clientIdle: Duration = .seconds(60), headerRead: Duration = .seconds(10), parkAfter: Duration = .seconds(1)) {
        self.clientIdle = clientIdle
        self.headerRead = headerRead
        self.parkAfter = parkAfter
    }
}

/// Request limits of a frontend (`frontends[].limits`).
package struct FrontendLimits: Sendable, Equatable {
    /// Largest request head (request line + headers) in bytes, else 431 (`max_header_size`, default 64 KB).
    package var maxHeaderBytes: Int
    /// Largest request body in bytes, else 413 (`max_body_size`; `nil`, the default, means unlimited).
    package var maxBodyBytes: Int?
    /// Streams an HTTP/2 client may have open at once on one connection
    /// (`max_concurrent_streams`, default 100; announced in SETTINGS).
    package var maxConcurrentStreams = 100

    package init(maxHeaderBytes: Int = 64 * 1024, maxBodyBytes: Int? = nil) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
    }
}

/// Forwarding headers on a frontend: whose `X-Forwarded-For` or `Forwarded` to believe
/// (`trusted_proxies`, `client_ip_header`), and which headers requests gain for the servers
/// (`forwarded`, `x_real_ip`).
package struct ForwardingConfig: Sendable, Equatable {
    /// The header a trusted proxy names the client in.
    package enum ClientIPHeader: String, Sendable, Equatable, CaseIterable {
        case xForwardedFor = "x-forwarded-for"
        case forwarded
    }

    /// The headers that name the client to the servers.
    package enum Headers: String, Sendable, Equatable, CaseIterable {
        /// `X-Forwarded-For`, `-Proto` and `-Host` (the default).
        case xForwarded = "x-forwarded"
        /// `Forwarded` (RFC 7239) instead.
        case rfc7239
        /// Both.
        case both

        package var includesXForwarded: Bool { self != .rfc7239 }
        package var includesForwarded: Bool { self != .xForwarded }
    }

    /// `trusted_proxies`: only connections from these addresses may name the client in
    /// `clientIPHeader`; empty: none may (the peer is the client).
    package var trustedProxies: [CIDRBlock] = []
    /// `client_ip_header`: default `X-Forwarded-For`.
    package var clientIPHeader: ClientIPHeader = .xForwardedFor
    /// `forwarded`: default the `X-Forwarded-*` headers.
    package var headers: Headers = .xForwarded
    /// `x_real_ip`: requests also carry `X-Real-IP`, the client's address (default false).
    package var xRealIP = false

    package init() {}

    /// Whether it is all defaults (nothing for the data plane to do per request).
    package var isDefault: Bool { self == ForwardingConfig() }
}
