import Hummingbird

/// Answers a request for a path the API serves, made with a method it does not serve there,
/// with `405 Method Not Allowed` and an `Allow` header listing the methods it does (RFC 9110
/// §15.5.6), HEAD wherever GET is (§9.3.2). A path the API does not serve stays a 404.
///
/// Hummingbird's router answers both with 404. This middleware is added after the routes, so
/// it only wraps the router's not-found responder: a request it sees matched no route.
struct MethodNotAllowed<Context: RequestContext>: RouterMiddleware {
    let table: AllowedMethods

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let (route, methods) = table.methods(forPath: request.uri.path), !methods.contains(request.method.rawValue) else {
            return try await next(request, context)
        }
        let allow = methods.joined(separator: ", ")
        throw AdminProblem(
            .methodNotAllowed,
            "\(request.method.rawValue) is not a method of \(route); it allows \(allow).",
            headers: [.allow: allow]
        )
    }
}

/// The methods each route pattern of the API allows, and a lookup by request path that
/// matches as Hummingbird's router does (`:name` is any one segment; empty segments are
/// skipped).
struct AllowedMethods: Sendable {
    private struct Entry: Sendable {
        let segments: [String]
        /// The pattern as the OpenAPI document writes it (`/api/backends/{backend}`).
        let documented: String
        var methods: Set<String>
    }

    private let entries: [Entry]

    /// The order methods are listed in `Allow`.
    private static let order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]

    init(routes: [AdminRoute]) {
        var entries: [Entry] = []
        for route in routes {
            let segments = route.path.split(separator: "/").map(String.init)
            if let index = entries.firstIndex(where: { $0.segments == segments }) {
                entries[index].methods.insert(route.method)
            } else {
                let documented = "/" + segments.map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : $0 }.joined(separator: "/")
                entries.append(Entry(segments: segments, documented: documented, methods: [route.method]))
            }
        }
        self.entries = entries
    }

    /// The route `path` belongs to (as documented) and the methods it allows, in `Allow`'s
    /// order; nil when no route has that path.
    func methods(forPath path: String) -> (route: String, methods: [String])? {
        let segments = path.split(separator: "/")
        let matching = entries.filter { entry in
            entry.segments.count == segments.count
                && zip(entry.segments, segments).allSatisfy { pattern, segment in pattern.hasPrefix(":") || pattern == segment }
        }
        guard let first = matching.first else { return nil }
        var methods = matching.reduce(into: Set<String>()) { $0.formUnion($1.methods) }
        if methods.contains("GET") { methods.insert("HEAD") }
        let ordered = Self.order.filter(methods.contains) + methods.subtracting(Self.order).sorted()
        return (first.documented, ordered)
    }
}
