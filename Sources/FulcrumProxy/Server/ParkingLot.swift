import CFulcrumLinux
import HeapModule
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where client connections enter Fulcrum and where idle ones wait: one thread of its own with
/// an epoll set that holds every listening socket and every parked connection.
///
/// - **Accepting.** A readable listener is accepted from while its `max_connections` caps have
///   room (as HAProxy's `maxconn`: a full cap leaves clients in the kernel's backlog, and the
///   close that makes room resumes accepting). An accept that fails for want of descriptors or
///   memory pauses the listener for `AcceptErrorBackoff.pause`. Each connection goes to an event
///   loop in turn (`ProxyListener.serve`).
/// - **Parking.** An HTTP/1.1 connection idle for its frontend's `park_after` leaves its
///   channel (`ClientSocket.park`): the lot keeps a duplicate of its descriptor, its frontend
///   and its `client_idle` deadline, about 100 bytes instead of the channel's 10 KiB. When the
///   client sends again, the socket becomes a channel again; at the deadline, or if the client
///   leaves, it is closed.
/// - **Giving memory back.** The channels of parked connections are freed, but malloc keeps
///   what they used, scattered between live blocks, so the process's resident size would stay
///   at its high-water mark. At most once a second, after connections were parked, the lot
///   returns free pages to the system (`malloc_trim`), as HAProxy trims its pools.
///
/// NIO cannot do either: a channel never hands back its descriptor (docs/architecture.md, "What
/// a connection costs"). The thread is a one-thread `NIOThreadPool`; it blocks in `epoll_wait`
/// and never runs anything else.
final class ParkingLot: @unchecked Sendable {
    /// A parked connection: what its socket needs to become a channel again, or to be closed.
    private struct Parked {
        let listener: ProxyListener
        let limits: ConnectionLimits
        let frontend: String
        let deadline: NIODeadline
        /// Tells this parking apart from an earlier one of the same descriptor number, whose
        /// deadline may still be in `expiries`.
        let serial: UInt64
    }

    private struct Expiry: Comparable {
        let deadline: NIODeadline
        let descriptor: CInt
        let serial: UInt64

        static func < (lhs: Expiry, rhs: Expiry) -> Bool { lhs.deadline < rhs.deadline }
    }

    private enum Command {
        case listen(ProxyListener)
        case resume(ProxyListener)
        case close(ProxyListener)
        case stop
    }

    /// What the event loops (parking, commands) and the lot's thread share, under `shared`'s lock.
    private struct Shared {
        var parked: [CInt: Parked] = [:]
        var expiries = Heap<Expiry>()
        var parkedPerFrontend: [String: Int] = [:]
        var commands: [Command] = []
        var nextSerial: UInt64 = 0
        /// Connections parked since memory was last given back.
        var parkedSinceTrim = 0
        /// The time the thread looks at the deadlines next: a parking with an earlier deadline
        /// wakes it.
        var nextCheck = NIODeadline.distantFuture
    }

    /// The lot's thread's own state (never touched elsewhere).
    private struct ListenerState {
        let listener: ProxyListener
        let descriptor: CInt
        var errors = AcceptErrorBackoff()
        /// Out of the epoll set: a cap is full, or until `resumeAt` after a resource error.
        var paused = false
        var resumeAt: NIODeadline?
    }

    /// Most connections accepted from one listener per wake-up, so that a flood on one does not
    /// starve the others or the parked connections.
    private static let acceptsPerWake = 64
    private static let wakeTag = UInt64.max
    private static let listenerTag: UInt64 = 1 << 32
    /// The least time between two `malloc_trim` calls: each walks every arena under its lock.
    private static let trimInterval = TimeAmount.seconds(1)

    private let epoll: CInt
    private let wakeup: CInt
    private let shared = NIOLockedValueBox(Shared())
    private let thread = NIOThreadPool(numberOfThreads: 1)
    private let events: ListenerEventCounts
    private let logger: Logger
    private var listeners: [CInt: ListenerState] = [:]
    private var lastTrim = NIODeadline.uptimeNanoseconds(0)

    init(events: ListenerEventCounts, logger: Logger) throws {
        epoll = cfulcrum_epoll_create()
        guard epoll >= 0 else { throw IOError(errnoCode: errno, reason: "epoll_create1") }
        wakeup = cfulcrum_eventfd_create()
        guard wakeup >= 0, cfulcrum_epoll_add(epoll, wakeup, Self.wakeTag, 0) == 0 else {
            Glibc.close(epoll)
            throw IOError(errnoCode: errno, reason: "eventfd")
        }
        self.events = events
        self.logger = logger
        thread.start()
        thread.submit { [self] _ in run() }
    }

    // MARK: Called from anywhere

    /// Starts accepting on `listener`'s socket.
    func listen(_ listener: ProxyListener) { send(.listen(listener)) }

    /// Stops accepting on `listener`, closes its socket and the connections it parked.
    func close(_ listener: ProxyListener) { send(.close(listener)) }

