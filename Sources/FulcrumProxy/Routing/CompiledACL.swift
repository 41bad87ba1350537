import FulcrumConfig
import NIOHTTP1

/// An ACL prepared for matching: an ACL matches when all its criteria do; a criterion with
/// several values matches when any of them does.
struct CompiledACL: Sendable {
    private enum Test: Sendable {
        case pathPrefix([String])
        case path([String])
        case pathRegex(SendableRegex)
        /// Exact names, lower-cased, and wildcard suffixes (`.example.com` for `*.example.com`).
        case host(exact: [String], suffixes: [String])
        case method([HTTPMethod])
        case header(name: String, match: HeaderMatch)
        case source([CIDRBlock])
        /// As `host`, against the TLS ClientHello's server name (`mode: tcp`).
        case serverName(exact: [String], suffixes: [String])
        /// The ClientHello offers one of these protocols (`mode: tcp`).
        case applicationProtocol([String])
    }

    private let tests: [Test]

    init(_ acl: ACL) throws {
        self.tests = try acl.criteria.map { criterion in
            switch criterion {
            case .pathPrefix(let prefixes): return .pathPrefix(prefixes)
            case .path(let paths): return .path(paths)
            case .pathRegex(let pattern): return .pathRegex(try SendableRegex(pattern))
            case .host(let hosts):
                let (exact, suffixes) = Self.namePatterns(hosts)
                return .host(exact: exact, suffixes: suffixes)
            case .serverName(let names):
                let (exact, suffixes) = Self.namePatterns(names)
                return .serverName(exact: exact, suffixes: suffixes)
            case .method(let methods): return .method(methods.map { HTTPMethod(rawValue: $0) })
            case .header(let name, let match): return .header(name: name, match: match)
            case .source(let blocks): return .source(blocks)
            case .applicationProtocol(let names): return .applicationProtocol(names)
            }
        }
    }

    /// Exact names, lower-cased, and the suffixes (`.example.com`) of `*.example.com`.
    private static func namePatterns(_ names: [String]) -> (exact: [String], suffixes: [String]) {
        let lowered = names.map { $0.lowercased() }
        return (lowered.filter { !$0.hasPrefix("*.") }, lowered.filter { $0.hasPrefix("*.") }.map { String($0.dropFirst()) })
    }

    func matches(_ head: HTTPRequestHead, client: ClientInfo) -> Bool {
        for test in tests where !Self.passes(test, head, client) {
            return false
        }
        return true
    }

    private static func passes(_ test: Test, _ head: HTTPRequestHead, _ client: ClientInfo) -> Bool {
        switch test {
        case .pathPrefix(let prefixes):
            let path = head.path
            return prefixes.contains { path.hasPrefix($0) }
        case .path(let paths):
            let path = head.path
            return paths.contains { path == $0 }
        case .pathRegex(let regex):
            return regex.matches(head.path)
        case .host(let exact, let suffixes):
            guard let host = head.headers.first(name: "host").map(hostWithoutPort)?.lowercased() else { return false }
            return exact.contains(host) || suffixes.contains { host.hasSuffix($0) }
        case .method(let methods):
            return methods.contains(head.method)
        case .header(let name, let match):
            let value = head.headers.first(name: name)
            switch match {
            case .exists(let expected): return (value != nil) == expected
            case .equals(let expected): return value == expected
            case .prefix(let prefix): return value?.hasPrefix(prefix) ?? false
            case .contains(let part): return value?.contains(part) ?? false
            }
        case .source(let blocks):
            guard let bytes = client.addressBytes else { return false }
            return blocks.contains { $0.contains(bytes) }
        case .serverName(let exact, let suffixes):
            guard let name = client.serverName?.lowercased() else { return false }
            return exact.contains(name) || suffixes.contains { name.hasSuffix($0) }
        case .applicationProtocol(let names):
            return client.offeredProtocols.contains { names.contains($0) }
        }
    }

    private static func hostWithoutPort(_ host: String) -> Substring {
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            return host[host.index(after: host.startIndex)..<close]
        }
        if let colon = host.lastIndex(of: ":") { return host[..<colon] }
        return host[...]
    }
}

extension HTTPRequestHead {
    /// The request target without its query string.
    var path: Substring {
        let uri = self.uri
        if let question = uri.utf8.firstIndex(of: UInt8(ascii: "?")) { return uri[..<question] }
        return uri[...]
    }
}

/// A compiled regular expression that may be shared across event loops.
///
/// `Regex` values are immutable and matching does not mutate them; the wrapper only exists
/// because `Regex<AnyRegexOutput>` is not declared `Sendable`.
struct SendableRegex: @unchecked Sendable {
    private let regex: Regex<AnyRegexOutput>

    init(_ pattern: String) throws {
        do {
            self.regex = try Regex(pattern)
        } catch {
            throw RouterError.invalidRegex(pattern)
        }
    }

    func matches(_ text: Substring) -> Bool {
        (try? regex.firstMatch(in: text)) != nil
    }
}
