import Foundation
import NIOCore
import NIOPosix

/// A real `redis-server` on a loopback port, with nothing saved to disk, for the length of a
/// test. It can be paused (SIGSTOP: connections stay open and nothing answers), resumed,
/// killed, and started again on the same port.
package final class RedisServerProcess: @unchecked Sendable {
    /// Where `redis-server` is; nil when it is not installed (`apt-get install redis-server`).
    package static let executable: String? = ["/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    package let port: Int
    private var process: Process?

    private init(port: Int) {
        self.port = port
    }

    /// Starts one on a free port; returns once it accepts connections.
    package static func start() async throws -> RedisServerProcess {
        let server = RedisServerProcess(port: try await freeLoopbackPort())
        try await server.restart()
        return server
    }

    /// Starts it again (after `kill`), on the same port.
    package func restart() async throws {
        guard let executable = Self.executable else { throw RedisServerError("redis-server is not installed") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [
            "--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--loglevel", "warning",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        self.process = process
        let deadline = ContinuousClock.now + .seconds(20)
        while !loopbackAccepts(port: port) {
            guard process.isRunning, ContinuousClock.now < deadline else {
                kill()
                throw RedisServerError("redis-server did not listen on \(port)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// SIGSTOP: it keeps its connections and answers nothing.
    package func pause() {
        if let process, process.isRunning { Foundation.kill(process.processIdentifier, SIGSTOP) }
    }

    package func resume() {
        if let process, process.isRunning { Foundation.kill(process.processIdentifier, SIGCONT) }
    }

    /// SIGKILL, and waits for it to exit.
    package func kill() {
        guard let process, process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGCONT)
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    deinit { kill() }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port` (a blocking connect).
package func loopbackAccepts(port: Int) -> Bool {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return false }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}

/// A loopback port that was free a moment ago.
package func freeLoopbackPort() async throws -> Int {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
    let port = channel.localAddress!.port!
    try await channel.close()
    return port
}

package struct RedisServerError: Error, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
}
