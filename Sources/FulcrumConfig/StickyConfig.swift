/// Cookie-based session persistence (`backends[].sticky`), as HAProxy's
/// `cookie NAME insert indirect nocache` and `cookie NAME prefix`.
///
/// A client whose cookie names a server goes back to that server while it can take it (up,
/// or draining); otherwise it is balanced as usual and the cookie is rewritten. The cookie's
/// value names the server by a hash of its backend's and its own name, never by its address.
package struct StickyConfig: Sendable, Equatable {
    /// How the server is remembered.
    package enum Mode: String, Sendable, Equatable, CaseIterable {
        /// Fulcrum sets a cookie of its own (`cookie`), removed from requests before they reach
        /// the server.
        case insert
        /// The server's own session cookie (`cookie`) carries the server in front of its value
        /// (`VALUE~session`); the prefix is removed before requests reach the server.
        case prefix
    }

    /// The `SameSite` attribute of an inserted cookie.
    package enum SameSite: String, Sendable, Equatable, CaseIterable {
        case strict
        case lax
        case none

        /// As the attribute is written: `Strict`, `Lax`, `None`.
        package var attributeValue: String {
            switch self {
            case .strict: "Strict"
            case .lax: "Lax"
            case .none: "None"
            }
        }
    }

    /// The cookie's name: Fulcrum's own (`insert`) or the server's (`prefix`).
    package var cookie: String
    package var mode: Mode = .insert
    /// `insert`: the cookie's `Max-Age`; nil: a session cookie, gone when the browser closes.
    package var ttl: Duration?
    /// `insert`: whether the cookie is `Secure`; nil: when the client came over TLS.
    package var secure: Bool?
    /// `insert`: whether the cookie is `HttpOnly` (default true: scripts have no use for it).
    package var httpOnly = true
    /// `insert`: the `SameSite` attribute; nil: none is sent (browsers then use `Lax`).
    package var sameSite: SameSite?

    package init(cookie: String, mode: Mode = .insert) {
        self.cookie = cookie
        self.mode = mode
    }
}
