// Rules shared by every algorithm: which servers a pick may consider at all.

extension BalancedServer {
    /// Whether the server at `index` may be picked for this request: not already tried,
    /// currently available, and below its limit (`max_requests`, `max_connections`).
    ///
    /// The bit-mask test comes first because it is cheaper than the atomic loads.
    @inline(__always)
    func isEligible(at index: Int, excluding excluded: ServerIndexSet) -> Bool {
        !excluded.contains(index) && isAvailable && hasRoom
    }
}

/// The group of eligible servers a pick chooses from.
///
/// Servers with weight 0 are backups: they are considered only when no eligible server has
/// a positive weight, and then all of them count as equal (weight 1), so that the algorithm
/// still spreads load across them instead of refusing to choose.
enum WeightTier {
    /// Eligible servers with a positive weight; the normal case.
    case weighted
    /// Eligible servers with weight 0, used only when there are no weighted ones.
    case backup

    @inline(__always)
    func includes(weight: Int) -> Bool {
        switch self {
        case .weighted: weight > 0
        case .backup: weight == 0
        }
    }

    /// The weight an algorithm uses for a server of this tier with the given effective weight
    /// (thousandths, `BalancedServer.effectiveWeight`): backups count as weight 1 each.
    @inline(__always)
    func effectiveWeight(_ weight: Int) -> Int {
        switch self {
        case .weighted: weight
        case .backup: 1000
        }
    }
}
