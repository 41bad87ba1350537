import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A frontend's listening socket, owned by Fulcrum rather than by a NIO server channel.
///
/// Fulcrum accepts on it itself (`ParkingLot`) and hands each connection to an event loop with
/// `ClientBootstrap.withConnectedSocket`. A NIO server channel would accept just as well, but a
/// channel it creates never gives its descriptor back, and parking an idle connection needs
/// the descriptor (docs/architecture.md, "What a connection costs").
final class ListeningSocket: Sendable {
    /// The address actually bound (the port is known here when the configured one was 0).
    let boundAddress: SocketAddress
    private let descriptorBox: NIOLockedValueBox<CInt?>

    /// Binds `host:port` (a name resolves to its first address, as `ServerBootstrap.bind` does)
    /// and listens. Non-blocking, close-on-exec, with `SO_REUSEADDR` and NIO's server backlog.
    init(host: String, port: Int, backlog: CInt = 1024) throws {
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let family = address.protocol.rawValue
        let descriptor = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        do {
            var one: CInt = 1
            guard setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size)) == 0 else {
                throw IOError(errnoCode: errno, reason: "setsockopt")
            }
            let bound = address.withSockAddr { pointer, size in bind(descriptor, pointer, socklen_t(size)) }
            guard bound == 0 else { throw IOError(errnoCode: errno, reason: "bind") }
            guard listen(descriptor, backlog) == 0 else { throw IOError(errnoCode: errno, reason: "listen") }
            boundAddress = try Self.localAddress(of: descriptor)
        } catch {
            _ = Glibc.close(descriptor)
            throw error
        }
        descriptorBox = NIOLockedValueBox(descriptor)
    }

    /// The descriptor, nil once closed.
    var descriptor: CInt? { descriptorBox.withLockedValue { $0 } }

    /// Closes the socket (once): clients still in its backlog are refused.
    func close() {
        let descriptor = descriptorBox.withLockedValue { descriptor in
            defer { descriptor = nil }
            return descriptor
        }
        if let descriptor { _ = Glibc.close(descriptor) }
    }

    private static func localAddress(of descriptor: CInt) throws -> SocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard result == 0 else { throw IOError(errnoCode: errno, reason: "getsockname") }
        switch CInt(storage.ss_family) {
        case AF_INET:
            return withUnsafeBytes(of: &storage) { SocketAddress($0.load(as: sockaddr_in.self)) }
        case AF_INET6:
            return withUnsafeBytes(of: &storage) { SocketAddress($0.load(as: sockaddr_in6.self)) }
        default:
            throw IOError(errnoCode: EAFNOSUPPORT, reason: "getsockname")
        }
    }
}