    /// Closes every parked connection and ends the thread (once the listeners are closed).
    func stop() {
        send(.stop)
        thread.shutdownGracefully { _ in }
    }

    /// Parked connections now, per frontend (they count as open client connections).
    var parkedPerFrontend: [String: Int] { shared.withLockedValue { $0.parkedPerFrontend.filter { $0.value > 0 } } }

    /// Keeps `descriptor` (the lot owns it now) until its client sends again or `deadline`.
    func park(_ descriptor: CInt, listener: ProxyListener, limits: ConnectionLimits, frontend: String, deadline: NIODeadline) {
        let (added, wake) = shared.withLockedValue { shared -> (Bool, Bool) in
            shared.nextSerial += 1
            let serial = shared.nextSerial
            // In the set before the lock is released, so the thread cannot expire it first.
            guard cfulcrum_epoll_add(epoll, descriptor, UInt64(UInt32(bitPattern: descriptor)), 1) == 0 else { return (false, false) }
            shared.parked[descriptor] = Parked(listener: listener, limits: limits, frontend: frontend, deadline: deadline, serial: serial)
            shared.expiries.insert(Expiry(deadline: deadline, descriptor: descriptor, serial: serial))
            // Connections that came back leave their deadline behind; drop those in one pass
            // once they outnumber the parked ones.
            if shared.expiries.count > 2 * shared.parked.count + 4_096 {
                shared.expiries = Heap(shared.parked.map { Expiry(deadline: $1.deadline, descriptor: $0, serial: $1.serial) })
            }
            shared.parkedPerFrontend[frontend, default: 0] += 1
            shared.parkedSinceTrim += 1
            // The first parking since a trim wakes the thread to plan the next one.
            return (true, deadline < shared.nextCheck || shared.parkedSinceTrim == 1)
        }
        if !added {
            Glibc.close(descriptor)
            limits.closed()
        } else if wake {
            cfulcrum_eventfd_signal(wakeup)
        }
    }

    private func send(_ command: Command) {
        shared.withLockedValue { $0.commands.append(command) }
        cfulcrum_eventfd_signal(wakeup)
    }

    // MARK: The lot's thread

    private func run() {
        var data = [UInt64](repeating: 0, count: 256)
        var flags = [UInt32](repeating: 0, count: 256)
        while true {
            let count = cfulcrum_epoll_wait(epoll, &data, &flags, 256, waitMilliseconds())
            for index in 0..<max(0, Int(count)) {
                let tag = data[index]
                if tag == Self.wakeTag {
                    cfulcrum_eventfd_drain(wakeup)
                    if !runCommands() { return finish() }
                } else if tag & Self.listenerTag != 0 {
                    acceptReady(descriptor: CInt(truncatingIfNeeded: tag & 0xFFFF_FFFF))
                } else {
                    parkedReady(descriptor: CInt(truncatingIfNeeded: tag), hungUp: cfulcrum_epoll_hung_up(flags[index]) != 0)
                }
            }
            expireParked()
            resumeAfterBackoff()
            releaseFreeMemory()
        }
    }

    /// Trims malloc's free memory when connections were parked, at most once per interval.
    private func releaseFreeMemory() {
        let now = NIODeadline.now()
        guard now >= lastTrim + Self.trimInterval else { return }
        let parked = shared.withLockedValue { shared in
            defer { shared.parkedSinceTrim = 0 }
            return shared.parkedSinceTrim
        }
        guard parked > 0 else { return }
        lastTrim = now
        cfulcrum_release_free_memory()
    }

    /// Until the next parked deadline or listener resumption, in whole milliseconds (-1: none).
    private func waitMilliseconds() -> CInt {
        var next = listeners.values.compactMap(\.resumeAt).min() ?? .distantFuture
        let trim = lastTrim + Self.trimInterval
        next = shared.withLockedValue { shared in
            var check = min(next, shared.expiries.min?.deadline ?? .distantFuture)
            if shared.parkedSinceTrim > 0 { check = min(check, trim) }
            shared.nextCheck = check
            return check
        }
        guard next != .distantFuture else { return -1 }
        let nanoseconds = max(0, (next - .now()).nanoseconds)
        return CInt(min(Int64(Int32.max), (nanoseconds + 999_999) / 1_000_000))
    }

    /// Returns false on `stop`.
    private func runCommands() -> Bool {
        let commands = shared.withLockedValue { shared in
            defer { shared.commands.removeAll() }
            return shared.commands
        }
        for command in commands {
            switch command {
            case .listen(let listener):
                guard let descriptor = listener.socket.descriptor else { continue }
                listeners[descriptor] = ListenerState(listener: listener, descriptor: descriptor)
                arm(descriptor)
            case .resume(let listener):
                guard let descriptor = listener.socket.descriptor, listeners[descriptor]?.paused == true,
                    listeners[descriptor]?.resumeAt == nil
                else { continue }
                listeners[descriptor]?.paused = false
                arm(descriptor)
            case .close(let listener):
                if let descriptor = listener.socket.descriptor, listeners.removeValue(forKey: descriptor) != nil {
                    cfulcrum_epoll_remove(epoll, descriptor)
                }
                listener.socket.close()
                closeParked { $0.listener === listener }
            case .stop:
                return false
            }
        }
        return true
    }

