import FulcrumConfig
import Testing

/// `algorithm: adaptive` and its `adaptive:` thresholds.
@Suite struct AdaptiveConfigTests {
    /// `minimalYAML` with `settings` (lines indented for the backend) added to its backend.
    private static func backendYAML(_ settings: String) -> String {
        minimalYAML.replacingOccurrences(of: "  - name: web\n", with: "  - name: web\n\(settings)\n")
    }

    @Test("adaptive with defaults, and with every threshold set")
    func parsesAdaptive() throws {
        let plain = try ConfigLoader.load(yaml: Self.backendYAML("    algorithm: adaptive"))
        #expect(plain.backends[0].algorithm == .adaptive)
        #expect(plain.backends[0].adaptive == AdaptiveOptions())

        let tuned = try ConfigLoader.load(yaml: Self.backendYAML("""
                algorithm: adaptive
                adaptive: { evaluate_every: 2s, min_switch_interval: 30s, min_requests: 20, error_rate: 0.05, latency_spread: 2.5, in_flight_imbalance: 1.5 }
            """))
        var expected = AdaptiveOptions()
        expected.evaluateEvery = .seconds(2)
        expected.minSwitchInterval = .seconds(30)
        expected.minimumRequests = 20
        expected.errorRate = 0.05
        expected.latencySpread = 2.5
        expected.inFlightImbalance = 1.5
        #expect(tuned.backends[0].adaptive == expected)
    }

    @Test("thresholds out of range, unknown keys, and adaptive settings on another algorithm are errors")
    func rejectsBadAdaptive() {
        #expect(loadErrors(Self.backendYAML("""
                algorithm: adaptive
                adaptive: { evaluate_every: 0s, latency_spread: 1, error_rate: lots, window: 5s }
            """)) == [
            "backends[0].adaptive.window (line 8): unknown key \"window\"; allowed keys: evaluate_every, min_switch_interval, min_requests, error_rate, latency_spread, in_flight_imbalance",
            "backends[0].adaptive.evaluate_every (line 8): must be greater than zero",
            "backends[0].adaptive.error_rate (line 8): expected a number, found \"lots\"",
            "backends[0].adaptive.latency_spread (line 8): must be between 1.1 and 1000.0, found 1",
        ])
        #expect(loadErrors(Self.backendYAML("""
                algorithm: least_connections
                adaptive: { latency_spread: 2 }
            """)) == ["backends[0].adaptive (line 8): applies only to algorithm: adaptive"])
    }
}
