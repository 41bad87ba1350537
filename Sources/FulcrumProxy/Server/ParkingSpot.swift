import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A listener's place in the parking lot: parks its idle connections, and makes a parked one
/// a channel again, with the listener's current settings, when its client sends again.
///
/// A connection that came back is not a child of the listener's server channel, so the spot
/// keeps the set its drain needs (`connections`), and counts it against the caps until it
/// closes (the lot counted it while parked).
final class ParkingSpot: Sendable {
    let lot: ParkingLot
    /// The channels made from parked connections (a reload or shutdown drains them).
    let connections = ConnectionTracker()
    private let binding: NIOLockedValueBox<ProxyListener.Binding>
    private let group: any EventLoopGroup
    private let contexts: LoopContextTable
    /// Its listener closed: nothing parks any more, and what was parked is closed.
    private let closed = Atomic(false)

    var isClosed: Bool { closed.load(ordering: .relaxed) }

    init(lot: ParkingLot, binding: NIOLockedValueBox<ProxyListener.Binding>, group: any EventLoopGroup, contexts: LoopContextTable) {
        self.lot = lot
        self.binding = binding
        self.group = group
        self.contexts = contexts
    }

    /// Moves `channel`'s connection to the lot until its client sends again or `deadline`, and
    /// closes the channel. Call on the channel's loop, with nothing buffered in its pipeline
    /// and nothing left to write. Returns false, and does nothing, when the channel's socket
    /// cannot be had (`SocketDescriptor`). `proxied` is the PROXY protocol header the
    /// connection began with, kept for its next channel.
    @discardableResult
    func park(_ channel: any Channel, deadline: NIODeadline, proxied: ProxyProtocolHeader? = nil) -> Bool {
        // A draining connection closes instead, once its handler sees it idle.
        guard !isClosed, let descriptor = SocketDescriptor.of(channel) else { return false }
        // The channel closes its descriptor; the duplicate keeps the socket open.
        let kept = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
        guard kept >= 0 else { return false }
        let current = binding.withLockedValue { $0 }
        // The parked socket counts against the caps from now; the channel's close uncounts
        // the channel.
        current.limits.opened()
        channel.close(promise: nil)
        lot.park(kept, spot: self, limits: current.limits, frontend: current.frontend, deadline: deadline, proxied: proxied)
        return true
    }

    /// Its listener is closing (a reload removed it, or a shutdown): closes the connections it
    /// parked, and parks no more; the channels that came back from the lot drain.
    func close(drained promise: EventLoopPromise<Void>?) {
        closed.store(true, ordering: .relaxed)
        lot.close(self)
        connections.quiesce(promise: promise)
    }

    /// Makes a parked connection, whose client sent something, a channel on the next event
    /// loop. It counts against `limits` (the lot's count passes to the channel).
    func resume(_ descriptor: CInt, limits: ConnectionLimits, proxied: ProxyProtocolHeader?) {
        let current = binding.withLockedValue { $0 }
        let (connections, contexts) = (connections, contexts)
        let attached = NIOLockedValueBox(false)
        // On the loop itself, where `withConnectedSocket` sets the channel up at once; called
        // from another thread, it would submit that with a promise and a future chain.
        let loop = group.next()
        loop.execute { [self] in
            ClientBootstrap(group: loop)
                // (Drops the bootstrap's one default option, TCP_NODELAY, which it would apply
                // through a chain of futures: the socket has it from its first channel.
                // Multipath TCP concerns sockets the bootstrap creates; it creates none here.)
                .enableMPTCP(true)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        attached.withLockedValue { $0 = true }
                        connections.add(channel)
                        channel.closeFuture.whenComplete { _ in
                            connections.remove(channel)
                            limits.closed()
                        }
                        try channel.syncOptions?.setOption(.allowRemoteHalfClosure, value: true)
                        try current.pipeline.configure(
                            channel: channel,
                            loop: contexts.context(for: loop),
                            parking: self,
                            proxied: proxied,
                            unparked: true
                        )
                    }
                }
                .withConnectedSocket(descriptor)
                .whenFailure { _ in
                    // Failing before the initializer ran, the socket never became a channel,
                    // and nothing closed it; after, the channel's close did.
                    if !attached.withLockedValue({ $0 }) {
                        _ = Glibc.close(descriptor)
                        limits.closed()
                    }
                }
        }
    }
}
