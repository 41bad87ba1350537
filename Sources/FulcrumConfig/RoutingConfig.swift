/// A named condition on a request (`frontends[].acls.NAME`).
///
/// An ACL matches when *every* criterion it lists matches; a criterion that lists several
/// values matches when *any* of them does (HAProxy: several values of one ACL are OR-ed).
package struct ACL: Sendable, Equatable {
    package var name: String
    package var criteria: [ACLCriterion]

    package init(name: String, criteria: [ACLCriterion]) {
        self.name = name
        self.criteria = criteria
    }

    /// Whether it tests what a TLS ClientHello says (`sni`, `alpn`).
    package var readsClientHello: Bool {
        criteria.contains { criterion in
            switch criterion {
            case .serverName, .applicationProtocol: true
            default: false
            }
        }
    }
}

/// One test an ACL applies to a request.
package enum ACLCriterion: Sendable, Equatable {
    /// `path_prefix: /api/` or a list: the path (without query) starts with one of them.
    case pathPrefix([String])
    /// `path: /login` or a list: the path (without query) equals one of them.
    case path([String])
    /// `path_regex: '\.(css|js)$'`: the path (without query) matches the regular expression.
    /// The pattern was compiled once during validation, so it is known to be valid.
    case pathRegex(String)
    /// `host: blog.example.com` or a list: the Host header (port removed, case-insensitive) is one of them.
    /// A leading `*.` matches any subdomain (`*.example.com`).
    case host([String])
    /// `method: [POST, PUT]` (upper-cased during loading).
    case method([String])
    /// `header: { name: X-Beta, equals: "1" }` (or `prefix:`, `contains:`, `exists: true`).
    case header(name: String, match: HeaderMatch)
    /// `src: ["10.0.0.0/8", "::1/128"]`: the client address is in one of the blocks.
    case source([CIDRBlock])
    /// `sni: db.example.com` or a list (`mode: tcp` only): the server name the client's TLS
    /// ClientHello asks for, read without terminating TLS, is one of them (lower-cased; a
    /// leading `*.` matches any subdomain, as in `host`).
    case serverName([String])
    /// `alpn: h2` or a list (`mode: tcp` only): the client's TLS ClientHello offers one of these
    /// application protocols (ALPN; compared exactly, as the protocol IDs are bytes).
    case applicationProtocol([String])
}

/// How a header criterion compares the header's value (first value when repeated).
package enum HeaderMatch: Sendable, Equatable {
    case equals(String)
    case prefix(String)
    case contains(String)
    /// Matches when the header is present (`exists: true`) or absent (`exists: false`).
    case exists(Bool)
}

/// An IPv4 or IPv6 network, `10.0.0.0/8` or `2001:db8::/32`. A bare address means /32 or /128.
package struct CIDRBlock: Sendable, Equatable, CustomStringConvertible {
    /// Network address bytes: 4 for IPv4, 16 for IPv6. Host bits are zero.
    package var network: [UInt8]
    package var prefixLength: Int

    package init(network: [UInt8], prefixLength: Int) {
        self.network = network
        self.prefixLength = prefixLength
    }

    /// Whether `address` (4 or 16 bytes) lies in this block. An IPv4-mapped IPv6
    /// address (`::ffff:a.b.c.d`) matches IPv4 blocks.
    package func contains(_ address: [UInt8]) -> Bool {
        var bytes = address
        if bytes.count == 16, network.count == 4,
            bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff
        {
            bytes = Array(bytes[12..<16])
        }
        guard bytes.count == network.count else { return false }
        var remaining = prefixLength
        for index in 0..<bytes.count where remaining > 0 {
            let bits = min(8, remaining)
            let mask: UInt8 = bits == 8 ? 0xff : ~(0xff >> UInt8(bits))
            if bytes[index] & mask != network[index] { return false }
            remaining -= bits
        }
        return true
    }

    package var description: String {
        if network.count == 4 {
            return network.map(String.init).joined(separator: ".") + "/\(prefixLength)"
        }
        var groups: [String] = []
        for index in stride(from: 0, to: 16, by: 2) {
            groups.append(String(UInt16(network[index]) << 8 | UInt16(network[index + 1]), radix: 16))
        }
        return groups.joined(separator: ":") + "/\(prefixLength)"
    }
}

/// One routing rule (`frontends[].rules[]`): an action guarded by ACL names.
package struct Rule: Sendable, Equatable {
    package var action: RuleAction
    /// Every ACL named here must match (empty = no requirement).
    package var ifACLs: [String]
    /// No ACL named here may match (empty = no requirement).
    package var unlessACLs: [String]

    package init(action: RuleAction, ifACLs: [String] = [], unlessACLs: [String] = []) {
        self.action = action
        self.ifACLs = ifACLs
        self.unlessACLs = unlessACLs
    }
}

/// What a rule does when its condition holds.
///
/// `use_backend`, `deny`, `redirect` and `tarpit` decide the request: the first rule whose
/// condition holds and that has one of them wins. `set_header` and `del_header` change the
/// request's headers (as the server receives them) and rule evaluation goes on.
package enum RuleAction: Sendable, Equatable {
    /// `use_backend: NAME`: forward to that backend.
    case useBackend(String)
    /// `deny: 403`: answer with this status (an error page) without contacting a backend.
    case deny(status: Int)
    /// `redirect: { to: "https://example.com{path}", code: 301 }`: answer with a redirect to
    /// `to`, in which `{host}`, `{path}`, `{query}` (with its `?`, or empty) and `{uri}`
    /// (path and query) are replaced with the request's.
    case redirect(to: String, code: Int)
    /// `tarpit: 10s`: hold the request this long, then answer 403 and close the connection
    /// (HAProxy's `http-request tarpit`): a client that floods is slowed down at the cost of
    /// one idle connection, not of a backend request.
    case tarpit(Duration)
    /// `set_header: { name: X-Env, value: prod }`: replace (or add) a request header.
    case setHeader(name: String, value: String)
    /// `del_header: X-Internal`: remove a request header.
    case deleteHeader(String)

    /// Whether the action decides the request (the rest do their part and go on).
    package var isFinal: Bool {
        switch self {
        case .useBackend, .deny, .redirect, .tarpit: true
        case .setHeader, .deleteHeader: false
        }
    }
}
