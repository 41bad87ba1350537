import Hummingbird

/// The admin API's access rule: a Bearer token on every call that changes something, and on
/// every call when the listener is not on loopback (where anyone on the network could read
/// the configuration and the servers' addresses). Two reads are open everywhere, for they hold
/// no data: the dashboard page (`GET /`; every call it makes goes through this rule, and a
/// browser cannot attach a token to a navigation), and `GET /api/health` (load balancers' and
/// Kubernetes' probes cannot send a secret header; HAProxy's `monitor-uri` is open too).
struct AdminAuthentication<Context: RequestContext>: RouterMiddleware {
    /// nil: no token configured, so nothing can be changed.
    let token: String?
    let tokenRequiredForReads: Bool

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // Validating a configuration changes nothing, though it is a POST.
        let reads =
            request.method == .get || request.method == .head
            || request.method == .post && request.uri.path == "/api/config/validate"
        let open = (request.method == .get || request.method == .head) && (request.uri.path == "/" || request.uri.path == "/api/health")
        if !reads || tokenRequiredForReads && !open {
            guard let token else {
                throw AdminProblem(.forbidden, "Changes need a token: set global.admin.token_env and start Fulcrum with that variable set.")
            }
            guard let presented = Self.bearerToken(in: request), Self.constantTimeEquals(presented, token) else {
                throw AdminProblem(
                    .unauthorized,
                    "This call needs the header \"Authorization: Bearer TOKEN\" with the admin token.",
                    headers: [.wwwAuthenticate: "Bearer realm=\"fulcrum-admin\""]
                )
            }
        }
        return try await next(request, context)
    }

    private static func bearerToken(in request: Request) -> Substring? {
        guard let value = request.headers[.authorization] else { return nil }
        let prefix = "bearer "
        guard value.count > prefix.count, value.prefix(prefix.count).lowercased() == prefix else { return nil }
        return value.dropFirst(prefix.count)
    }

    /// Compares without stopping at the first difference, so the time taken does not tell an
    /// attacker how much of a guess was right.
    private static func constantTimeEquals(_ lhs: Substring, _ rhs: String) -> Bool {
        let left = Array(lhs.utf8)
        let right = Array(rhs.utf8)
        var difference = UInt8(truncatingIfNeeded: left.count ^ right.count)
        for index in 0..<max(left.count, right.count) {
            let a = index < left.count ? left[index] : 0
            let b = index < right.count ? right[index] : 0
            difference |= a ^ b
        }
        return difference == 0
    }
}

/// Turns every error into `application/problem+json`: ours as they are, Hummingbird's (an
/// unknown route, a body that is not JSON) with their status and message.
struct ProblemResponses<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let problem as AdminProblem {
            throw problem
        } catch let error as HTTPError {
            throw AdminProblem(error.status, error.body ?? error.status.reasonPhrase)
        } catch let error as DecodingError {
            throw AdminProblem(.badRequest, "The body is not the JSON this call expects: \(Self.describe(error))")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, _): "missing \"\(key.stringValue)\""
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            context.codingPath.isEmpty
                ? context.debugDescription
                : "\(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)"
        @unknown default: "\(error)"
        }
    }
}
