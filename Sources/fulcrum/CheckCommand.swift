import ArgumentParser
import FulcrumConfig
import FulcrumProxy

/// `fulcrum check -c FILE`: validates a configuration without starting anything.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a configuration file.",
        discussion: """
            Prints a one-line summary and exits 0 when the file is valid; otherwise prints \
            every problem, each with its place in the file and its line, and exits 1. TLS \
            frontends' certificate directories are read too: a file that cannot serve is \
            reported with the reason (the others still serve); a frontend left without any \
            certificate is an error.
            """
    )

    @Option(name: [.short, .customLong("config")], help: "The YAML configuration file.")
    var config: String

    func run() throws {
        do {
            let loaded = try ConfigLoader.load(contentsOfFile: config)
            var unusable: [String] = []
            for report in CertificateReport.check(loaded) {
                for certificate in report.loaded {
                    print("frontend \(report.frontend): certificate \(certificate)")
                }
                for problem in report.problems {
                    printError("frontend \(report.frontend): certificate skipped: \(problem)")
                }
                if report.loaded.isEmpty { unusable.append(report.frontend) }
            }
            guard unusable.isEmpty else {
                printError("\(config): no usable certificate for frontend \(unusable.joined(separator: ", "))")
                throw ExitCode(1)
            }
            print("\(config): OK (\(loaded.summary))")
        } catch let error as ConfigErrors {
            printError("\(config): \(error.errors.count) error\(error.errors.count == 1 ? "" : "s")")
            for problem in error.errors { printError("  \(problem)") }
            throw ExitCode(1)
        }
    }
}
