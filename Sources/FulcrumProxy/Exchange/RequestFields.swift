import NIOHTTP1

/// Values read out of a request head by name: a cookie, a query parameter. Rate-limit keys and
/// hash keys read them alike.
enum RequestFields {
    /// The value of cookie `name` (names are case-sensitive, RFC 6265), from any `Cookie`
    /// header; nil when there is none.
    static func cookie(_ name: String, in headers: HTTPHeaders) -> String? {
        for header in headers[canonicalForm: "cookie"] {
            for pair in header.split(separator: ";") {
                let trimmed = pair.drop { $0 == " " }
                guard trimmed.hasPrefix(name), trimmed.dropFirst(name.count).first == "=" else { continue }
                return String(trimmed.dropFirst(name.count + 1))
            }
        }
        return nil
    }

    /// The raw (still percent-encoded) value of the first query parameter `name` in `uri`;
    /// nil when there is none. A parameter without `=` has the empty value.
    static func query(_ name: String, in uri: String) -> String? {
        guard let questionMark = uri.firstIndex(of: "?") else { return nil }
        var query = uri[uri.index(after: questionMark)...]
        if let fragment = query.firstIndex(of: "#") { query = query[..<fragment] }
        for parameter in query.split(separator: "&") {
            guard parameter.hasPrefix(name) else { continue }
            let rest = parameter.dropFirst(name.count)
            if rest.isEmpty { return "" }
            if rest.first == "=" { return String(rest.dropFirst()) }
        }
        return nil
    }
}
