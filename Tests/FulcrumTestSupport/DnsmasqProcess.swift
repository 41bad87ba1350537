import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real `dnsmasq` answering on a loopback port, from a hosts file and SRV records the test
/// writes; `update(hosts:)` changes the addresses while it runs (dnsmasq watches its
/// `--hostsdir` with inotify), and `restart(srv:)` the SRV records (only read at start).
///
/// It is started by `spawnProcess`, not Foundation's `Process` (see there).
package final class DnsmasqProcess: @unchecked Sendable {
    /// Where `dnsmasq` is; nil when it is not installed (`apt-get install dnsmasq`).
    package static let executable: String? = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    package let port: Int
    private let directory: URL
    private let lock = NSLock()
    private var pid: pid_t?

    /// Starts one with `hosts` (`"10.0.0.1 app.example.internal"` lines) and `srv` records
    /// (`"_http._tcp.example.internal,app1.example.internal,8080,0,10"`, dnsmasq's
    /// `--srv-host`), on a free port.
    package static func start(hosts: [String], srv: [String] = []) async throws -> DnsmasqProcess {
        guard executable != nil else { throw RedisServerError("dnsmasq is not installed") }
        // The port is free for TCP a moment ago; dnsmasq also needs it for UDP, where another
        // test's DNS client may hold it. Then dnsmasq exits (status 2), and another port is tried.
        var attempt = 1
        while true {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-dnsmasq-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory.appendingPathComponent("hosts.d"), withIntermediateDirectories: true)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.path)
            let dnsmasq = DnsmasqProcess(port: try await freeLoopbackPort(), directory: directory)
            do {
                try dnsmasq.update(hosts: hosts)
                try await dnsmasq.launch(srv: srv)
                return dnsmasq
            } catch {
                dnsmasq.stop()
                guard attempt < 5 else { throw error }
                attempt += 1
            }
        }
    }

    private init(port: Int, directory: URL) {
        self.port = port
        self.directory = directory
    }

    /// Replaces the hosts file, in one rename, so dnsmasq never reads half of it.
    package func update(hosts: [String]) throws {
        let staged = directory.appendingPathComponent("hosts.staged")
        try (hosts.joined(separator: "\n") + "\n").write(to: staged, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: staged.path)
        guard rename(staged.path, directory.appendingPathComponent("hosts.d/hosts").path) == 0 else {
            throw RedisServerError("cannot replace dnsmasq's hosts file")
        }
    }

    /// Stops it and starts it again on the same port with `srv` records (the hosts stay).
    package func restart(srv: [String]) async throws {
        kill()
        // The port was just freed; should another socket take it meanwhile, wait and retry.
        var attempt = 1
        while true {
            do {
                return try await launch(srv: srv)
            } catch {
                guard attempt < 5 else { throw error }
                attempt += 1
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    private func launch(srv: [String]) async throws {
        let arguments =
            [
                Self.executable!, "--keep-in-foreground", "--conf-file=/dev/null", "--port=\(port)", "--listen-address=127.0.0.1",
                "--bind-interfaces", "--no-resolv", "--no-hosts", "--hostsdir=\(directory.appendingPathComponent("hosts.d").path)",
                "--pid-file=", "--user=\(NSUserName())", "--local-ttl=1",
            ] + srv.map { "--srv-host=\($0)" }
        let child = try spawnProcess(arguments)
        lock.withLock { pid = child }
        // Started when it answers; one that exits (the port was taken) fails here.
        try await Task.sleep(for: .milliseconds(200))
        if let status = exitStatus(of: child) {
            lock.withLock { pid = nil }
            throw RedisServerError("dnsmasq exited at start (status \(status))")
        }
    }

    /// Kills it; it can be started again with `restart(srv:)`.
    package func kill() {
        let running = lock.withLock {
            let running = pid
            pid = nil
            return running
        }
        if let child = running { killProcess(child) }
    }

    package func stop() {
        kill()
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }
}
