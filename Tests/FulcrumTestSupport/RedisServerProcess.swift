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

    /// The running redis-server's process id.
    package var processIdentifier: Int32? { process?.processIdentifier }

    private init(port: Int) {
        self.port = port
    }

    /// Starts one on a free port; returns once it answers there.
    ///
    /// A port free a moment ago may be taken before redis-server binds it (by another test's
    /// server, or a connection's own port): then another port is tried, up to five.
    package static func start() async throws -> RedisServerProcess {
        var attempt = 1
        while true {
            let server = RedisServerProcess(port: try await freeLoopbackPort())
            do {
                try await server.restart()
                return server
            } catch let error as RedisServerError where error.portTaken && attempt < 5 {
                attempt += 1
            }
        }
    }

    /// Starts it again (after `kill`), on the same port; returns once it answers there.
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
        while true {
            if loopbackAccepts(port: port) {
                // Something listens: it must be this redis-server, not another test's server
                // that holds the port (this one then exits, unable to bind).
                let port = self.port
                let answered = try await NIOThreadPool.singleton.runIfActive { redisProcessIdentifier(port: port) }
                if answered == process.processIdentifier { return }
                if !process.isRunning {
                    self.process = nil
                    throw RedisServerError("port \(port) is taken by another server", portTaken: true)
                }
            }
            guard process.isRunning, ContinuousClock.now < deadline else {
                let exited = !process.isRunning
                kill()
                self.process = nil
                throw RedisServerError("redis-server did not listen on \(port)", portTaken: exited)
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
    guard let descriptor = connectedLoopbackSocket(port: port) else { return false }
    close(descriptor)
    return true
}

/// A socket connected to 127.0.0.1:`port` (a blocking connect), or nil; the caller closes it.
private func connectedLoopbackSocket(port: Int) -> Int32? {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return nil }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        close(descriptor)
        return nil
    }
    return descriptor
}

/// A loopback port that was free a moment ago.
package func freeLoopbackPort() async throws -> Int {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
    let port = channel.localAddress!.port!
    try await channel.close()
    return port
}

/// The process id a Redis server on 127.0.0.1:`port` reports (`INFO server`), or nil when
/// what answers there, within two seconds, is not Redis (a blocking exchange).
package func redisProcessIdentifier(port: Int) -> Int32? {
    guard let descriptor = connectedLoopbackSocket(port: port) else { return nil }
    defer { close(descriptor) }
    var wait = timeval(tv_sec: 2, tv_usec: 0)
    setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
    let command = Array("INFO server\r\n".utf8)
    guard send(descriptor, command, command.count, Int32(MSG_NOSIGNAL)) == command.count else { return nil }
    var reply: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while reply.count < 65_536 {
        let count = recv(descriptor, &chunk, chunk.count, 0)
        guard count > 0 else { return nil }
        reply += chunk[..<count]
        let text = String(decoding: reply, as: UTF8.self)
        if let field = text.range(of: "\r\nprocess_id:"), let end = text.range(of: "\r\n", range: field.upperBound..<text.endIndex) {
            return Int32(text[field.upperBound..<end.lowerBound])
        }
    }
    return nil
}

package struct RedisServerError: Error, CustomStringConvertible {
    package let description: String
    /// Whether another port may do better.
    let portTaken: Bool
    package init(_ description: String) {
        self.init(description, portTaken: false)
    }

    init(_ description: String, portTaken: Bool) {
        self.description = description
        self.portTaken = portTaken
    }
}
