/// How server names are resolved (`global.dns`), as HAProxy's `resolvers` section says it.
package struct DNSConfig: Sendable, Equatable {
    /// Where questions go (`nameservers`, `IP` or `IP:port`); empty: `/etc/resolv.conf`'s,
    /// with its search domains.
    package var nameservers: [ServerAddress] = []
    /// How long one nameserver has to answer before the next is asked (`timeout`, default 2s).
    package var timeout: Duration = .seconds(2)
    /// Which records of a name become endpoints (`family`, default `ipv4_preferred`).
    package var family: AddressFamilyPreference = .ipv4Preferred

    package init() {}
}

/// Which of a name's A and AAAA records become endpoints: Envoy's `dns_lookup_family`.
package enum AddressFamilyPreference: String, Sendable, Equatable, CaseIterable {
    /// The A records, or the AAAA records when there is no A record (Envoy's `V4_PREFERRED`).
    case ipv4Preferred = "ipv4_preferred"
    /// The AAAA records, or the A records when there is no AAAA record.
    case ipv6Preferred = "ipv6_preferred"
    /// Every A and AAAA record.
    case all
}

/// `servers_from`: servers built from a service's SRV records (RFC 2782), as HAProxy's
/// `server-template` builds them.
package struct ServersFromConfig: Sendable, Equatable {
    /// The SRV name (`srv`), e.g. `_http._tcp.example.internal`.
    package var srv: String
    /// What every server it yields is given (the keys a server takes, but its name, address
    /// and weight, which come from the records).
    package var template: ServerConfig

    package init(srv: String, template: ServerConfig = ServerConfig(name: "", address: ServerAddress(host: "", port: 0))) {
        self.srv = srv
        self.template = template
    }
}

extension ServerAddress {
    /// Whether `host` is a name to resolve rather than an IP literal.
    package var hostIsName: Bool { parseIPAddress(host) == nil }
}

extension BackendConfig {
    /// Whether any of its servers come from DNS: given by name, or by `servers_from`.
    package var followsDNS: Bool {
        serversFrom != nil || servers.contains { $0.address.hostIsName }
    }
}
