internal import Foundation

extension ConfigParser {
    static let frontendTLSKeys = ["certificates", "default_certificate", "min_version", "alpn", "profile", "ciphers", "hsts", "acme"]
    static let acmeKeys = ["directory", "email", "domains", "challenge", "ca"]
    static let hstsKeys = ["max_age", "include_subdomains", "preload"]
    /// ALPN protocols Fulcrum can serve on a frontend.
    static let supportedALPN = ["h2", "http/1.1"]

    /// `tls: { certificates: ./certs, default_certificate: example.com, min_version: "1.2",
    /// alpn: [h2, http/1.1], profile: intermediate, ciphers: "...", hsts: { max_age: 730d } }`.
    /// The directory must exist now; the certificates in it are read when the proxy starts
    /// (and whenever they change), so a bad file is reported then without stopping the rest.
    func parseFrontendTLS(_ reader: YAMLNodeReader) -> FrontendTLSConfig? {
        guard let mapping = reader.mapping(allowedKeys: Self.frontendTLSKeys) else { return nil }
        guard let directoryReader = mapping.required("certificates"), let written = directoryReader.nonEmptyString() else {
            return nil
        }
        let directory = resolve(written)
        var isDirectory: ObjCBool = false
        let shown = directory == written ? quoted(written) : "\(quoted(written)) (\(directory))"
        if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            directoryReader.report("\(shown) does not exist")
        } else if !isDirectory.boolValue {
            directoryReader.report("\(shown) is not a directory")
        }
        var tls = FrontendTLSConfig(certificatesDirectory: directory)
        if let name = mapping["default_certificate"]?.nonEmptyString() {
            tls.defaultCertificate = name.lowercased()
        }
        if let profile = mapping["profile"]?.choice(TLSProfile.self, named: "TLS profile") {
            tls.profile = profile
            // What the profile implies, so that the rendered file says it and reads back.
            tls.minimumVersion = profile.minimumVersion
        }
        if let versionReader = mapping["min_version"], let version = versionReader.choice(TLSVersionName.self, named: "TLS version") {
            if tls.profile == .modern, version != .v1_3 {
                versionReader.report("the modern profile is TLS 1.3 only; remove min_version or use profile: intermediate")
            } else {
                tls.minimumVersion = version
            }
        }
        if let ciphersReader = mapping["ciphers"] {
            tls.ciphers = parseCiphers(ciphersReader, tls: tls)
        }
        if let alpnReader = mapping["alpn"], let items = alpnReader.scalarOrSequence(expected: "a protocol or a list of protocols") {
            var protocols: [String] = []
            for item in items {
                guard let name = item.nonEmptyString() else { continue }
                if Self.supportedALPN.contains(name) {
                    protocols.append(name)
                } else {
                    item.report("\(quoted(name)) is not a supported protocol (expected one of: \(Self.supportedALPN.joined(separator: ", ")))")
                }
            }
            if !protocols.isEmpty { tls.alpn = protocols }
        }
        if let hsts = mapping["hsts"] {
            tls.hsts = parseHSTS(hsts)
        }
        if let acme = mapping["acme"] {
            tls.acme = parseACME(acme)
        }
        return tls
    }

    /// `acme: { directory: URL, email: ops@example.com, domains: [example.com], challenge:
    /// http-01 | tls-alpn-01, ca: ./ca.pem }`.
    private func parseACME(_ reader: YAMLNodeReader) -> ACMEConfig? {
        guard let mapping = reader.mapping(allowedKeys: Self.acmeKeys) else { return nil }
        var domains: [String] = []
        if let domainsReader = mapping.required("domains"), let items = domainsReader.scalarOrSequence(expected: "a name or a list of names") {
            for item in items {
                guard let name = item.nonEmptyString()?.lowercased() else { continue }
                let labels = name.split(separator: ".", omittingEmptySubsequences: false)
                if labels.count < 2 || labels.contains(where: { $0.isEmpty || $0.count > 63 })
                    || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") })
                {
                    item.report(
                        "\(quoted(name)) is not a domain name a CA issues for (letters, digits, \"-\", dots between labels; no wildcard: HTTP-01 and TLS-ALPN-01 cannot prove one)"
                    )
                } else {
                    domains.append(name)
                }
            }
            if items.isEmpty { domainsReader.report("at least one domain is required") }
        }
        var acme = ACMEConfig(directory: ACMEConfig.letsEncrypt, domains: domains)
        if let directoryReader = mapping["directory"], let url = directoryReader.nonEmptyString() {
            if url.lowercased().hasPrefix("https://") {
                acme.directory = url
            } else {
                directoryReader.report("\(quoted(url)) is not an https:// URL (ACME is spoken over HTTPS)")
            }
        }
        if let email = mapping["email"]?.nonEmptyString() {
            if email.contains("@"), !email.contains(" ") {
                acme.email = email
            } else {
                mapping["email"]?.report("\(quoted(email)) is not an email address")
            }
        }
        if let challenge = mapping["challenge"]?.choice(ACMEChallenge.self, named: "ACME challenge") {
            acme.challenge = challenge
        }
        if let caReader = mapping["ca"], let written = caReader.nonEmptyString() {
            acme.caFile = resolve(written)
            checkReadableFile(acme.caFile!, written: written, at: caReader)
        }
        return acme
    }

    /// `ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256:..."`, checked by BoringSSL's own parser
    /// (`TLSCipherList`), since that is what will apply it.
    private func parseCiphers(_ reader: YAMLNodeReader, tls: FrontendTLSConfig) -> String? {
        guard let text = reader.nonEmptyString() else { return nil }
        if tls.effectiveMinimumVersion == .v1_3 {
            // Said rather than ignored: whoever wrote it expects it to change something.
            let why = tls.profile == .modern ? "the modern profile is TLS 1.3 only" : "min_version is 1.3"
            reader.report("ciphers choose TLS 1.2 suites, and \(why) (TLS 1.3's suites are fixed)")
            return nil
        }
        if let problem = TLSCipherList.problem(in: text) {
            reader.report(problem)
            return nil
        }
        return text
    }

    /// `hsts: { max_age: 63072000, include_subdomains: true, preload: false }` (`max_age` in
    /// seconds, as the header has it, or as a duration: `8760h`, `730d`).
    private func parseHSTS(_ reader: YAMLNodeReader) -> HSTSConfig? {
        guard let mapping = reader.mapping(allowedKeys: Self.hstsKeys) else { return nil }
        var hsts = HSTSConfig()
        if let maxAge = mapping["max_age"], let seconds = parseMaxAge(maxAge) {
            hsts.maxAgeSeconds = seconds
        }
        if let include = mapping["include_subdomains"]?.bool() {
            hsts.includeSubdomains = include
        }
        if let preloadReader = mapping["preload"], let preload = preloadReader.bool() {
            hsts.preload = preload
            if preload, !hsts.includeSubdomains || hsts.maxAgeSeconds < HSTSConfig.preloadMinimumMaxAgeSeconds {
                // The preload lists refuse such a header; sending it would only mislead.
                preloadReader.report(
                    "preload needs include_subdomains: true and a max_age of at least a year (31536000), as the preload lists require"
                )
            }
        }
        return hsts
    }

    private func parseMaxAge(_ reader: YAMLNodeReader) -> Int? {
        guard let text = reader.string() else { return nil }
        if let seconds = Int(text), seconds >= 0 { return seconds }
        // Days, here only: an HSTS age is counted in them, a timeout never is.
        if text.hasSuffix("d"), let days = Int(text.dropLast()), days >= 0, days <= Int.max / 86400 {
            return days * 86400
        }
        guard let duration = parseDuration(text), duration.components.attoseconds == 0 else {
            reader.report("\(quoted(text)) is not a valid max_age (expected seconds, 63072000, or a duration: 8760h, 730d)")
            return nil
        }
        return Int(duration.components.seconds)
    }
}
