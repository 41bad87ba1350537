import FulcrumConfig
import Testing

/// `minimalYAML` with `settings` (lines indented for the backend) added to its backend.
private func backendYAML(_ settings: String) -> String {
    minimalYAML.replacingOccurrences(of: "  - name: web\n", with: "  - name: web\n\(settings)\n")
}

/// `algorithm: adaptive` and its `adaptive:` thresholds.
@Suite struct AdaptiveConfigTests {
    @Test("adaptive with defaults, and with every threshold set")
    func parsesAdaptive() throws {
        let plain = try ConfigLoader.load(yaml: backendYAML("    algorithm: adaptive"))
        #expect(plain.backends[0].algorithm == .adaptive)
        #expect(plain.backends[0].adaptive == AdaptiveOptions())

        let tuned = try ConfigLoader.load(
            yaml: backendYAML(
                """
                    algorithm: adaptive
                    adaptive: { evaluate_every: 2s, min_switch_interval: 30s, min_requests: 20, error_rate: 0.05, latency_spread: 2.5, in_flight_imbalance: 1.5 }
                """
            )
        )
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
        #expect(
            loadErrors(
                backendYAML(
                    """
                        algorithm: adaptive
                        adaptive: { evaluate_every: 0s, latency_spread: 1, error_rate: lots, window: 5s }
                    """
                )
            ) == [
                "backends[0].adaptive.window (line 8): unknown key \"window\"; allowed keys: evaluate_every, min_switch_interval, min_requests, error_rate, latency_spread, in_flight_imbalance",
                "backends[0].adaptive.evaluate_every (line 8): must be greater than zero",
                "backends[0].adaptive.error_rate (line 8): expected a number, found \"lots\"",
                "backends[0].adaptive.latency_spread (line 8): must be between 1.1 and 1000.0, found 1",
            ]
        )
        #expect(
            loadErrors(
                backendYAML(
                    """
                        algorithm: least_connections
                        adaptive: { latency_spread: 2 }
                    """
                )
            ) == ["backends[0].adaptive (line 8): applies only to algorithm: adaptive"]
        )
    }
}

/// `backends[].health_check`.
@Suite struct HealthCheckConfigTests {
    @Test("defaults, and every key set")
    func parsesHealthCheck() throws {
        #expect(try ConfigLoader.load(yaml: minimalYAML).backends[0].healthCheck == nil)
        let defaults = try ConfigLoader.load(yaml: backendYAML("    health_check: {}"))
        #expect(defaults.backends[0].healthCheck == HealthCheckConfig())
        let set = try ConfigLoader.load(
            yaml: backendYAML(
                "    health_check: { path: /ready, interval: 5s, timeout: 500ms, rise: 3, fall: 4, expect: \"200-204\" }"
            )
        )
        var expected = HealthCheckConfig()
        expected.path = "/ready"
        expected.interval = .seconds(5)
        expected.timeout = .milliseconds(500)
        expected.rise = 3
        expected.fall = 4
        expected.expect = 200...204
        #expect(set.backends[0].healthCheck == expected)
        let single = try ConfigLoader.load(yaml: backendYAML("    health_check: { expect: 204 }"))
        #expect(single.backends[0].healthCheck?.expect == 204...204)
    }

    @Test("bad values are reported at their place")
    func rejectsBadHealthCheck() {
        #expect(
            loadErrors(
                backendYAML(
                    "    health_check: { path: health, interval: soon, rise: 0, expect: \"399-200\" }"
                )
            ) == [
                #"backends[0].health_check.path (line 7): "health" is not a request path (it must start with / and contain no spaces)"#,
                #"backends[0].health_check.interval (line 7): "soon" is not a valid duration (expected a number and a unit: 250ms, 2s, 1m, 1h)"#,
                "backends[0].health_check.rise (line 7): must be between 1 and 100, found 0",
                #"backends[0].health_check.expect (line 7): "399-200" is not a status or status range (expected 200 or 200-399, within 100…599)"#,
            ]
        )
    }
}

@Suite struct OutlierAndRetryBudgetConfigTests {
    @Test("outlier detection is off unless configured; defaults and every key")
    func parsesOutlier() throws {
        #expect(try ConfigLoader.load(yaml: minimalYAML).backends[0].outlier == nil)
        #expect(try ConfigLoader.load(yaml: backendYAML("    outlier: {}")).backends[0].outlier == OutlierConfig())
        let set = try ConfigLoader.load(
            yaml: backendYAML(
                "    outlier: { consecutive_failures: 3, base_ejection: 2s, max_ejection: 1m, max_ejected_percent: 100 }"
            )
        )
        var expected = OutlierConfig()
        expected.consecutiveFailures = 3
        expected.baseEjection = .seconds(2)
        expected.maxEjection = .seconds(60)
        expected.maxEjectedPercent = 100
        #expect(set.backends[0].outlier == expected)
        // A base longer than the default maximum raises the maximum with it.
        let long = try ConfigLoader.load(yaml: backendYAML("    outlier: { base_ejection: 10m }"))
        #expect(long.backends[0].outlier?.maxEjection == .seconds(600))
    }

    @Test("the retry budget defaults to 20 % plus 10 a second, and can be set")
    func parsesRetryBudget() throws {
        let defaults = try ConfigLoader.load(yaml: minimalYAML).backends[0].retryBudget
        #expect(defaults.ratio == 0.2 && defaults.minPerSecond == 10)
        let set = try ConfigLoader.load(yaml: backendYAML("    retry_budget: { ratio: 0.5, min_per_second: 0 }"))
        #expect(set.backends[0].retryBudget.ratio == 0.5 && set.backends[0].retryBudget.minPerSecond == 0)
    }

    @Test("bad values are reported at their place")
    func rejectsBadValues() {
        #expect(
            loadErrors(
                backendYAML(
                    "    outlier: { consecutive_failures: 0, base_ejection: 30s, max_ejection: 10s, max_ejected_percent: 0, after: 1 }"
                )
            ) == [
                #"backends[0].outlier.after (line 7): unknown key "after"; allowed keys: consecutive_failures, base_ejection, max_ejection, max_ejected_percent"#,
                "backends[0].outlier.consecutive_failures (line 7): must be between 1 and 1000, found 0",
                "backends[0].outlier.max_ejection (line 7): must not be shorter than base_ejection",
                "backends[0].outlier.max_ejected_percent (line 7): must be between 1 and 100, found 0",
            ]
        )
        #expect(loadErrors(backendYAML("    retry_budget: { ratio: -1 }")).count == 1)
    }
}
