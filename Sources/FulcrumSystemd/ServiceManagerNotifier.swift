#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Fulcrum's side of systemd's notify protocol (`sd_notify(3)`): one datagram per state
/// change to the socket `NOTIFY_SOCKET` names, for a `Type=notify` unit.
///
/// Written here rather than linked from libsystemd: the protocol is one `sendto` of a few
/// `KEY=VALUE` lines, and libsystemd would be a C dependency for every build, container and
/// test machine. Failures are ignored, as `sd_notify` callers do: a service manager that
/// cannot be told is no reason to stop serving.
package struct ServiceManagerNotifier: Sendable {
    /// A state to announce.
    package enum State: Sendable, Equatable {
        /// Serving: every frontend listens (`READY=1`), also sent when a reload ends.
        case ready
        /// A reload has begun (`RELOADING=1` with `MONOTONIC_USEC`, which `Type=notify-reload`
        /// requires).
        case reloading
        /// Graceful shutdown has begun (`STOPPING=1`).
        case stopping
        /// A line for `systemctl status` (`STATUS=`).
        case status(String)

        /// The datagram's text.
        package var message: String {
            switch self {
            case .ready: "READY=1"
            case .reloading: "RELOADING=1\nMONOTONIC_USEC=\(Self.monotonicMicroseconds())"
            case .stopping: "STOPPING=1"
            case .status(let text): "STATUS=\(text.replacingNewlines())"
            }
        }

        private static func monotonicMicroseconds() -> UInt64 {
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
        }
    }

    /// The socket's path; a leading `@` names one in the abstract namespace.
    package let socketPath: String

    /// The notifier `NOTIFY_SOCKET` in `environment` names; nil when it is unset, empty, or not
    /// a Unix socket path (systemd also allows `vsock:`, which Fulcrum has no use for).
    package init?(environment: [String: String]) {
        guard let path = environment["NOTIFY_SOCKET"], path.hasPrefix("/") || path.hasPrefix("@") else {
            return nil
        }
        self.socketPath = path
    }

    /// Sends `states` in one datagram. Returns whether it was sent.
    @discardableResult
    package func notify(_ states: State...) -> Bool {
        send(states.map(\.message).joined(separator: "\n"))
    }

    private func send(_ message: String) -> Bool {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var pathBytes = Array(socketPath.utf8)
        let isAbstract = pathBytes.first == UInt8(ascii: "@")
        if isAbstract { pathBytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        // A path must leave room for its terminating zero; an abstract name need not.
        guard pathBytes.count < capacity || (isAbstract && pathBytes.count <= capacity) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: pathBytes) }
        let length = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + pathBytes.count + (isAbstract ? 0 : 1)

        #if canImport(Glibc)
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #else
        let descriptor = socket(AF_UNIX, SOCK_DGRAM, 0)
        #endif
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        let bytes = Array(message.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bytes.withUnsafeBytes { sendto(descriptor, $0.baseAddress, $0.count, 0, socketAddress, socklen_t(length)) }
            }
        }
        return sent == bytes.count
    }
}

extension String {
    fileprivate func replacingNewlines() -> String {
        String(map { $0.isNewline ? " " : $0 })
    }
}
