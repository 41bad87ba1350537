import Foundation
import NIOCore
import NIOPosix

/// A real server program (HAProxy, nginx) run for the length of a test, from a configuration
/// file written for it, and stopped at the end.
final class PeerProcess: Sendable {
    private let process: Process
    private let configFile: URL

    private init(process: Process, configFile: URL) {
        self.process = process
        self.configFile = configFile
    }

    /// Writes `config`, starts `tool` with `arguments(configPath)`, and returns once every one
    /// of `ports` accepts connections (or throws after 30 seconds, with what the tool printed).
    ///
    /// A port the test found free may be in use when the tool binds it, most often as the
    /// local port of another test's short-lived connection: a tool that exits at start is
    /// started again, after a pause, up to three times. A port where something else already
    /// listens is an error at once, rather than a test that talks to another program.
    static func start(
        _ tool: String,
        config: String,
        arguments: (String) -> [String],
        ports: [Int]
    ) async throws -> PeerProcess {
        guard let executable = ExternalTool.find(tool, alternatives: ["/usr/sbin/\(tool)"]) else {
            throw PeerProcessError(message: "\(tool) is not installed")
        }
        for port in ports where await Self.accepts(port: port) {
            throw PeerProcessError(message: "port \(port), chosen for \(tool), has another program listening on it")
        }
        var attempt = 1
        while true {
            do {
                return try await launch(tool, executable: executable.path, config: config, arguments: arguments, ports: ports)
            } catch let error as PeerProcessError where error.exitedAtStart && attempt < 3 {
                attempt += 1
                try await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    private static func launch(
        _ tool: String,
        executable: String,
        config: String,
        arguments: (String) -> [String],
        ports: [Int]
    ) async throws -> PeerProcess {
        let configFile = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-\(tool)-\(UUID().uuidString).conf")
        // HAProxy refuses a file whose last line has no line feed.
        try (config + "\n").write(to: configFile, atomically: true, encoding: .utf8)
        let output = configFile.appendingPathExtension("log")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments(configFile.path)
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = process.standardOutput
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let peer = PeerProcess(process: process, configFile: configFile)
        // Generous: on a busy machine (a CI runner, or two suites at once) a program can take
        // seconds to listen, and one that never does fails the test either way.
        let deadline = ContinuousClock.now + .seconds(30)
        for port in ports {
            while !(await Self.accepts(port: port)) {
                // Not a busy loop: on two cores it would take the CPU the program needs.
                try? await Task.sleep(for: .milliseconds(20))
                guard process.isRunning, ContinuousClock.now < deadline else {
                    let exited = !process.isRunning
                    // Read before `stop`, which removes the file.
                    let printed = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
                    peer.stop()
                    let status = exited ? "exited with \(process.terminationStatus)" : "still running"
                    throw PeerProcessError(
                        message: "\(tool) did not start listening on \(port) (\(status)): \(printed)",
                        exitedAtStart: exited
                    )
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        return peer
    }

    private static func accepts(port: Int) async -> Bool {
        guard let connection = try? await HeldConnection.open(port: port) else { return false }
        await connection.close()
        return true
    }

    /// Kills the program: nginx started by `Process` ignores SIGTERM here (it inherits a
    /// signal mask that blocks it), and a test peer needs no graceful stop.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: configFile)
        try? FileManager.default.removeItem(at: configFile.appendingPathExtension("log"))
    }
}

struct PeerProcessError: Error, CustomStringConvertible {
    let message: String
    /// The program exited before it listened (a port was taken, most likely).
    var exitedAtStart = false
    var description: String { message }
}

extension PeerProcess {
    /// nginx, one process, with `http` in its `http` block, everything it writes in
    /// `directory`, and no access log; returns once every one of `ports` accepts.
    static func startNginx(in directory: URL, http: String, ports: [Int]) async throws -> PeerProcess {
        let path = directory.path
        let config = """
            daemon off;
            master_process off;
            worker_processes 1;
            pid \(path)/nginx.pid;
            error_log \(path)/error.log;
            events { worker_connections 256; }
            http {
                access_log off;
                client_body_temp_path \(path);
                proxy_temp_path \(path);
                fastcgi_temp_path \(path);
                uwsgi_temp_path \(path);
                scgi_temp_path \(path);
            \(http)
            }
            """
        return try await start("nginx", config: config, arguments: { ["-p", path, "-c", $0] }, ports: ports)
    }
}
