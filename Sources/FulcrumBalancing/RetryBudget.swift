/// Limits how much retries add to a backend's load (Finagle's `RetryBudget`, Envoy's retry
/// budget): every request deposits `ratio` of a token, every retry withdraws a whole one, so
/// retries stay under `ratio` × requests however many fail. A small reserve, refilled at
/// `minimumPerSecond`, lets a quiet backend retry too.
///
/// One per backend and event loop, touched only on its loop: a deposit is an integer add.
/// Tokens are counted in thousandths so the arithmetic stays integral.
package struct RetryBudget: Sendable {
    private let deposit: Int
    private let cap: Int
    private let reservePerSecond: Int
    private var balance = 0
    private var reserve: Int
    private var reserveRefilledAt: UInt64?

    /// Tokens a long quiet spell can save up: a burst of retries when trouble starts, not
    /// an unbounded one.
    package static let maximumSavedRetries = 10

    /// - Parameters:
    ///   - ratio: retries allowed per request (0.2: retries add at most 20 %).
    ///   - minimumPerSecond: retries allowed per second whatever the traffic.
    package init(ratio: Double, minimumPerSecond: Int) {
        precondition(ratio >= 0 && minimumPerSecond >= 0)
        deposit = Int((ratio * 1000).rounded())
        cap = Self.maximumSavedRetries * 1000
        reservePerSecond = minimumPerSecond * 1000
        reserve = reservePerSecond
    }

    /// Records a request's first attempt.
    @inline(__always)
    package mutating func recordRequest() {
        balance = min(balance + deposit, cap)
    }

    /// Takes one retry from the budget if it allows one at `now` (monotonic nanoseconds).
    package mutating func withdrawRetry(now: UInt64) -> Bool {
        if balance >= 1000 {
            balance -= 1000
            return true
        }
        guard reservePerSecond > 0 else { return false }
        if let refilledAt = reserveRefilledAt {
            let elapsed = now &- refilledAt
            let refill = Int(min(elapsed, 1_000_000_000)) * reservePerSecond / 1_000_000_000
            if refill > 0 {
                reserve = min(reserve + refill, reservePerSecond)
                reserveRefilledAt = now
            }
        } else {
            reserveRefilledAt = now
        }
        guard reserve >= 1000 else { return false }
        reserve -= 1000
        return true
    }
}
