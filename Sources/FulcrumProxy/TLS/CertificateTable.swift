import NIOSSL

/// The certificates a TLS frontend serves, by host name: an immutable table built by
/// `CertificateLoader` and swapped whole when the directory changes.
///
/// A name is looked up exactly first, then against wildcards (`*.example.com` covers
/// `a.example.com`, not `example.com` nor `a.b.example.com`, as RFC 6125 says); no match, or no
/// SNI at all, gets the default certificate.
struct CertificateTable: Sendable {
    let certificates: [CertificateLoader.Loaded]
    private let exact: [String: Int]
    /// `*.example.com` is stored under `example.com`.
    private let wildcards: [String: Int]
    private let defaultIndex: Int?

    /// - Parameter defaultName: the host whose certificate is the default; nil or unmatched:
    ///   the first certificate (by file name).
    init(certificates: [CertificateLoader.Loaded], defaultName: String?) {
        self.certificates = certificates
        var exact: [String: Int] = [:]
        var wildcards: [String: Int] = [:]
        // The first file claiming a name keeps it.
        for (index, certificate) in certificates.enumerated() {
            for name in certificate.names {
                if name.hasPrefix("*.") {
                    let parent = String(name.dropFirst(2))
                    if wildcards[parent] == nil { wildcards[parent] = index }
                } else if exact[name] == nil {
                    exact[name] = index
                }
            }
        }
        self.exact = exact
        self.wildcards = wildcards
        let named = defaultName.flatMap { Self.index(of: $0, exact: exact, wildcards: wildcards) }
        self.defaultIndex = named ?? (certificates.isEmpty ? nil : 0)
    }

    /// The certificate to serve for a client that asked for `serverName` (nil: no SNI).
    func certificate(for serverName: String?) -> CertificateLoader.Loaded? {
        let index = serverName.flatMap { Self.index(of: $0.lowercased(), exact: exact, wildcards: wildcards) } ?? defaultIndex
        return index.map { certificates[$0] }
    }

    private static func index(of name: String, exact: [String: Int], wildcards: [String: Int]) -> Int? {
        if let index = exact[name] { return index }
        guard let dot = name.firstIndex(of: ".") else { return nil }
        return wildcards[String(name[name.index(after: dot)...])]
    }
}
