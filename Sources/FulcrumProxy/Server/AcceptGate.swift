import NIOConcurrencyHelpers
import NIOCore

/// On a listening socket: accepts connections only while its frontend's and the process's
/// `max_connections` caps have room, as HAProxy's `maxconn` does.
///
/// A server channel accepts when its pipeline asks it to read; this handler holds that request
/// back while a cap is full, so new connections wait in the kernel's backlog (and time out
/// there, as they would behind a full HAProxy) instead of being accepted and refused. A close
/// that makes room, or a reload that raises a cap, lets the held request through.
///
/// The caps are exact. A read asks for at most the room it saw (`maxMessagesPerRead`), but
/// another listener sharing the global cap may take that room first; a connection accepted
/// then waits here, unregistered and unread, until there is room for it too.
final class AcceptGate: ChannelDuplexHandler {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel
    typealias OutboundIn = Never

    /// NIO's own batch: how many connections one readable event accepts at most.
    private static let acceptsPerRead = 4

    private let binding: NIOLockedValueBox<ProxyListener.Binding>
    private let events: ListenerEventCounts
    private var acceptsPerRead = AcceptGate.acceptsPerRead
    /// Whether the listener is waiting for room (its read requests are held meanwhile).
    private var waitingForRoom = false
    /// Accepted connections that found no room, in arrival order.
    private var waitingConnections = CircularBuffer<NIOAny>()

    init(binding: NIOLockedValueBox<ProxyListener.Binding>, events: ListenerEventCounts) {
        self.binding = binding
        self.events = events
    }

    private var current: (limits: ConnectionLimits, frontend: String) {
        binding.withLockedValue { ($0.limits, $0.frontend) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let limits = current.limits
        guard waitingConnections.isEmpty, limits.room > 0 else {
            waitingConnections.append(data)
            waitForRoom(context: context)
            return
        }
        admit(data, limits: limits, context: context)
    }

    func read(context: ChannelHandlerContext) {
        guard !waitingForRoom else { return }
        let room = current.limits.room
        guard room > 0, waitingConnections.isEmpty else {
            waitForRoom(context: context)
            return
        }
        setAcceptsPerRead(min(room, Self.acceptsPerRead), context: context)
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // The listener closed (a reload removed it): nothing will serve these.
        while let waiting = waitingConnections.popFirst() {
            unwrapInboundIn(waiting).close(promise: nil)
        }
        context.fireChannelInactive()
    }

    private func admit(_ data: NIOAny, limits: ConnectionLimits, context: ChannelHandlerContext) {
        limits.opened()
        unwrapInboundIn(data).closeFuture.whenComplete { _ in limits.closed() }
        context.fireChannelRead(data)
    }

    private func waitForRoom(context: ChannelHandlerContext) {
        guard !waitingForRoom else { return }
        waitingForRoom = true
        let (limits, frontend) = current
        if let full = limits.full {
            events.record(ListenerEvent(frontend: frontend, kind: .limitReached, reason: full.rawValue))
        }
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let boundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        limits.wakeWhenRoom {
            eventLoop.execute {
                // A listener closed by a reload meanwhile has nothing left to accept.
                guard handler.value.waitingForRoom, boundContext.value.channel.isActive else { return }
                handler.value.waitingForRoom = false
                handler.value.resume(context: boundContext.value)
            }
        }
    }

    /// Admits the connections that waited, as far as there is room, then asks for more.
    private func resume(context: ChannelHandlerContext) {
        let limits = current.limits
        while !waitingConnections.isEmpty, limits.room > 0 {
            admit(waitingConnections.removeFirst(), limits: limits, context: context)
        }
        // The read request held while waiting, made now (or held again).
        read(context: context)
    }

    private func setAcceptsPerRead(_ count: Int, context: ChannelHandlerContext) {
        guard count != acceptsPerRead else { return }
        acceptsPerRead = count
        try? context.channel.syncOptions?.setOption(.maxMessagesPerRead, value: UInt(count))
    }
}
