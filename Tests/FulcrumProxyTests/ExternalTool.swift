import Foundation

/// A command-line tool run to its end, for tests that check Fulcrum with real third-party
/// clients (`openssl s_client`, `testssl`). Bounded: a run that outlives its timeout is killed.
struct ExternalTool {
    let path: String

    /// What a run printed (standard output and error together) and how it ended.
    struct Run {
        var status: Int32
        var output: String
        var timedOut: Bool
    }

    /// The tool named `name` on the `PATH` (or one of `alternatives`: other names, or absolute
    /// paths such as `/usr/sbin/nginx` for a `PATH` without sbin), nil when none is installed.
    static func find(_ name: String, alternatives: [String] = []) -> ExternalTool? {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        for candidate in [name] + alternatives {
            if candidate.hasPrefix("/") {
                if FileManager.default.isExecutableFile(atPath: candidate) { return ExternalTool(path: candidate) }
                continue
            }
            for directory in directories where FileManager.default.isExecutableFile(atPath: "\(directory)/\(candidate)") {
                return ExternalTool(path: "\(directory)/\(candidate)")
            }
        }
        return nil
    }

    /// Runs the tool with `arguments` and `input` (nil: none) on its standard input, in
    /// `directory` (nil: the current one).
    func run(
        _ arguments: [String],
        in directory: URL? = nil,
        input: String? = nil,
        timeout: Duration = .seconds(20)
    ) async throws -> Run {
        let outputFile = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-tool-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: outputFile) }
        let output = try FileHandle(forWritingTo: outputFile)
        defer { try? output.close() }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        // A file, not a pipe: a chatty tool would block on a full pipe nobody reads yet.
        process.standardOutput = output
        process.standardError = output
        if let input {
            let inputFile = outputFile.appendingPathExtension("in")
            try input.write(to: inputFile, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: inputFile) }
            process.standardInput = try FileHandle(forReadingFrom: inputFile)
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        try process.run()
        let deadline = ContinuousClock.now + timeout
        while process.isRunning, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let timedOut = process.isRunning
        if timedOut {
            process.terminate()
            process.waitUntilExit()
        }
        let text = String(decoding: (try? Data(contentsOf: outputFile)) ?? Data(), as: UTF8.self)
        return Run(status: process.terminationStatus, output: text, timedOut: timedOut)
    }
}
