/// A complete, validated Fulcrum configuration.
///
/// A `Config` is an immutable value: it is produced by `ConfigLoader` from YAML (every
/// problem reported at once, with its path and line) and then handed to the data plane,
/// which compiles it into a runtime snapshot. Nothing in here does I/O.
package struct Config: Sendable, Equatable {
    package var global: GlobalConfig
    package var frontends: [FrontendConfig]
    package var backends: [BackendConfig]

    package init(global: GlobalConfig = GlobalConfig(), frontends: [FrontendConfig], backends: [BackendConfig]) {
        self.global = global
        self.frontends = frontends
        self.backends = backends
    }

    /// The backend with this name, if any.
    package func backend(named name: String) -> BackendConfig? {
        backends.first { $0.name == name }
    }
}
