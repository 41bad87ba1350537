import Foundation
import FulcrumWorker
import NIOPosix
import Testing

/// A `fulcrum run` process in front of one worker, with its admin API, under `ulimit -n`.
struct FulcrumProcess {
    let process: Process
    let port: Int
    let adminPort: Int
    let outputFile: URL

    var output: String { (try? String(contentsOf: outputFile, encoding: .utf8)) ?? "" }

    /// Opens `count` connections; those beyond what fulcrum accepts wait in its backlog.
    func holdConnections(_ count: Int) async throws -> [HeldConnection] {
        var held: [HeldConnection] = []
        for _ in 0..<count { held.append(try await HeldConnection.open(port: port)) }
        return held
    }

    /// The share of one core the process used (user and system time) over `interval`.
    func cpuShare(over interval: Duration) async throws -> Double {
        let before = try cpuTicks()
        let start = ContinuousClock.now
        try await Task.sleep(for: interval)
        let ticks = try cpuTicks() - before
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return Double(ticks) / Double(sysconf(Int32(_SC_CLK_TCK))) / seconds
    }

    /// The process's resident set size (`VmRSS`), in KiB.
    func residentKiB() throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }!
        return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])!
    }

    private func cpuTicks() throws -> Int {
        let stat = try String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8)
        // Fields after the command name (which may contain spaces): state is the 3rd field,
        // utime and stime the 14th and 15th.
        let fields = stat[stat.range(of: ") ")!.upperBound...].split(separator: " ")
        return Int(fields[11])! + Int(fields[12])!
    }

    /// `GET /metrics` from the admin API.
    func metrics() async throws -> String {
        let connection = try await HeldConnection.open(port: adminPort)
        try await connection.sendRequest("/metrics", closing: true)
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline, !connection.closedByServer {
            try await Task.sleep(for: .milliseconds(20))
        }
        await connection.close()
        return connection.text
    }
}

/// Starts a worker and `fulcrum run` under `descriptorLimit`, runs `body`, then stops both.
func withFulcrum(descriptorLimit: Int, globalExtra: String, _ body: (FulcrumProcess) async throws -> Void) async throws {
    let executable = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("fulcrum")
    guard FileManager.default.isExecutableFile(atPath: executable.path) else {
        Issue.record("no fulcrum executable beside the tests at \(executable.path) (swift build builds it)")
        return
    }
    let worker = try await WorkerServer.start(name: "w1", behaviour: .init(), group: MultiThreadedEventLoopGroup.singleton)
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-fd-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    // Ports free a moment ago may be taken before fulcrum binds them (then it exits, and
    // another test's server may answer there): another pair is tried, up to three.
    var started: FulcrumProcess?
    for _ in 1...3 where started == nil {
        started = try await startFulcrum(executable, worker: worker.port, in: directory, descriptorLimit: descriptorLimit, globalExtra: globalExtra)
    }
    guard let fulcrum = started else {
        let output = (try? String(contentsOf: directory.appendingPathComponent("output.log"), encoding: .utf8)) ?? ""
        Issue.record("fulcrum exited at start three times; the last time it wrote: \(output)")
        try await worker.shutdown()
        return
    }
    let outcome: Result<Void, any Error>
    do {
        outcome = .success(try await body(fulcrum))
    } catch {
        outcome = .failure(error)
    }
    fulcrum.process.terminate()
    fulcrum.process.waitUntilExit()
    try await worker.shutdown()
    try outcome.get()
}

/// `fulcrum run` on two fresh ports, once it has said it listens and served one request; nil
/// when it exited first (a port was taken).
private func startFulcrum(
    _ executable: URL,
    worker: Int,
    in directory: URL,
    descriptorLimit: Int,
    globalExtra: String
) async throws -> FulcrumProcess? {
    let (port, adminPort) = (try deadPort(), try deadPort())
    let config = directory.appendingPathComponent("fulcrum.yaml")
    try """
    global:
      workers: 1
      log: { level: info, access: "off" }
      admin: { listen: "127.0.0.1:\(adminPort)" }
    \(globalExtra)
    frontends:
      - name: web
        listen: ["127.0.0.1:\(port)"]
        default_backend: app
    backends:
      - name: app
        servers:
          - { name: w1, address: "127.0.0.1:\(worker)" }
    """.write(to: config, atomically: true, encoding: .utf8)
    let outputFile = directory.appendingPathComponent("output.log")
    FileManager.default.createFile(atPath: outputFile.path, contents: nil)
    let output = try FileHandle(forWritingTo: outputFile)
    defer { try? output.close() }

    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", "ulimit -n \(descriptorLimit) && exec \"$0\" run -c \"$1\" --no-watch", executable.path, config.path]
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let fulcrum = FulcrumProcess(process: process, port: port, adminPort: adminPort, outputFile: outputFile)
    // Listening (by its own word, so not another program on the port), then serving.
    let deadline = ContinuousClock.now + .seconds(20)
    while !fulcrum.output.contains("listening") || !fulcrum.output.contains("127.0.0.1:\(port)") {
        guard process.isRunning else { return nil }
        guard ContinuousClock.now < deadline else { break }
        try await Task.sleep(for: .milliseconds(20))
    }
    try await waitUntil(timeout: .seconds(20)) {
        guard process.isRunning, let probe = try? await HeldConnection.open(port: port) else { return false }
        try await probe.sendRequest()
        let served = try await probe.waitForResponse(timeout: .seconds(2))
        await probe.close()
        return served
    }
    guard process.isRunning else { return nil }
    return fulcrum
}
