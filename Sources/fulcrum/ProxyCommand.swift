import ArgumentParser
import FulcrumConfig

/// `fulcrum proxy --from :8080 --to 127.0.0.1:9001 --to 127.0.0.1:9002`: a load balancer with
/// no configuration file (`CommandLineProxy`).
struct ProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Run a load balancer from flags alone, with no file.",
        discussion: """
            Balances every request on --from over the --to servers, as a file with one \
            frontend and one backend would. --print-config writes that file instead of \
            running it, to grow into: `fulcrum proxy ... --print-config > fulcrum.yaml`, then \
            `fulcrum run -c fulcrum.yaml`.
            """
    )

    @Option(help: "Where to listen: :8080 (every interface), 8080, or host:port.")
    var from: String

    @Option(help: "A server, host:port. Repeat for each server.")
    var to: [String] = []

    @Option(help: "The balancing algorithm (default round_robin; see docs/config.md).")
    var algorithm = "round_robin"

    @Option(help: "A path to probe each server with (GET, every 2 s); without it, no health checks.")
    var health: String?

    @Flag(help: "Write the equivalent configuration file to standard output, and exit.")
    var printConfig = false

    func validate() throws {
        guard !to.isEmpty else { throw ValidationError("give at least one server with --to host:port") }
    }

    func run() async throws {
        let options = CommandLineProxy.Options(from: from, to: to, algorithm: algorithm, health: health)
        let config: Config
        do {
            config = try CommandLineProxy.config(options)
        } catch {
            printError("fulcrum proxy: \(error.errors.count) error\(error.errors.count == 1 ? "" : "s") in the flags; not starting")
            for problem in error.errors { printError("  \(problem)") }
            throw ExitCode(1)
        }
        if printConfig {
            print(CommandLineProxy.yaml(options), terminator: "")
            return
        }
        try await runProxy(config: config, logger: makeLogger(label: "fulcrum", level: config.global.log.level))
    }
}
