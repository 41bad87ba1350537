import FulcrumConfig
import NIOHTTP1

/// Where a request goes, as decided by a frontend's rules.
enum RouteDecision: Equatable {
    /// Forward to the backend with this index in the snapshot.
    case backend(Int)
    /// Answer locally with this status and an error page.
    case deny(status: Int)
}

/// A frontend's ACLs and rules, compiled to indices so that routing a request does no
/// lookups by name and evaluates each ACL at most once, and only when a rule needs it.
final class Router: Sendable {
    private struct CompiledRule: Sendable {
        var decision: RouteDecision
        var required: [Int]
        var forbidden: [Int]
    }

    private let acls: [CompiledACL]
    private let rules: [CompiledRule]
    private let defaultDecision: RouteDecision?

    init(config: FrontendConfig, backendIndex: [String: Int]) throws {
        var aclIndex: [String: Int] = [:]
        var acls: [CompiledACL] = []
        for acl in config.acls {
            aclIndex[acl.name] = acls.count
            acls.append(try CompiledACL(acl))
        }
        func indices(_ names: [String]) throws -> [Int] {
            try names.map { name in
                guard let index = aclIndex[name] else { throw RouterError.unknownACL(name) }
                return index
            }
        }
        func decision(_ action: RuleAction) throws -> RouteDecision {
            switch action {
            case .useBackend(let name):
                guard let index = backendIndex[name] else { throw RouterError.unknownBackend(name) }
                return .backend(index)
            case .deny(let status):
                return .deny(status: status)
            }
        }
        self.acls = acls
        self.rules = try config.rules.map {
            CompiledRule(decision: try decision($0.action), required: try indices($0.ifACLs), forbidden: try indices($0.unlessACLs))
        }
        if let name = config.defaultBackend {
            guard let index = backendIndex[name] else { throw RouterError.unknownBackend(name) }
            self.defaultDecision = .backend(index)
        } else {
            self.defaultDecision = nil
        }
    }

    /// The decision for a request; `nil` when no rule matches and there is no default backend.
    func route(_ head: HTTPRequestHead, client: ClientInfo) -> RouteDecision? {
        guard !rules.isEmpty else { return defaultDecision }
        // Memo of evaluated ACLs: bit i of `known` says ACL i was evaluated, of `matched` its result.
        var known: UInt64 = 0
        var matched: UInt64 = 0
        func matches(_ index: Int) -> Bool {
            guard index < 64 else { return acls[index].matches(head, client: client) }
            let bit: UInt64 = 1 << UInt64(index)
            if known & bit == 0 {
                known |= bit
                if acls[index].matches(head, client: client) { matched |= bit }
            }
            return matched & bit != 0
        }
        for rule in rules where rule.required.allSatisfy(matches) && !rule.forbidden.contains(where: matches) {
            return rule.decision
        }
        return defaultDecision
    }
}

enum RouterError: Error, CustomStringConvertible {
    case unknownACL(String)
    case unknownBackend(String)
    case invalidRegex(String)

    var description: String {
        switch self {
        case .unknownACL(let name): "rule names undefined ACL \"\(name)\""
        case .unknownBackend(let name): "undefined backend \"\(name)\""
        case .invalidRegex(let pattern): "invalid regular expression \"\(pattern)\""
        }
    }
}
