import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The descriptor of a NIO socket channel, which parking needs (`ParkingSpot`) and NIO does
/// not expose.
///
/// A channel owns its socket and never hands its descriptor out (`BaseSocket.descriptor` is
/// private, `takeDescriptorOwnership` internal). It is read here by reflection, from the
/// channel's `socket` and that socket's `descriptor`, and then verified: the descriptor must be
/// a socket whose local and peer addresses are the channel's. If NIO's layout changes, the read
/// finds nothing or fails the check, and the connection is simply not parked
/// (`IdleMemoryTests` would fail CI then). The alternative, accepting on a thread of Fulcrum's
/// own so that it knows every descriptor, cost 22 % more CPU per new connection
/// (docs/architecture.md, "What a connection costs"). The fix belongs upstream: a public way to
/// take the descriptor out of a socket channel.
enum SocketDescriptor {
    /// The descriptor of `channel`'s socket, or nil. Costs a few microseconds (reflection and
    /// two system calls): for parking, not for every connection.
    static func of(_ channel: any Channel) -> CInt? {
        guard let socket = storedProperty("socket", of: channel),
            let descriptor = storedProperty("descriptor", of: socket) as? CInt,
            descriptor >= 0,
            let local = channel.localAddress, let remote = channel.remoteAddress,
            address(of: descriptor, peer: false) == local,
            address(of: descriptor, peer: true) == remote
        else { return nil }
        return descriptor
    }

    /// A stored property of `value` or of one of its superclasses, by name.
    private static func storedProperty(_ label: String, of value: Any) -> Any? {
        var mirror: Mirror? = Mirror(reflecting: value)
        while let current = mirror {
            if let child = current.children.first(where: { $0.label == label }) { return child.value }
            mirror = current.superclassMirror
        }
        return nil
    }

    /// The socket's local (or peer) address, nil if `descriptor` is not an internet socket.
    private static func address(of descriptor: CInt, peer: Bool) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                peer ? getpeername(descriptor, $0, &length) : getsockname(descriptor, $0, &length)
            }
        }
        guard result == 0 else { return nil }
        switch CInt(storage.ss_family) {
        case AF_INET: return withUnsafeBytes(of: &storage) { SocketAddress($0.load(as: sockaddr_in.self)) }
        case AF_INET6: return withUnsafeBytes(of: &storage) { SocketAddress($0.load(as: sockaddr_in6.self)) }
        default: return nil
        }
    }
}
