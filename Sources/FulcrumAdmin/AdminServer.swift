import FulcrumBalancing
import FulcrumConfig
import FulcrumProxy
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// The admin REST API (`global.admin`): JSON over HTTP on its own listener, for scripts and
/// operators to read the live state and to change it without a restart.
///
/// The live dashboard: `GET /` (an HTML page that reads and changes through the calls below).
///
/// Reads: `GET /api/health`, `/api/openapi.yaml`, `/metrics`, `/api/config`, `/api/backends`,
/// `/api/backends/{b}`, `/api/backends/{b}/decisions`, `/api/stats`, and `POST
/// /api/config/validate`. Changes (Bearer token): `PUT /api/config`, `POST
/// /api/backends/{b}/servers`, `DELETE` and `PATCH /api/backends/{b}/servers/{s}` (weight:
/// a reload; state: ready | drain | maintenance), `PUT /api/backends/{b}/algorithm` (switch an
/// adaptive backend by hand, pin, unpin). Configuration changes go through `ConfigReloader`
/// (validated like a file, applied as a reload, written back when configured). Errors are
/// `application/problem+json` (RFC 9457).
package struct AdminServer: Service {
    /// The Hummingbird application (tests drive it in router mode, without a socket).
    package let application: Application<RouterResponder<BasicRequestContext>>

    /// - Parameters:
    ///   - token: the Bearer token changes need (nil: the API only reads).
    ///   - onListening: called with the bound port once the listener is up (for port 0).
    package init(
        config: AdminConfig,
        token: String?,
        proxy: any ProxyControl,
        reloader: ConfigReloader,
        metrics: MetricsExporter = MetricsExporter(),
        logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) {
        // HEAD wherever GET is, as HTTP asks of every general-purpose server (RFC 9110 §9.1).
        let router = Router(options: .autoGenerateHeadEndpoints)
        router.add(middleware: ProblemResponses())
        router.add(middleware: AdminAuthentication(token: token, tokenRequiredForReads: !config.isLoopback))
        let routes = AdminRoutes(proxy: proxy, reloader: reloader, metrics: metrics).register(on: router)
        // Added after the routes, so only requests that match none reach it (Hummingbird builds
        // its not-found responder from every middleware, a route from those added before it).
        router.add(middleware: MethodNotAllowed(table: AllowedMethods(routes: routes)))
        application = Application(
            router: router,
            configuration: .init(address: .hostname(config.listen.host, port: config.listen.port), serverName: "fulcrum-admin"),
            onServerRunning: { channel in
                await onListening(channel.localAddress?.port ?? config.listen.port)
            },
            logger: logger
        )
    }

    /// Every route the API serves (for checking the OpenAPI document against).
    package static func routes(proxy: any ProxyControl, reloader: ConfigReloader) -> [AdminRoute] {
        AdminRoutes(proxy: proxy, reloader: reloader, metrics: MetricsExporter()).register(on: Router())
    }

    /// The OpenAPI document served at `GET /api/openapi.yaml`.
    package static var openAPIDocument: String { AdminOpenAPI.document }

    /// Serves until the task is cancelled or a graceful shutdown is triggered.
    package func run() async throws {
        try await application.run()
    }
}

/// A route as registered: its method and its path (`:name` for a path parameter).
package struct AdminRoute: Sendable, Hashable {
    package let method: String
    package let path: String
}

/// The routes, over a running proxy.
struct AdminRoutes: Sendable {
    /// (The proxy logs every change it is asked to make.)
    let proxy: any ProxyControl
    /// Applies configuration changes (and writes them back to the file when configured).
    let reloader: ConfigReloader
    let metrics: MetricsExporter

