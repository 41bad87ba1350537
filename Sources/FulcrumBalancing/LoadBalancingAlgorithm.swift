import FulcrumConfig

/// Chooses the server for the next request of one backend.
///
/// An algorithm instance belongs to exactly one event loop (per-loop state: counters,
/// smooth-weighted state, random generator), so implementations are plain classes without
/// locks. Shared, cross-loop knowledge (in-flight counts, weights, availability) is read
/// from `BalancedServer`.
///
/// Every algorithm treats servers with weight 0 as backups: they are chosen only when no
/// eligible server has a positive weight.
package protocol LoadBalancingAlgorithm: AnyObject {
    /// The algorithm's configuration name.
    var name: AlgorithmName { get }

    /// Returns the index in `servers` of the server to use, never one in `excluded` and
    /// never one that is not `isAvailable`; `nil` when no server qualifies.
    func pick(from servers: [BalancedServer], excluding excluded: ServerIndexSet) -> Int?

    /// Whether picks depend on a key of the request (`hash`): the data plane computes one
    /// only then.
    var usesHashKey: Bool { get }

    /// As `pick(from:excluding:)`, for a request whose key hashed to `hashKey` (nil: it has
    /// none). Algorithms that use no key ignore it.
    func pick(from servers: [BalancedServer], excluding excluded: ServerIndexSet, hashKey: UInt64?) -> Int?

    /// Whether the algorithm learns from `observe` (the data plane times responses only then).
    var observesResponses: Bool { get }

    /// Reports how a request to `servers[serverIndex]` went: the time to its response head
    /// (or to the failure), whether it failed (connect error, timeout, 5xx), and when
    /// (monotonic nanoseconds, the clock of `NIODeadline`).
    func observe(serverIndex: Int, responseNanoseconds: Int64, failed: Bool, now: UInt64)
}

extension LoadBalancingAlgorithm {
    package var usesHashKey: Bool { false }
    package func pick(from servers: [BalancedServer], excluding excluded: ServerIndexSet, hashKey: UInt64?) -> Int? {
        pick(from: servers, excluding: excluded)
    }
    package var observesResponses: Bool { false }
    package func observe(serverIndex: Int, responseNanoseconds: Int64, failed: Bool, now: UInt64) {}
}

/// Creates a fresh, per-event-loop instance of the named algorithm.
///
/// | name                    | algorithm                  |
/// |-------------------------|----------------------------|
/// | `.roundRobin`           | `RoundRobin`               |
/// | `.weightedRoundRobin`   | `SmoothWeightedRoundRobin` |
/// | `.leastConnections`     | `LeastConnections`         |
/// | `.random`               | `RandomChoice`             |
/// | `.powerOfTwo`           | `PowerOfTwoChoices`        |
/// | `.leastResponseTime`    | `LatencyAware`             |
/// | `.peakEWMA`             | `LatencyAware`             |
/// | `.hash`                 | `ConsistentHash`           |
/// | `.adaptive`             | `AdaptiveAlgorithm` (starts with peak EWMA) |
///
/// - Parameter random: the random source for randomised algorithms, which keep their own
///   copy; tests pass a seeded one. Ignored by the others.
package func makeAlgorithm(
    _ name: AlgorithmName,
    hashBalanceFactor: Double = 1.25,
    random: some RandomNumberGenerator = FastRandom()
) -> any LoadBalancingAlgorithm {
    switch name {
    case .roundRobin: RoundRobin()
    case .weightedRoundRobin: SmoothWeightedRoundRobin()
    case .leastConnections: LeastConnections()
    case .random: RandomChoice(random: random)
    case .powerOfTwo: PowerOfTwoChoices(random: random)
    case .leastResponseTime, .peakEWMA: LatencyAware(name: name)
    case .hash: ConsistentHash(balanceFactor: hashBalanceFactor)
    case .adaptive: AdaptiveAlgorithm()
    }
}
