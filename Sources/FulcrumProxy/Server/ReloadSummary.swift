import FulcrumConfig

/// What a reload changed, by name (for the log and the admin API's answer).
package struct ReloadSummary: Sendable, Equatable, CustomStringConvertible {
    /// Listening addresses bound by this reload, as `frontend@address`.
    package var listenersAdded: [String] = []
    /// Listening addresses closed by this reload (their connections finish what they started).
    package var listenersRemoved: [String] = []
    package var backendsAdded: [String] = []
    package var backendsRemoved: [String] = []
    /// Servers as `backend/server`; a server whose address changed is removed and added.
    package var serversAdded: [String] = []
    package var serversRemoved: [String] = []
    /// Servers kept (same address) whose settings changed (weight, TLS).
    package var serversChanged: [String] = []
    /// False when the new configuration equals the running one (nothing was touched).
    package var changed = true

    package init() {}

    /// Compares two configurations the way a reload applies them.
    package init(from old: Config, to new: Config) {
        changed = old != new
        let oldAddresses = Set(old.frontends.flatMap(\.listen).map(\.description))
        let newAddresses = Set(new.frontends.flatMap(\.listen).map(\.description))
        listenersAdded = new.frontends.flatMap { frontend in
            frontend.listen.filter { !oldAddresses.contains($0.description) }.map { "\(frontend.name)@\($0)" }
        }
        listenersRemoved = old.frontends.flatMap { frontend in
            frontend.listen.filter { !newAddresses.contains($0.description) }.map { "\(frontend.name)@\($0)" }
        }
        let oldBackends = Set(old.backends.map(\.name))
        let newBackends = Set(new.backends.map(\.name))
        backendsAdded = new.backends.map(\.name).filter { !oldBackends.contains($0) }
        backendsRemoved = old.backends.map(\.name).filter { !newBackends.contains($0) }
        func servers(_ config: Config) -> [String: String] {
            var servers: [String: String] = [:]
            for backend in config.backends {
                for server in backend.servers { servers["\(backend.name)/\(server.name)"] = server.address.description }
            }
            return servers
        }
        let oldServers = servers(old)
        let newServers = servers(new)
        var oldSettings: [String: ServerConfig] = [:]
        for backend in old.backends {
            for server in backend.servers { oldSettings["\(backend.name)/\(server.name)"] = server }
        }
        serversChanged = new.backends.flatMap { backend in
            backend.servers.compactMap { server -> String? in
                let key = "\(backend.name)/\(server.name)"
                guard let before = oldSettings[key], before.address == server.address, before != server else { return nil }
                return key
            }
        }
        serversAdded = new.backends.flatMap { backend in backend.servers.map { "\(backend.name)/\($0.name)" } }
            .filter { oldServers[$0] == nil || oldServers[$0] != newServers[$0] }
        serversRemoved = old.backends.flatMap { backend in backend.servers.map { "\(backend.name)/\($0.name)" } }
            .filter { newServers[$0] == nil || oldServers[$0] != newServers[$0] }
    }

    /// One line for the log.
    package var description: String {
        guard changed else { return "no change" }
        var parts: [String] = []
        func add(_ label: String, _ names: [String]) {
            if !names.isEmpty { parts.append("\(label) \(names.joined(separator: ", "))") }
        }
        add("listeners added:", listenersAdded)
        add("listeners removed:", listenersRemoved)
        add("backends added:", backendsAdded)
        add("backends removed:", backendsRemoved)
        add("servers added:", serversAdded)
        add("servers removed:", serversRemoved)
        add("servers changed:", serversChanged)
        return parts.isEmpty ? "settings changed" : parts.joined(separator: "; ")
    }
}
