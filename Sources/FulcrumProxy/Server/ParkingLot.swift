import CFulcrumLinux
import HeapModule
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where idle client connections wait outside NIO: one thread of its own with an epoll set of
/// parked sockets.
///
/// - **Parking.** An HTTP/1.1 connection idle for its frontend's `park_after` leaves its
///   channel (`ParkingSpot.park`): the lot keeps a duplicate of its descriptor, its listener
///   and its `client_idle` deadline, about 100 bytes instead of the channel's 10 KiB. When the
///   client sends again, the socket becomes a channel again (`ParkingSpot.resume`); at the
///   deadline, or if the client leaves, it is closed. A parked connection counts against the
///   `max_connections` caps as an open one.
/// - **Giving memory back.** The channels of parked connections are freed, but malloc keeps
///   what they used, scattered between live blocks, so the process's resident size would stay
///   at its high-water mark. At most once a second, after connections were parked, the lot
///   returns free pages to the system (`malloc_trim`), as HAProxy trims its pools.
///
/// NIO has no place for a socket that is not a channel. The thread is a one-thread
/// `NIOThreadPool`; it blocks in `epoll_wait` and runs nothing else.
final class ParkingLot: @unchecked Sendable {
    /// A parked connection: what its socket needs to become a channel again, or to be closed.
    private struct Parked {
        let spot: ParkingSpot
        let limits: ConnectionLimits
        let frontend: String
        let deadline: NIODeadline
        /// The PROXY protocol header the connection began with (who its client is), by
        /// reference: an entry stays about 100 bytes when, as usually, there is none.
        let proxied: ProxyProtocolHeader.Reference?
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
        case close(ParkingSpot)
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

    private static let wakeTag = UInt64.max
    /// The least time between two `malloc_trim` calls: each walks every arena under its lock.
    private static let trimInterval = TimeAmount.seconds(1)

    private let epoll: CInt
    private let wakeup: CInt
    private let shared = NIOLockedValueBox(Shared())
    private let thread = NIOThreadPool(numberOfThreads: 1)
    private var lastTrim = NIODeadline.uptimeNanoseconds(0)

    init() throws {
        epoll = cfulcrum_epoll_create()
        guard epoll >= 0 else { throw IOError(errnoCode: errno, reason: "epoll_create1") }
        wakeup = cfulcrum_eventfd_create()
        guard wakeup >= 0, cfulcrum_epoll_add(epoll, wakeup, Self.wakeTag, 0) == 0 else {
            Glibc.close(epoll)
            throw IOError(errnoCode: errno, reason: "eventfd")
        }
        thread.start()
        thread.submit { [self] _ in run() }
    }

    // MARK: Called from anywhere

    /// Closes the connections parked from `spot` (its listener is closing).
    func close(_ spot: ParkingSpot) { send(.close(spot)) }

    /// Closes every parked connection and ends the thread.
    func stop() {
        send(.stop)
        thread.shutdownGracefully { _ in }
    }

    /// Parked connections now, per frontend (they count as open client connections).
    var parkedPerFrontend: [String: Int] { shared.withLockedValue { $0.parkedPerFrontend.filter { $0.value > 0 } } }

    /// Keeps `descriptor` (the lot owns it now) until its client sends again or `deadline`.
    func park(
        _ descriptor: CInt,
        spot: ParkingSpot,
        limits: ConnectionLimits,
        frontend: String,
        deadline: NIODeadline,
        proxied: ProxyProtocolHeader?
    ) {
        let (added, wake) = shared.withLockedValue { shared -> (Bool, Bool) in
            // A spot closed before this call's lock saw the lot's sweep of it, or will be
            // swept after: either way its connections must not stay.
            guard !spot.isClosed else { return (false, false) }
            shared.nextSerial += 1
            let serial = shared.nextSerial
            // In the set before the lock is released, so the thread cannot expire it first.
            guard cfulcrum_epoll_add(epoll, descriptor, UInt64(UInt32(bitPattern: descriptor)), 1) == 0 else { return (false, false) }
            shared.parked[descriptor] = Parked(
                spot: spot,
                limits: limits,
                frontend: frontend,
                deadline: deadline,
                proxied: proxied.map(ProxyProtocolHeader.Reference.init),
                serial: serial
            )
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
                } else {
                    parkedReady(descriptor: CInt(truncatingIfNeeded: tag), hungUp: cfulcrum_epoll_hung_up(flags[index]) != 0)
                }
            }
            expireParked()
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

    /// Until the next parked deadline or trim, in whole milliseconds (-1: none).
    private func waitMilliseconds() -> CInt {
        let trim = lastTrim + Self.trimInterval
        let next = shared.withLockedValue { shared in
            var check = shared.expiries.min?.deadline ?? .distantFuture
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
            case .close(let spot):
                closeParked { $0.spot === spot }
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

    /// A parked connection's client sent something, or left.
    private func parkedReady(descriptor: CInt, hungUp: Bool) {
        guard let parked = unpark(descriptor) else { return }
        if !hungUp {
            var byte: UInt8 = 0
            let peeked = recv(descriptor, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT))
            if peeked > 0 {
                parked.spot.resume(descriptor, limits: parked.limits, proxied: parked.proxied?.header)
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
