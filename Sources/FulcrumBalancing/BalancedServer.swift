import Synchronization

/// A server as the balancing algorithms see it: its identity plus the live counters that
/// every event loop shares.
///
/// One `BalancedServer` exists per configured server for the lifetime of that server
/// (it survives reloads that keep the server), so counters carry over. Counters are atomics
/// with relaxed ordering: each request touches them once on start and once on finish, and
/// readers only need an approximate, eventually consistent view.
public final class BalancedServer: Sendable {
    /// The server's name, unique within its backend.
    public let name: String
    private let currentWeight: Atomic<Int>
    private let requestsInFlight = Atomic<Int>(0)
    private let available = Atomic<Bool>(true)

    /// The largest weight a server can have; larger values are clamped to it.
    ///
    /// The configuration allows 1…256, but weights can also be set at run time. The cap keeps
    /// the algorithms' integer arithmetic (sums of weights, smooth-weighted counters) far
    /// from overflow for any realistic number of servers, so it never has to be checked per
    /// pick.
    public static let maximumWeight = 1 << 20

    /// - Parameter weight: clamped to `0...BalancedServer.maximumWeight`.
    public init(name: String, weight: Int = 1) {
        self.name = name
        self.currentWeight = Atomic(Self.clamp(weight))
    }

    /// Relative share of requests (0 = receives none unless it is the only choice).
    public var weight: Int { currentWeight.load(ordering: .relaxed) }

    /// Changes the weight at run time (admin API, decision engine); clamped to
    /// `0...BalancedServer.maximumWeight`.
    public func setWeight(_ weight: Int) {
        currentWeight.store(Self.clamp(weight), ordering: .relaxed)
    }

    private static func clamp(_ weight: Int) -> Int {
        min(max(weight, 0), maximumWeight)
    }

    /// Requests assigned to this server that have not finished, across all event loops.
    public var inFlight: Int { requestsInFlight.load(ordering: .relaxed) }

    /// Call when a request is assigned to this server.
    @inlinable
    public func requestStarted() { _requestStarted() }

    /// Call exactly once for every `requestStarted()`, when the exchange ends in any way.
    @inlinable
    public func requestFinished() { _requestFinished() }

    @usableFromInline
    func _requestStarted() { requestsInFlight.add(1, ordering: .relaxed) }

    @usableFromInline
    func _requestFinished() { requestsInFlight.subtract(1, ordering: .relaxed) }

    /// Whether algorithms may choose this server (false while down, draining or in maintenance).
    public var isAvailable: Bool { available.load(ordering: .relaxed) }

    public func setAvailable(_ isAvailable: Bool) {
        available.store(isAvailable, ordering: .relaxed)
    }
}
