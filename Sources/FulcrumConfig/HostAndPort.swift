/// `host:port` as written in `listen` and server `address` values.
///
/// The host is an IPv4 literal, a bracketed IPv6 literal (`[::1]:8080`, stored without the
/// brackets) or a host name. Host names are only checked for shape here; they are resolved
/// when the configuration is applied, so a loaded configuration never depends on DNS.
struct HostAndPort: Equatable {
    var host: String
    var port: Int

    /// Why a `host:port` text was rejected; `message` is shown as is.
    struct ParseError: Error {
        var message: String
    }

    init(parsing text: String) throws(ParseError) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let closing = text.firstIndex(of: "]"),
                parseIPv6(text[text.index(after: text.startIndex)..<closing]) != nil
            else {
                throw ParseError(message: "\(quoted(text)) is not a valid IPv6 address")
            }
            hostPart = text[text.index(after: text.startIndex)..<closing]
            let afterBracket = text[text.index(after: closing)...]
            guard afterBracket.first == ":" else {
                throw ParseError(message: "\(quoted(text)) has no port (expected host:port, e.g. [::1]:8080)")
            }
            portPart = afterBracket.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw ParseError(message: "\(quoted(text)) has no port (expected host:port, e.g. 127.0.0.1:8080)")
            }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            guard !hostPart.contains(":") else {
                throw ParseError(message: "\(quoted(text)): an IPv6 address must be in brackets, e.g. [::1]:8080")
            }
            guard !hostPart.isEmpty else {
                throw ParseError(message: "\(quoted(text)) has no host (use 0.0.0.0 or [::] for every address)")
            }
            guard Self.isValidHostName(hostPart) else {
                throw ParseError(message: "\(quoted(text)) is not a valid host")
            }
        }
        guard (1...5).contains(portPart.count),
            portPart.allSatisfy(\.isASCIIDigit),
            let port = Int(portPart),
            (1...65535).contains(port)
        else {
            throw ParseError(message: "\(quoted(text)) is not a valid port")
        }
        self.host = String(hostPart)
        self.port = port
    }

    /// An IPv4 literal, or a DNS name: dot-separated labels of letters, digits, `-` and `_`.
    /// A host made of digits and dots only must be a valid IPv4 address, so that a typo
    /// such as `127.0.0.256` is not taken for a name and looked up.
    static func isValidHostName(_ host: Substring) -> Bool {
        if host.allSatisfy({ $0.isASCIIDigit || $0 == "." }) {
            return parseIPv4(host) != nil
        }
        guard host.count <= 253 else { return false }
        var labels = host.split(separator: ".", omittingEmptySubsequences: false)
        if labels.count > 1, labels.last?.isEmpty == true {
            labels.removeLast()  // a fully qualified name may end with a dot
        }
        return labels.allSatisfy { label in
            (1...63).contains(label.count)
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
        }
    }
}
