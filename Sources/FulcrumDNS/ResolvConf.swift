import NIOCore

/// What `/etc/resolv.conf` says, the default when a configuration names no nameserver: its
/// nameservers, its search domains and `ndots`, read as glibc reads them (resolv.conf(5)).
package struct ResolvConf: Sendable, Equatable {
    package var nameservers: [SocketAddress] = []
    /// Domains tried after a short name (`search`, or `domain`).
    package var search: [String] = []
    /// A name with at least this many dots is asked as it is first (`options ndots:N`).
    package var ndots = 1

    package init() {}

    package init(parsing text: String) {
        for line in text.split(whereSeparator: \.isNewline) {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let keyword = fields.first, fields.count >= 2 else { continue }
            switch keyword {
            case "nameserver":
                // A scoped IPv6 address (fe80::1%eth0) loses its scope: NIO has no way to say it.
                let host = fields[1].split(separator: "%").first.map(String.init) ?? ""
                if let address = try? SocketAddress(ipAddress: host, port: 53) { nameservers.append(address) }
            case "search", "domain":
                // The last of them wins, as in glibc.
                search = Array(fields.dropFirst())
            case "options":
                for option in fields.dropFirst() where option.hasPrefix("ndots:") {
                    if let value = Int(option.dropFirst("ndots:".count)) { ndots = min(max(value, 0), 15) }
                }
            default:
                continue
            }
        }
    }

    /// The system's, or the defaults when there is no file.
    package static func system(path: String = "/etc/resolv.conf") -> ResolvConf {
        guard let text = readSmallFile(path) else { return ResolvConf() }
        return ResolvConf(parsing: text)
    }

    /// The names to ask for `name`, in order: with the search domains first when it has fewer
    /// than `ndots` dots, after otherwise; as it is when it ends with a dot.
    package func candidates(for name: String) -> [String] {
        if name.hasSuffix(".") { return [String(name.dropLast())] }
        let searched = search.map { "\(name).\($0.hasSuffix(".") ? String($0.dropLast()) : $0)" }
        let dots = name.count { $0 == "." }
        return dots >= ndots ? [name] + searched : searched + [name]
    }
}
