import ArgumentParser

/// The `fulcrum` command: an adaptive HTTP load balancer, its worker server and its demo.
/// (`main.swift` runs it.)
struct Fulcrum: AsyncParsableCommand {
    /// The release, and the commit this binary was built from (the `BuildCommit` plugin).
    static let version = "0.1.0 (\(BuildCommit.hash))"

    static let configuration = CommandConfiguration(
        commandName: "fulcrum",
        abstract: "Fulcrum: a fast HTTP/1.1 reverse-proxy load balancer.",
        discussion: """
            Configure frontends (listeners), ACLs and rules, backends and servers in YAML \
            (see docs/config.md), check the file with `fulcrum check`, start it with `fulcrum run`.
            `fulcrum demo` runs a complete example with three local workers.
            """,
        version: version,
        subcommands: [RunCommand.self, ProxyCommand.self, CheckCommand.self, WorkerCommand.self, DemoCommand.self, LabCommand.self]
    )
}