    /// Adds every route to `router`, and returns them (the OpenAPI document must list each).
    @discardableResult
    func register(on router: Router<BasicRequestContext>) -> [AdminRoute] {
        var routes: [AdminRoute] = []
        func route(
            _ method: HTTPRequest.Method,
            _ path: String,
            _ handler: @escaping @Sendable (Request, BasicRequestContext) async throws -> Response
        ) {
            routes.append(AdminRoute(method: method.rawValue, path: path))
            router.on(RouterPath(path), method: method, use: handler)
        }

        route(.get, "/") { _, _ in
            DashboardPage.response()
        }
        route(.get, "/api/health") { _, _ in
            try AdminJSON.response(["status": "ok"])
        }
        route(.get, "/api/openapi.yaml") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "application/yaml"],
                body: .init(byteBuffer: ByteBuffer(string: AdminOpenAPI.document))
            )
        }
        route(.post, "/api/config/validate") { request, _ in
            // A configuration as YAML or JSON (JSON is YAML); relative paths (certificates,
            // error pages) resolve against Fulcrum's working directory.
            let body = try await request.body.collect(upTo: Self.maxConfigBytes)
            do throws(ConfigErrors) {
                _ = try ConfigLoader.load(yaml: String(buffer: body), sourceName: "request body")
            } catch {
                throw Self.invalidConfiguration(error)
            }
            return try AdminJSON.response(["valid": true])
        }
        route(.get, "/metrics") { _, _ in
            let text = try await metrics.scrape(proxy: proxy, reloads: reloader.reloadCounts)
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: text))
            )
        }
        route(.get, "/api/config") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: ConfigRenderer.json(proxy.config)))
            )
        }
        route(.put, "/api/config") { request, _ in
            // A whole configuration as YAML or JSON; relative paths resolve against the
            // running file's directory.
            let body = try await request.body.collect(upTo: Self.maxConfigBytes)
            let outcome = try await Self.applying {
                try await reloader.apply(yaml: String(buffer: body), sourceName: "request body")
            }
            return try AdminJSON.response(ReloadView(outcome))
        }
        route(.post, "/api/backends/:backend/servers") { request, context in
            let backend = try context.parameters.require("backend")
            try requireBackend(backend)
            let body = try await request.body.collect(upTo: 64 << 10)
            let server: ServerConfig
            do throws(ConfigErrors) {
                server = try ConfigLoader.loadServer(
                    yaml: String(buffer: body),
                    sourceName: "request body",
                    baseDirectory: reloader.baseDirectory
                )
            } catch {
                throw Self.invalidConfiguration(error)
            }
            if proxy.config.backends.first(where: { $0.name == backend })?.servers.contains(where: { $0.name == server.name }) == true {
                throw AdminProblem(.conflict, "Backend \"\(backend)\" already has a server \"\(server.name)\".", field: "name")
            }
            let outcome = try await Self.applying {
                try await reloader.change { config in
                    var config = config
                    guard let index = config.backends.firstIndex(where: { $0.name == backend }) else {
                        throw Self.unknownBackend(backend)
                    }
                    config.backends[index].servers.append(server)
                    return config
                }
            }
            let view = try await backendViews().first { $0.name == backend }?.servers.first { $0.name == server.name }
            return try AdminJSON.response(ServerChangeView(server: view, reload: ReloadView(outcome)), status: .created)
        }
        route(.delete, "/api/backends/:backend/servers/:server") { _, context in
            let backend = try context.parameters.require("backend")
            let server = try context.parameters.require("server")
            try requireServer(server, of: backend)
            // Out of the configuration, the server gets no new requests; those it has finish
            // (the reload keeps their connections), then its connections close.
            let outcome = try await Self.applying {
                try await reloader.change { config in
                    var config = config
                    let (index, position) = try Self.position(of: server, in: backend, config)
                    config.backends[index].servers.remove(at: position)
                    return config
                }
            }
            return try AdminJSON.response(ReloadView(outcome))
        }
        route(.get, "/api/backends") { _, _ in
            try AdminJSON.response(try await backendViews())
        }
        route(.get, "/api/stats") { _, _ in
            try AdminJSON.response(["backends": try await backendViews()])
        }
        route(.get, "/api/backends/:backend") { _, context in
            let name = try context.parameters.require("backend")
            guard let view = try await backendViews().first(where: { $0.name == name }) else {
                throw Self.unknownBackend(name)
            }
            return try AdminJSON.response(view)
        }
        route(.get, "/api/backends/:backend/decisions") { _, context in
            let name = try context.parameters.require("backend")
            try requireBackend(name)
            guard let decisions = proxy.adaptiveDecisions(ofBackend: name) else {
                throw AdminProblem(.unprocessableContent, "Backend \"\(name)\" is not adaptive: it has no decisions.", field: "backend")
            }
            let now = ContinuousClock.now
            return try AdminJSON.response(["decisions": decisions.reversed().map { DecisionView($0, now: now) }])
        }
        route(.patch, "/api/backends/:backend/servers/:server") { request, context in
            let backend = try context.parameters.require("backend")
            let server = try context.parameters.require("server")
            let change = try await request.decode(as: ServerChange.self, context: context)
            try requireServer(server, of: backend)
            guard change.weight != nil || change.state != nil else {
                throw AdminProblem(.unprocessableContent, "Nothing to change: expected \"state\" or \"weight\".", field: "state")
            }
            // Everything is checked before anything is applied.
            let state = try change.state.map { name in
                guard let state = AdminState(rawValue: name) else {
                    let allowed = AdminState.allCases.map(\.rawValue).joined(separator: ", ")
                    throw AdminProblem(.unprocessableContent, "Unknown state \"\(name)\"; expected one of: \(allowed).", field: "state")
                }
                return state
            }
            if let weight = change.weight {
                let weights = ServerConfig.weights
                guard weights.contains(weight) else {
                    throw AdminProblem(
                        .unprocessableContent,
                        "A weight is \(weights.lowerBound)…\(weights.upperBound) (0: a backup server); got \(weight).",
                        field: "weight"
                    )
                }
                // A weight is configuration: it changes by a reload (and is written back).
                try await Self.applying {
                    try await reloader.change { config in
                        var config = config
                        let (index, position) = try Self.position(of: server, in: backend, config)
                        config.backends[index].servers[position].weight = weight
                        return config
                    }
                }
            }
            if let state {
                guard proxy.setServerState(state, backend: backend, server: server) else {
                    throw Self.unknownServer(server, of: backend)
                }
            }
            guard let view = try await backendViews().first(where: { $0.name == backend })?.servers.first(where: { $0.name == server }) else {
                throw Self.unknownServer(server, of: backend)
            }
            return try AdminJSON.response(view)
        }
        route(.put, "/api/backends/:backend/algorithm") { request, context in
            let backend = try context.parameters.require("backend")
            let change = try await request.decode(as: AlgorithmChange.self, context: context)
            try requireBackend(backend)
            let persist = try Self.persistFlag(request)
            if let name = change.algorithm {
                guard let algorithm = AlgorithmName(rawValue: name), algorithm != .adaptive else {
                    let allowed = AlgorithmName.allCases.filter { $0 != .adaptive }.map(\.rawValue).joined(separator: ", ")
                    throw AdminProblem(.unprocessableContent, "Unknown algorithm \"\(name)\"; expected one of: \(allowed).", field: "algorithm")
                }
                if persist {
                    try await persistAlgorithm(algorithm, of: backend)
                } else if proxy.currentAlgorithm(ofBackend: backend) != nil, change.pin != true {
                    // An adaptive backend: switched, and pinned only when asked (the engine may
                    // switch again otherwise).
                    proxy.selectAlgorithm(algorithm, forBackend: backend, pin: false)
                } else {
                    do throws(AlgorithmChoiceError) {
                        try await proxy.setAlgorithm(algorithm, forBackend: backend)
                    } catch {
                        throw Self.refusedAlgorithm(error, algorithm: algorithm)
                    }
                }
            } else if change.pin == false {
                // Back to the configured algorithm, which the file already holds: `persist`
                // has nothing to write.
                await proxy.resetAlgorithm(forBackend: backend)
            } else {
                throw AdminProblem(
                    .unprocessableContent,
                    "Expected \"algorithm\" (with \"pin\" to keep an adaptive backend on it), or \"pin\": false to go back to the configured algorithm.",
                    field: "algorithm"
                )
            }
            return try AdminJSON.response(try await backendView(backend))
        }
        route(.delete, "/api/backends/:backend/algorithm") { _, context in
            let backend = try context.parameters.require("backend")
            try requireBackend(backend)
            await proxy.resetAlgorithm(forBackend: backend)
            return try AdminJSON.response(try await backendView(backend))
        }
        return routes
    }

    private func backendView(_ name: String) async throws -> BackendView {
        guard let view = try await backendViews().first(where: { $0.name == name }) else { throw Self.unknownBackend(name) }
        return view
    }

    /// `?persist=true`: the change goes into the configuration file too (`config_writeback`).
    private static func persistFlag(_ request: Request) throws -> Bool {
        switch request.uri.queryParameters["persist"] {
        case nil, "false": return false
        case "true": return true
        case let other?: throw AdminProblem(.badRequest, "persist must be true or false, not \"\(other)\".", field: "persist")
        }
    }

    /// Makes `algorithm` the backend's configured one, in the running configuration and the
    /// file: a reload, which also ends any runtime choice.
    private func persistAlgorithm(_ algorithm: AlgorithmName, of backend: String) async throws {
        guard reloader.writesBack else {
            throw AdminProblem(
                .conflict,
                "persist=true needs global.admin.config_writeback and a configuration file; switch without it for a runtime change.",
                field: "persist"
            )
        }
        let outcome = try await Self.applying {
            try await reloader.change { config in
                var config = config
                guard let index = config.backends.firstIndex(where: { $0.name == backend }) else { throw Self.unknownBackend(backend) }
                config.backends[index].algorithm = algorithm
                return config
            }
        }
        if let error = outcome.writebackError {
            throw AdminProblem(.internalServerError, "The algorithm is applied, but the configuration file could not be written: \(error).")
        }
    }

    private static func refusedAlgorithm(_ error: AlgorithmChoiceError, algorithm: AlgorithmName) -> AdminProblem {
        switch error {
        case .unknownBackend:
            AdminProblem(.notFound, "No such backend.", field: "backend")
        case .adaptiveAtRunTime:
            AdminProblem(.unprocessableContent, "adaptive is chosen in the configuration, with its settings.", field: "algorithm")
        case .needsResponseTimes:
            AdminProblem(
                .unprocessableContent,
                "\(algorithm.rawValue) needs response times, which a mode: tcp backend does not have.",
                field: "algorithm"
            )
        }
    }

    private func backendViews() async throws -> [BackendView] {
        try await proxy.stats().map { BackendView($0, pinned: proxy.isAlgorithmPinned(ofBackend: $0.name)) }
    }

    private func requireBackend(_ name: String) throws {
        guard proxy.backendNames.contains(name) else { throw Self.unknownBackend(name) }
    }

    private func requireServer(_ server: String, of backend: String) throws {
        try requireBackend(backend)
        guard proxy.config.backends.first(where: { $0.name == backend })?.servers.contains(where: { $0.name == server }) == true else {
            throw Self.unknownServer(server, of: backend)
        }
    }

    /// Where `server` of `backend` is in `config` (a concurrent change may have removed it).
    private static func position(of server: String, in backend: String, _ config: Config) throws -> (backend: Int, server: Int) {
        guard let index = config.backends.firstIndex(where: { $0.name == backend }),
            let position = config.backends[index].servers.firstIndex(where: { $0.name == server })
        else {
            throw Self.unknownServer(server, of: backend)
        }
        return (index, position)
    }

    /// Runs a reload, answering what can go wrong as problems: an invalid configuration or
    /// one that cannot be applied is a 422 (and nothing changed).
    @discardableResult
    private static func applying(_ reload: () async throws -> ReloadOutcome) async throws -> ReloadOutcome {
        do {
            return try await reload()
        } catch let errors as ConfigErrors {
            throw invalidConfiguration(errors)
        } catch let error as StartupError {
            throw AdminProblem(.unprocessableContent, "The configuration cannot be applied: \(error). Nothing changed.")
        }
    }

    private static func invalidConfiguration(_ error: ConfigErrors) -> AdminProblem {
        let count = error.errors.count
        return AdminProblem(
            .unprocessableContent,
            "The configuration has \(count) error\(count == 1 ? "" : "s"); see \"errors\". Nothing changed.",
            field: error.errors.first?.path,
            errors: error.errors.map { AdminProblem.ErrorItem(path: $0.path, line: $0.line, message: $0.message) }
        )
    }

    /// The largest configuration a request may carry.
    private static let maxConfigBytes = 4 << 20

    /// A name in a path that is not one (`..`, 5,000 characters) is not echoed whole: the
    /// answer says which rule of the configuration it breaks.
    private static func unknownBackend(_ name: String) -> AdminProblem {
        if let error = ConfigName.error(in: name, kind: "backend") {
            return AdminProblem(.notFound, "There is no such backend: \(error).", field: "backend")
        }
        return AdminProblem(.notFound, "There is no backend \"\(name)\".", field: "backend")
    }

    private static func unknownServer(_ name: String, of backend: String) -> AdminProblem {
        if let error = ConfigName.error(in: name, kind: "server") {
            return AdminProblem(.notFound, "Backend \"\(backend)\" has no such server: \(error).", field: "server")
        }
        return AdminProblem(.notFound, "Backend \"\(backend)\" has no server \"\(name)\".", field: "server")
    }
}
