import FulcrumConfig
import NIOCore
import NIOHTTP1

/// Where a request goes, as decided by a frontend's rules.
enum RouteDecision: Equatable {
    /// Forward to the backend with this index in the snapshot.
    case backend(Int)
    /// Answer locally with this status and an error page.
    case deny(status: Int)
    /// Answer with a redirect to `location` (its `{host}`, `{path}`, `{query}` and `{uri}`
    /// still to be filled in from the request).
    case redirect(location: String, status: Int)
    /// Hold the request this long, then answer 403 and close.
    case tarpit(TimeAmount)
}

/// A change a rule makes to a request's headers before it is forwarded.
enum HeaderEdit: Equatable {
    case set(name: String, value: String)
    case delete(name: String)
}

/// What a frontend's rules made of a request: where it goes (nil: nowhere — no rule decided and
/// there is no default backend) and the header changes of the rules that matched on the way.
struct RouteResult {
    var decision: RouteDecision?
    var headerEdits: [HeaderEdit] = []
}

/// A frontend's ACLs and rules, compiled to indices so that routing a request does no
/// lookups by name and evaluates each ACL at most once, and only when a rule needs it.
final class Router: Sendable {
    private struct CompiledRule: Sendable {
        enum Action: Sendable {
            case decide(RouteDecision)
            case edit(HeaderEdit)
        }

        var action: Action
        var required: [Int]
        var forbidden: [Int]
    }

    /// An `if`/`unless` condition by ACL index (for rate limits and the anti-bot shield, which
    /// use the frontend's ACLs like rules do).
    struct Condition: Sendable {
        var required: [Int]
        var forbidden: [Int]

        static let always = Condition(required: [], forbidden: [])
    }

    private let acls: [CompiledACL]
    private let aclIndex: [String: Int]
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
        func compile(_ action: RuleAction) throws -> CompiledRule.Action {
            switch action {
            case .useBackend(let name):
                guard let index = backendIndex[name] else { throw RouterError.unknownBackend(name) }
                return .decide(.backend(index))
            case .deny(let status):
                return .decide(.deny(status: status))
            case .redirect(let to, let code):
                return .decide(.redirect(location: to, status: code))
            case .tarpit(let delay):
                return .decide(.tarpit(TimeAmount(delay)))
            case .setHeader(let name, let value):
                return .edit(.set(name: name, value: value))
            case .deleteHeader(let name):
                return .edit(.delete(name: name))
            }
        }
        self.acls = acls
        self.aclIndex = aclIndex
        self.rules = try config.rules.map {
            CompiledRule(action: try compile($0.action), required: try indices($0.ifACLs), forbidden: try indices($0.unlessACLs))
        }
        if let name = config.defaultBackend {
            guard let index = backendIndex[name] else { throw RouterError.unknownBackend(name) }
            self.defaultDecision = .backend(index)
        } else {
            self.defaultDecision = nil
        }
    }

    /// The condition `if: ifACLs, unless: unlessACLs`, by index.
    func condition(if ifACLs: [String], unless unlessACLs: [String]) throws -> Condition {
        func indices(_ names: [String]) throws -> [Int] {
            try names.map { name in
                guard let index = aclIndex[name] else { throw RouterError.unknownACL(name) }
                return index
            }
        }
        return Condition(required: try indices(ifACLs), forbidden: try indices(unlessACLs))
    }

    /// Whether `condition` holds for a request.
    func holds(_ condition: Condition, _ head: HTTPRequestHead, client: ClientInfo) -> Bool {
        condition.required.allSatisfy { acls[$0].matches(head, client: client) }
            && !condition.forbidden.contains { acls[$0].matches(head, client: client) }
    }

    /// The decision for a request (nil when no rule decides and there is no default backend),
    /// with the header changes of the rules that matched before the deciding one.
    func route(_ head: HTTPRequestHead, client: ClientInfo) -> RouteResult {
        guard !rules.isEmpty else { return RouteResult(decision: defaultDecision) }
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
        var result = RouteResult(decision: defaultDecision)
        for rule in rules where rule.required.allSatisfy(matches) && !rule.forbidden.contains(where: matches) {
            switch rule.action {
            case .decide(let decision):
                result.decision = decision
                return result
            case .edit(let edit):
                result.headerEdits.append(edit)
            }
        }
        return result
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
