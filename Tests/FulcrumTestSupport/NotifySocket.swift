import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A datagram socket playing systemd's side of the notify protocol: it is bound at `path`, which
/// a test gives a notifier (or a process) as `NOTIFY_SOCKET`, and collects what it is sent.
package final class NotifySocket: @unchecked Sendable {
    package let path: String
    private let descriptor: Int32

    /// Binds a new socket in the temporary directory.
    package init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-notify-\(UUID().uuidString.prefix(8))").path
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard descriptor >= 0 else { throw NotifySocketError(operation: "socket", code: errno) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else {
            close(descriptor)
            throw NotifySocketError(operation: "bind", code: errno)
        }
    }

    deinit {
        close(descriptor)
        unlink(path)
    }

    /// The next datagram, or nil when none arrives within `timeout`.
    package func receive(timeout: Duration = .seconds(10)) async throws -> String? {
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count >= 0 { return String(decoding: buffer[..<count], as: UTF8.self) }
            guard errno == EAGAIN || errno == EWOULDBLOCK else { throw NotifySocketError(operation: "recv", code: errno) }
            guard ContinuousClock.now < deadline else { return nil }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Datagrams until one contains `line` (as a whole line); all of them, that one last. Nil
    /// when none does within `timeout`.
    package func receive(until line: String, timeout: Duration = .seconds(60)) async throws -> [String]? {
        let deadline = ContinuousClock.now + timeout
        var received: [String] = []
        while let message = try await receive(timeout: deadline - ContinuousClock.now) {
            received.append(message)
            if message.split(separator: "\n").contains(Substring(line)) { return received }
        }
        return nil
    }
}

package struct NotifySocketError: Error, CustomStringConvertible {
    let operation: String
    let code: Int32
    package var description: String { "\(operation) failed: \(String(cString: strerror(code)))" }
}
