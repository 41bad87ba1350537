/// A server's load relative to its weight: `inFlight / weight`, compared without division.
///
/// Used by the load-aware algorithms (`LeastConnections`, `PowerOfTwoChoices`). Integer
/// cross multiplication keeps comparisons exact (no floating point rounding making "equal"
/// servers differ), and the full-width product cannot overflow whatever the counter and
/// weight values are.
struct ServerLoad {
    var inFlight: Int
    /// Always positive: backup servers (weight 0) are compared with weight 1.
    var weight: Int

    @inline(__always)
    init(inFlight: Int, weight: Int) {
        self.inFlight = inFlight
        self.weight = weight
    }

    /// `self.inFlight / self.weight < other.inFlight / other.weight`.
    @inline(__always)
    func isLess(than other: ServerLoad) -> Bool {
        // a/b < c/d  ⇔  a·d < c·b  for positive b and d. The 128-bit products compare
        // lexicographically as (signed high, unsigned low).
        let lhs = inFlight.multipliedFullWidth(by: other.weight)
        let rhs = other.inFlight.multipliedFullWidth(by: weight)
        return lhs.high < rhs.high || (lhs.high == rhs.high && lhs.low < rhs.low)
    }
}
