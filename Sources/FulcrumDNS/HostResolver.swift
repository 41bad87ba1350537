import NIOCore

/// Resolves a server's name the way the system would, without blocking a thread: the hosts
/// file first, then DNS over NIO's UDP, through the search domains (c-ares and Envoy do the
/// same). Each name is read fresh, so a change to either shows at the next question.
package struct HostResolver: Sendable {
    /// Which of a name's records to keep (Envoy's `dns_lookup_family`).
    package enum Family: Sendable {
        case ipv4Preferred
        case ipv6Preferred
        case all
    }

    package let dns: DNSResolver
    /// The search domains and `ndots` (`ResolvConf()`: none, names asked as they are).
    package let searchList: ResolvConf
    package let family: Family
    package let hostsFilePath: String

    package init(dns: DNSResolver, searchList: ResolvConf, family: Family, hostsFilePath: String = "/etc/hosts") {
        self.dns = dns
        self.searchList = searchList
        self.family = family
        self.hostsFilePath = hostsFilePath
    }

    /// The IP addresses of `name` (literals, sorted), of the family chosen; throws when it has
    /// none: no answer, no such name, or no record.
    package func addresses(of name: String) async throws -> [String] {
        let listed = HostsFile.system(path: hostsFilePath).addresses(of: name)
        if !listed.isEmpty { return Self.choose(listed, family: family) }
        var failure: any Error = DNSResolverError.noRecords(name)
        for candidate in searchList.candidates(for: name) {
            do {
                let found = try await dns.addresses(of: candidate, port: 0).compactMap(\.ipAddress)
                if !found.isEmpty { return Self.choose(found, family: family) }
                failure = DNSResolverError.noRecords(name)
            } catch {
                failure = error
            }
        }
        throw failure
    }

    /// The servers `name`'s SRV records name; throws when there are none.
    package func services(_ name: String) async throws -> [DNSResolver.Service] {
        var failure: any Error = DNSResolverError.noRecords(name)
        for candidate in searchList.candidates(for: name) {
            do {
                let found = try await dns.services(candidate).map { service in
                    var service = service
                    service.addresses = Self.choose(service.addresses.compactMap(\.ipAddress), family: family).compactMap {
                        try? SocketAddress(ipAddress: $0, port: service.port)
                    }
                    return service
                }
                if !found.isEmpty { return found }
                failure = DNSResolverError.noRecords(name)
            } catch {
                failure = error
            }
        }
        throw failure
    }

    /// The addresses of the family `family` keeps, without repeats, sorted.
    package static func choose(_ addresses: [String], family: Family) -> [String] {
        let unique = Array(Set(addresses)).sorted()
        let v4 = unique.filter { !$0.contains(":") }
        let v6 = unique.filter { $0.contains(":") }
        switch family {
        case .ipv4Preferred: return v4.isEmpty ? v6 : v4
        case .ipv6Preferred: return v6.isEmpty ? v4 : v6
        case .all: return v4 + v6
        }
    }
}
