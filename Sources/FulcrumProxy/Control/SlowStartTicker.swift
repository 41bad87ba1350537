import FulcrumBalancing
import NIOConcurrencyHelpers
import NIOCore

/// Moves every ramping server's slow start along (`BalancedServer.advanceSlowStart`), on one
/// event loop, every `interval`.
///
/// The ramp is published as one atomic per server that the algorithms read on each pick, so
/// the data plane never reads a clock for it. A tick that finds nothing ramping touches one
/// atomic per server and nothing else; HAProxy recomputes its ramps on a timer the same way.
final class SlowStartTicker: Sendable {
    /// Ramps move in steps of at most this; at 30 s, a step is under 1 % of the weight.
    static let interval = TimeAmount.milliseconds(200)

    private let eventLoop: any EventLoop
    private let servers: NIOLockedValueBox<[BalancedServer]>
    private let task = NIOLockedValueBox<RepeatedTask?>(nil)

    init(eventLoop: any EventLoop, snapshot: RuntimeSnapshot) {
        self.eventLoop = eventLoop
        self.servers = NIOLockedValueBox(Self.servers(of: snapshot))
    }

    /// Every server of the snapshot: a tick looks only at those ramping (one atomic each).
    private static func servers(of snapshot: RuntimeSnapshot) -> [BalancedServer] {
        snapshot.backends.flatMap(\.servers)
    }

    func start() {
        let task = eventLoop.scheduleRepeatedTask(initialDelay: Self.interval, delay: Self.interval) { [self] _ in
            tick(now: NIODeadline.now().uptimeNanoseconds)
        }
        self.task.withLockedValue { $0 = task }
    }

    /// Follows a reload: kept servers keep their ramps (the snapshot reused them).
    func update(to snapshot: RuntimeSnapshot) {
        let updated = Self.servers(of: snapshot)
        servers.withLockedValue { $0 = updated }
    }

    func stop() {
        task.withLockedValue { task in
            task?.cancel()
            task = nil
        }
    }

    func tick(now: UInt64) {
        for server in servers.withLockedValue({ $0 }) where server.isRamping {
            server.advanceSlowStart(now: now)
        }
    }
}
