import Foundation
import FulcrumTestSupport
import FulcrumWorker
import NIOPosix
import Testing

/// The `fulcrum` binary as a service manager and a package see it: systemd's notify protocol
/// through a real `fulcrum run`, `--version`, and the systemd unit in contrib/.
@Suite("Packaging: sd_notify from fulcrum run, --version, the systemd unit")
struct PackagingTests {
    @Test("Under NOTIFY_SOCKET: READY=1 once serving, RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 on SIGTERM")
    func notifyProtocol() async throws {
        let executable = try #require(fulcrumExecutable())
        let socket = try NotifySocket()
        let worker = try await WorkerServer.start(name: "w1", behaviour: .init(), group: MultiThreadedEventLoopGroup.singleton)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-notify-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let port = try deadPort()
        let config = directory.appendingPathComponent("fulcrum.yaml")
        try """
        global: { workers: 1, log: { level: info, access: "off" } }
        frontends: [{ name: web, listen: ["127.0.0.1:\(port)"], default_backend: app }]
        backends: [{ name: app, servers: [{ name: w1, address: "127.0.0.1:\(worker.port)" }] }]
        """.write(to: config, atomically: true, encoding: .utf8)

        let process = Process()
        process.executableURL = executable
        process.arguments = ["run", "-c", config.path, "--no-watch"]
        process.environment = ProcessInfo.processInfo.environment.merging(["NOTIFY_SOCKET": socket.path]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            if process.isRunning { process.terminate() }
        }

        let ready = try #require(try await socket.receive(until: "READY=1"), "no READY=1")
        #expect(ready.last?.contains("STATUS=serving 1 frontend(s), 1 backend(s)") == true)
        // READY=1 means the frontend listens: a request is served at once.
        let probe = try await HeldConnection.open(port: port)
        try await probe.sendRequest()
        #expect(try await probe.waitForResponse(timeout: .seconds(5)))
        await probe.close()

        kill(process.processIdentifier, SIGHUP)
        let reload = try #require(try await socket.receive(until: "READY=1"), "no READY=1 after SIGHUP")
        #expect(reload.count == 2 && reload.first?.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") == true)

        process.terminate()
        let stopping = try #require(try await socket.receive(until: "STOPPING=1"), "no STOPPING=1 after SIGTERM")
        #expect(stopping.count == 1)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        try await worker.shutdown()
    }

    @Test("fulcrum --version names the release and the commit it was built from")
    func version() async throws {
        let executable = try #require(fulcrumExecutable())
        let version = try await ExternalTool(path: executable.path).run(["--version"])
        #expect(version.status == 0)
        // "0.1.0 (COMMIT)", COMMIT being 12 hex digits (with -dirty for uncommitted changes),
        // or "unknown" built outside a git checkout without FULCRUM_COMMIT.
        let text = version.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(text.wholeMatch(of: /\d+\.\d+\.\d+ \(([0-9a-f]{12}(-dirty)?|unknown)\)/) != nil, "\(text)")
        if let git = ExternalTool.find("git"),
            let head = try? await git.run(["-C", packageDirectory.path, "rev-parse", "--short=12", "HEAD"]), head.status == 0
        {
            #expect(text.contains("(\(head.output.trimmingCharacters(in: .whitespacesAndNewlines))"), "\(text)")
        }
    }

    @Test(
        "contrib/systemd/fulcrum.service passes systemd-analyze verify",
        .enabled(if: ExternalTool.find("systemd-analyze") != nil, "systemd-analyze is missing (apt-get install systemd): skipped")
    )
    func systemdUnit() async throws {
        let executable = try #require(fulcrumExecutable())
        let analyze = try #require(ExternalTool.find("systemd-analyze"))
        let unit = try String(contentsOf: packageDirectory.appendingPathComponent("contrib/systemd/fulcrum.service"), encoding: .utf8)
        #expect(unit.contains("Type=notify\n") && unit.contains("ExecReload=/bin/kill -HUP $MAINPID"))
        // The unit names the installed binary; point it at the one just built.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-unit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let copy = directory.appendingPathComponent("fulcrum.service")
        try unit.replacingOccurrences(of: "/usr/local/bin/fulcrum", with: executable.path).write(to: copy, atomically: true, encoding: .utf8)
        let verified = try await analyze.run(["verify", copy.path])
        #expect(verified.status == 0, "\(verified.output)")
        #expect(!verified.output.contains(copy.lastPathComponent), "\(verified.output)")
    }

    private var packageDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
    }

    private func fulcrumExecutable() -> URL? {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("fulcrum")
        return FileManager.default.isExecutableFile(atPath: executable.path) ? executable : nil
    }
}
