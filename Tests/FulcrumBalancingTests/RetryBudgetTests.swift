import Testing

@testable import FulcrumBalancing

@Suite struct RetryBudgetTests {
    @Test("without a reserve, retries stay at ratio × requests however many fail")
    func ratioHolds() {
        var budget = RetryBudget(ratio: 0.2, minimumPerSecond: 0)
        var retries = 0
        for _ in 0..<1000 {
            budget.recordRequest()
            if budget.withdrawRetry(now: 0) { retries += 1 }  // every request fails
        }
        #expect(retries == 200)
    }

    @Test("a quiet spell saves up only a bounded burst")
    func savingsAreCapped() {
        var budget = RetryBudget(ratio: 0.2, minimumPerSecond: 0)
        for _ in 0..<10_000 { budget.recordRequest() }
        var burst = 0
        while budget.withdrawRetry(now: 0) { burst += 1 }
        #expect(burst == RetryBudget.maximumSavedRetries)
    }

    @Test("the reserve allows min_per_second retries per second without traffic, and refills")
    func reserve() {
        var budget = RetryBudget(ratio: 0.2, minimumPerSecond: 3)
        let oneSecond: UInt64 = 1_000_000_000
        var now: UInt64 = 5 * oneSecond
        var allowed = 0
        while budget.withdrawRetry(now: now) { allowed += 1 }
        #expect(allowed == 3)
        now += oneSecond / 3 + 1
        let first = budget.withdrawRetry(now: now)
        let second = budget.withdrawRetry(now: now)
        #expect(first && !second)
        // A long pause refills at most one second's worth.
        now += 60 * oneSecond
        allowed = 0
        while budget.withdrawRetry(now: now) { allowed += 1 }
        #expect(allowed == 3)
    }

    @Test("ratio 0 and no reserve: no retries at all")
    func disabled() {
        var budget = RetryBudget(ratio: 0, minimumPerSecond: 0)
        for _ in 0..<100 { budget.recordRequest() }
        let allowed = budget.withdrawRetry(now: 0)
        #expect(!allowed)
    }
}
