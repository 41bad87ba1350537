/// The request-target of an HTTP request, split into its path and query parameters.
///
/// This is deliberately minimal: the worker's endpoints only take small numeric query parameters, so
/// names and values are not percent-decoded.
struct RequestTarget: Sendable {
    /// The path, without query or fragment, e.g. `/work`.
    var path: Substring
    /// The query parameters in order. A parameter without `=` has an empty value.
    var queryItems: [(name: Substring, value: Substring)]

    init(_ uri: String) {
        var rest = Substring(uri)

        // Proxies may send the absolute form (`http://host:port/path?query`); only path and query matter.
        if let schemeEnd = rest.firstRange(of: "://") {
            rest = rest[schemeEnd.upperBound...]
            rest = rest.firstIndex(of: "/").map { rest[$0...] } ?? "/"
        }
        if let hash = rest.firstIndex(of: "#") {
            rest = rest[..<hash]
        }

        guard let questionMark = rest.firstIndex(of: "?") else {
            self.path = rest
            self.queryItems = []
            return
        }
        self.path = rest[..<questionMark]
        self.queryItems = rest[rest.index(after: questionMark)...]
            .split(separator: "&", omittingEmptySubsequences: true)
            .map { item in
                guard let equals = item.firstIndex(of: "=") else {
                    return (name: item, value: "")
                }
                return (name: item[..<equals], value: item[item.index(after: equals)...])
            }
    }

    /// The value of the first query parameter called `name`.
    func queryValue(_ name: String) -> Substring? {
        self.queryItems.first { $0.name == name }?.value
    }

    /// The first query parameter called `name` as an `Int`.
    ///
    /// - Returns: `nil` if absent.
    /// - Throws: ``InvalidQueryParameter`` if present but not an integer in `range`.
    func intQueryValue(_ name: String, in range: ClosedRange<Int>) throws(InvalidQueryParameter) -> Int? {
        guard let text = self.queryValue(name) else {
            return nil
        }
        guard let value = Int(text), range.contains(value) else {
            throw InvalidQueryParameter(
                reason: "query parameter \(name) must be an integer in \(range.lowerBound)...\(range.upperBound)"
            )
        }
        return value
    }
}

/// A query parameter the endpoint can't use; answered with a `400`.
struct InvalidQueryParameter: Error {
    var reason: String
}
