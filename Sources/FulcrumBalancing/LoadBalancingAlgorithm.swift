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
public protocol LoadBalancingAlgorithm: AnyObject {
    /// The algorithm's configuration name.
    var name: AlgorithmName { get }

    /// Returns the index in `servers` of the server to use, never one in `excluded` and
    /// never one that is not `isAvailable`; `nil` when no server qualifies.
    func pick(from servers: [BalancedServer], excluding excluded: ServerIndexSet) -> Int?
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
///
/// - Parameter random: the random source for randomised algorithms, which keep their own
///   copy; tests pass a seeded one. Ignored by the others.
public func makeAlgorithm(
    _ name: AlgorithmName,
    random: some RandomNumberGenerator = FastRandom()
) -> any LoadBalancingAlgorithm {
    switch name {
    case .roundRobin: RoundRobin()
    case .weightedRoundRobin: SmoothWeightedRoundRobin()
    case .leastConnections: LeastConnections()
    case .random: RandomChoice(random: random)
    case .powerOfTwo: PowerOfTwoChoices(random: random)
    }
}
