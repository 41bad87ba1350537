import FulcrumConfig

/// What the names of a configuration's servers resolved to last: the input that turns the
/// configuration as written into the one the data plane serves (`Config.expandingServers`).
struct DiscoveredServers: Sendable, Equatable {
    /// A server an SRV record names, with its target's addresses.
    struct Service: Sendable, Equatable {
        var target: String
        var port: Int
        var priority: Int
        var weight: Int
        /// IP literals, sorted.
        var addresses: [String]
    }

    /// IP literals by host name (as written in `address`), sorted.
    var hosts: [String: [String]] = [:]
    /// Records by SRV name (as written in `servers_from.srv`).
    var services: [String: [Service]] = [:]
}

extension Config {
    /// This configuration with every server given by name replaced by one server per address
    /// the name has, and the servers of `servers_from` added: what the data plane serves.
    ///
    /// A name with one address keeps the server's name; with several, each server is named
    /// `NAME_ADDRESS` (`app_10.0.0.7`, `app_2001-db8--7`), so a server keeps its name, and its
    /// state, for as long as its address stays. A server from an SRV record is named after the
    /// record's target (and port, when a target has several), weighted by the record, and a
    /// backup (weight 0) unless its priority is the lowest of the records (RFC 2782: lower is
    /// preferred). TLS to a server found by name still sends and verifies that name.
    func expandingServers(with discovered: DiscoveredServers) -> Config {
        var expanded = self
        expanded.backends = backends.map { backend in
            guard backend.followsDNS else { return backend }
            var backend = backend
            var servers: [ServerConfig] = []
            for server in backend.servers {
                guard server.address.hostIsName else {
                    servers.append(server)
                    continue
                }
                let addresses = discovered.hosts[server.address.host] ?? []
                for address in addresses {
                    var endpoint = server
                    endpoint.name = addresses.count == 1 ? server.name : Self.endpointName(server.name, address)
                    endpoint.address = ServerAddress(host: address, port: server.address.port)
                    endpoint.tls?.serverName = server.tls?.serverName ?? server.address.host
                    servers.append(endpoint)
                }
            }
            if let source = backend.serversFrom {
                servers += Self.servers(from: discovered.services[source.srv] ?? [], template: source.template)
            }
            // A name a record gives can collide with a server's own: the first one stays.
            var seen = Set<String>()
            backend.servers = servers.filter { seen.insert($0.name).inserted }
            return backend
        }
        return expanded
    }

    private static func servers(from records: [DiscoveredServers.Service], template: ServerConfig) -> [ServerConfig] {
        let preferred = records.map(\.priority).min()
        let targets = Dictionary(grouping: records, by: \.target)
        var servers: [ServerConfig] = []
        for record in records {
            let target = record.target.hasSuffix(".") ? String(record.target.dropLast()) : record.target
            let label = targets[record.target, default: []].count == 1 ? target : "\(target)_\(record.port)"
            for address in record.addresses {
                var server = template
                server.name = record.addresses.count == 1 ? label : endpointName(label, address)
                server.address = ServerAddress(host: address, port: record.port)
                server.weight = record.priority == preferred ? min(max(record.weight, 1), ServerConfig.weights.upperBound) : 0
                server.tls?.serverName = template.tls?.serverName ?? target
                servers.append(server)
            }
        }
        return servers
    }

    /// `NAME_ADDRESS`, with an IPv6 address's colons as dashes: a valid server name.
    static func endpointName(_ name: String, _ address: String) -> String {
        "\(name)_\(String(address.map { $0 == ":" ? "-" : $0 }))"
    }
}
