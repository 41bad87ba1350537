import FulcrumConfig
import Hummingbird
import NIOCore

/// The live dashboard served at `GET /` on the admin listener: one self-contained page (inline
/// CSS and JavaScript, no request beyond the admin API itself, so it works offline).
///
/// The page polls `api/stats` every second (and each adaptive backend's decisions), keeps
/// five minutes of history per server in the tab for its sparklines (p99 and req/s), and
/// changes server states and backends' algorithms through the API with the token the operator
/// pastes once (kept in `localStorage`, sent as `Authorization: Bearer` on every call).
/// The page itself holds no data, so it needs no token even beyond loopback (a browser cannot
/// attach one to a navigation); everything it shows comes from calls that do.
enum DashboardPage {
    /// The page, with the algorithm names filled in from `AlgorithmName`.
    static let html: String =
        template
        .replacingOccurrences(of: "\"__FULCRUM_ALGORITHMS__\"", with: json(AlgorithmName.allCases.filter { $0 != .adaptive }))
        .replacingOccurrences(of: "\"__FULCRUM_TCP_ALGORITHMS__\"", with: json(AlgorithmName.allCases.filter(\.worksWithoutResponses)))

    /// What a manual switch may choose, as a JSON array: every algorithm but `adaptive` itself,
    /// and for a `mode: tcp` backend those that need no response times.
    private static func json(_ algorithms: [AlgorithmName]) -> String {
        "[\(algorithms.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))]"
    }

    /// Requests only to this origin, nothing loaded from elsewhere, never framed.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        + "img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    static func response() -> Response {
        Response(
            status: .ok,
            headers: [
                .contentType: "text/html; charset=utf-8",
                .cacheControl: "no-store",
                .contentSecurityPolicy: contentSecurityPolicy,
                .xContentTypeOptions: "nosniff",
                .init("Referrer-Policy")!: "no-referrer",
            ],
            body: .init(byteBuffer: ByteBuffer(string: html))
        )
    }

    /// The page as the package embeds it (`Resources/dashboard.html`: markup, style and script).
    private static let template = String(decoding: PackageResources.dashboard_html, as: UTF8.self)
}
