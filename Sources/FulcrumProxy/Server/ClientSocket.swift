import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A client connection's socket as Fulcrum accepted it: what its channel needs to count it
/// against its caps until it really closes, and to park it (`ParkingLot`).
///
/// Made on the parking lot's thread, then used only on the channel's event loop.
final class ClientSocket: @unchecked Sendable {
    /// The descriptor the channel owns.
    let descriptor: CInt
    let listener: ProxyListener
    /// The caps it counts against (those of the binding it was accepted with).
    let limits: ConnectionLimits
    private let lot: ParkingLot
    /// Its channel's initializer ran (the channel's close accounts for it from then on).
    var isAttached = false
    /// It left its channel for the lot: the channel's close does not close the connection.
    private(set) var isParked = false

    init(descriptor: CInt, listener: ProxyListener, limits: ConnectionLimits, lot: ParkingLot) {
        self.descriptor = descriptor
        self.listener = listener
        self.limits = limits
        self.lot = lot
    }

    /// The channel closed: the connection did too, unless it was parked.
    func channelClosed() {
        if !isParked { limits.closed() }
    }

    /// Moves the connection from `channel` to the parking lot until its client sends again or
    /// `deadline`, and closes the channel. Call only with nothing buffered in the pipeline and
    /// nothing left to write. Returns false (and does nothing) if the descriptor cannot be
    /// duplicated.
    @discardableResult
    func park(closing channel: any Channel, frontend: String, deadline: NIODeadline) -> Bool {
        // The channel closes its descriptor; the duplicate keeps the socket open.
        let kept = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
        guard kept >= 0 else { return false }
        isParked = true
        channel.close(promise: nil)
        lot.park(kept, listener: listener, limits: limits, frontend: frontend, deadline: deadline)
        return true
    }
}
