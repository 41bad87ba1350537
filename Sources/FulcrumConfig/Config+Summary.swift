extension Config {
    /// A one-line description for people, e.g. `2 frontends, 2 backends, 3 servers`
    /// (what `fulcrum check` prints for a valid file).
    package var summary: String {
        let serverCount = backends.reduce(0) { $0 + $1.servers.count }
        return [
            counted(frontends.count, "frontend"),
            counted(backends.count, "backend"),
            counted(serverCount, "server"),
        ].joined(separator: ", ")
    }
}

private func counted(_ count: Int, _ noun: String) -> String {
    "\(count) \(noun)\(count == 1 ? "" : "s")"
}
