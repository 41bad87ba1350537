import FulcrumConfig
import NIOConcurrencyHelpers
import Synchronization

/// Client connections open now, counted against a cap (`max_connections`), and shared by
/// every listener the cap covers: the process's, or one frontend's over its addresses.
///
/// Counting is two atomic operations per connection (one when it is accepted, one when it
/// closes). Listeners that found no room leave a wake-up here; the close or cap rise that
/// makes room calls them, and they ask the kernel for connections again.
final class ConnectionLimit: Sendable {
    private let openConnections = Synchronization.Atomic<Int>(0)
    private let capValue: Synchronization.Atomic<Int>
    private let waiterCount = Synchronization.Atomic<Int>(0)
    private let waiters = NIOLockedValueBox<[@Sendable () -> Void]>([])

    /// - Parameter cap: the most connections open at once; nil: no cap.
    init(cap: Int?) {
        capValue = Atomic(cap ?? .max)
    }

    /// The most connections open at once (`Int.max`: no cap). Raising it wakes the waiting
    /// listeners; lowering it closes nothing, new connections wait until enough have closed.
    var cap: Int {
        get { capValue.load(ordering: .relaxed) }
        set {
            capValue.store(newValue, ordering: .relaxed)
            wakeWaiters()
        }
    }

    var open: Int { openConnections.load(ordering: .relaxed) }

    /// How many more connections may be accepted now.
    var room: Int { max(0, cap - open) }

    func opened() {
        openConnections.add(1, ordering: .relaxed)
    }

    func closed() {
        openConnections.subtract(1, ordering: .relaxed)
        if waiterCount.load(ordering: .relaxed) > 0 {
            wakeWaiters()
        }
    }

    /// Calls `wake` once, when there may be room again (it can be called with none left, when
    /// another listener took the room first: the caller checks again).
    func wakeWhenRoom(_ wake: @escaping @Sendable () -> Void) {
        waiters.withLockedValue { waiters in
            waiters.append(wake)
            waiterCount.store(waiters.count, ordering: .relaxed)
        }
        // A connection that closed between the caller's check and the line above saw no
        // waiter; look again so that its room is not missed.
        if room > 0 {
            wakeWaiters()
        }
    }

    private func wakeWaiters() {
        let woken = waiters.withLockedValue { waiters in
            defer {
                waiters.removeAll()
                waiterCount.store(0, ordering: .relaxed)
            }
            return waiters
        }
        for wake in woken { wake() }
    }
}

/// The caps a listener's connections count against: the process's and its frontend's.
struct ConnectionLimits: Sendable {
    let global: ConnectionLimit
    let frontend: ConnectionLimit

    /// How many more connections the listener may accept now.
    var room: Int { min(global.room, frontend.room) }

    /// Which cap is full, for the metric and the log; nil when there is room.
    var full: ListenerEvent.Limit? {
        if frontend.room == 0 { return .frontend }
        return global.room == 0 ? .global : nil
    }

    func opened() {
        global.opened()
        frontend.opened()
    }

    func closed() {
        global.closed()
        frontend.closed()
    }

    /// Calls `wake` (perhaps more than once) when a full cap may have room again.
    func wakeWhenRoom(_ wake: @escaping @Sendable () -> Void) {
        if frontend.room == 0 { frontend.wakeWhenRoom(wake) }
        if global.room == 0 { global.wakeWhenRoom(wake) }
    }
}

/// The caps of the running configuration. A frontend's count lives as long as the process
/// (its connections outlive reloads, and a cap set by a later reload must see them); the caps
/// follow the configuration.
final class ConnectionLimitTable: Sendable {
    private let global = ConnectionLimit(cap: nil)
    private let frontends = NIOLockedValueBox<[String: ConnectionLimit]>([:])
    /// The process's descriptor limit, which `max_connections: auto` is derived from.
    private let descriptorLimit: Int

    init(descriptorLimit: Int) {
        self.descriptorLimit = descriptorLimit
    }

    /// The cap `global.max_connections` stands for in this process.
    func globalCap(for config: Config) -> Int {
        switch config.global.maxConnections {
        case .auto: ConnectionCap.automatic(descriptorLimit: descriptorLimit)
        case .fixed(let count): count
        }
    }

    /// Applies `config`'s caps, and returns the limits for each of its frontends.
    func update(to config: Config) -> [String: ConnectionLimits] {
        global.cap = globalCap(for: config)
        return frontends.withLockedValue { table in
            var limits: [String: ConnectionLimits] = [:]
            for frontend in config.frontends {
                let limit = table[frontend.name] ?? ConnectionLimit(cap: nil)
                limit.cap = frontend.maxConnections ?? .max
                table[frontend.name] = limit
                limits[frontend.name] = ConnectionLimits(global: global, frontend: limit)
            }
            return limits
        }
    }
}