    private func finish() {
        closeParked { _ in true }
        Glibc.close(wakeup)
        Glibc.close(epoll)
    }

    private func arm(_ listener: CInt) {
        cfulcrum_epoll_add(epoll, listener, Self.listenerTag | UInt64(UInt32(bitPattern: listener)), 0)
    }

    private func acceptReady(descriptor: CInt) {
        guard let state = listeners[descriptor], !state.paused else { return }
        let listener = state.listener
        for _ in 0..<Self.acceptsPerWake {
            let limits = listener.binding.limits
            guard limits.room > 0 else {
                pauseUntilRoom(descriptor, limits: limits)
                return
            }
            let accepted = cfulcrum_accept(descriptor)
            guard accepted >= 0 else {
                let code = errno
                if code == EAGAIN || code == EWOULDBLOCK { return }
                if code == EINTR { continue }
                if listeners[descriptor]!.errors.failed(errno: code, frontend: listener.binding.frontend, events: events, logger: logger) {
                    pause(descriptor, until: .now() + AcceptErrorBackoff.pause)
                    return
                }
                continue
            }
            limits.opened()
            // Inherited by the duplicate a parked connection keeps.
            var one: CInt = 1
            setsockopt(accepted, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
            listener.serve(accepted, limits: limits, lot: self)
        }
    }

    private func pauseUntilRoom(_ descriptor: CInt, limits: ConnectionLimits) {
        pause(descriptor, until: nil)
        let listener = listeners[descriptor]!.listener
        if let full = limits.full {
            events.record(ListenerEvent(frontend: listener.binding.frontend, kind: .limitReached, reason: full.rawValue))
        }
        limits.wakeWhenRoom { [weak self] in self?.send(.resume(listener)) }
    }

    private func pause(_ descriptor: CInt, until resumeAt: NIODeadline?) {
        listeners[descriptor]?.paused = true
        listeners[descriptor]?.resumeAt = resumeAt
        cfulcrum_epoll_remove(epoll, descriptor)
    }

    private func resumeAfterBackoff() {
        let now = NIODeadline.now()
        for (descriptor, state) in listeners {
            guard let resumeAt = state.resumeAt, resumeAt <= now else { continue }
            listeners[descriptor]?.paused = false
            listeners[descriptor]?.resumeAt = nil
            arm(descriptor)
        }
    }

    /// A parked connection's client sent something, or left.
    private func parkedReady(descriptor: CInt, hungUp: Bool) {
        guard let parked = unpark(descriptor) else { return }
        if !hungUp {
            var byte: UInt8 = 0
            let peeked = recv(descriptor, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT))
            if peeked > 0 {
                parked.listener.serve(descriptor, limits: parked.limits, lot: self)
                return
            }
        }
        // End of input, a reset, or an error: the client is gone.
        Glibc.close(descriptor)
        parked.limits.closed()
    }

    /// Takes `descriptor` out of the set and the table; the caller owns it then.
    private func unpark(_ descriptor: CInt) -> Parked? {
        shared.withLockedValue { shared in
            guard let parked = shared.parked.removeValue(forKey: descriptor) else { return nil }
            shared.parkedPerFrontend[parked.frontend, default: 1] -= 1
            cfulcrum_epoll_remove(epoll, descriptor)
            return parked
        }
    }

    /// Closes the parked connections whose `client_idle` passed.
    private func expireParked() {
        let now = NIODeadline.now()
        let expired = shared.withLockedValue { shared -> [(CInt, ConnectionLimits)] in
            var expired: [(CInt, ConnectionLimits)] = []
            while let first = shared.expiries.min, first.deadline <= now {
                shared.expiries.removeMin()
                guard let parked = shared.parked[first.descriptor], parked.serial == first.serial else { continue }
                shared.parked[first.descriptor] = nil
                shared.parkedPerFrontend[parked.frontend, default: 1] -= 1
                cfulcrum_epoll_remove(epoll, first.descriptor)
                expired.append((first.descriptor, parked.limits))
            }
            return expired
        }
        for (descriptor, limits) in expired {
            Glibc.close(descriptor)
            limits.closed()
        }
    }

    private func closeParked(where shouldClose: (Parked) -> Bool) {
        let closing = shared.withLockedValue { shared -> [(CInt, ConnectionLimits)] in
            var closing: [(CInt, ConnectionLimits)] = []
            for (descriptor, parked) in shared.parked where shouldClose(parked) {
                shared.parked[descriptor] = nil
                shared.parkedPerFrontend[parked.frontend, default: 1] -= 1
                cfulcrum_epoll_remove(epoll, descriptor)
                closing.append((descriptor, parked.limits))
            }
            return closing
        }
        for (descriptor, limits) in closing {
            Glibc.close(descriptor)
            limits.closed()
        }
    }
}
