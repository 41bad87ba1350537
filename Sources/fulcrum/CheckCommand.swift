import ArgumentParser
import FulcrumConfig

/// `fulcrum check -c FILE`: validates a configuration without starting anything.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a configuration file.",
        discussion: """
            Prints a one-line summary and exits 0 when the file is valid; otherwise prints \
            every problem, each with its place in the file and its line, and exits 1.
            """
    )

    @Option(name: [.short, .customLong("config")], help: "The YAML configuration file.")
    var config: String

    func run() throws {
        do {
            let loaded = try ConfigLoader.load(contentsOfFile: config)
            print("\(config): OK (\(loaded.summary))")
        } catch {
            printError("\(config): \(error.errors.count) error\(error.errors.count == 1 ? "" : "s")")
            for problem in error.errors { printError("  \(problem)") }
            throw ExitCode(1)
        }
    }
}
