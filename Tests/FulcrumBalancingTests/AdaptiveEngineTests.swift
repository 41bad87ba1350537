import FulcrumConfig
import Testing

@testable import FulcrumBalancing

/// The decision engine, as the pure function it is: synthetic windows, an injected clock.
@Suite struct AdaptiveEngineTests {
    private let t0 = ContinuousClock.now

    private func alike(_ count: Int = 3, p95: Double = 20, requests: Int = 100) -> [ServerWindow] {
        (1...count).map { ServerWindow(name: "web\($0)", requests: requests, p95Milliseconds: p95, meanInFlight: 1) }
    }

    @Test("alike servers: round robin is kept, and the decision says why")
    func uniformKeepsRoundRobin() {
        var state = AdaptiveState(algorithm: .roundRobin)
        let decision = AdaptiveEngine.evaluate(backend: "web", servers: alike(), state: &state, now: t0)
        #expect(!decision.switched)
        #expect(decision.rule == .uniform)
        #expect(decision.explanation == "web keeps round_robin: servers alike (p95 spread 1×, no error or load outliers)")
        #expect(state.algorithm == .roundRobin)
        #expect(state.history == [decision])
    }

    @Test("one slow server: switch to peak_ewma, with the spread in the explanation")
    func latencySpreadSwitches() {
        var state = AdaptiveState(algorithm: .roundRobin)
        var servers = alike(2, p95: 25)
        servers[1].p95Milliseconds = 212
        let decision = AdaptiveEngine.evaluate(backend: "web", servers: servers, state: &state, now: t0)
        #expect(decision.switched)
        #expect(decision.to == .peakEWMA)
        #expect(decision.rule == .latencySpread)
        #expect(decision.explanation == "web round_robin → peak_ewma: p95 spread 8.5× (web2 212 ms vs web1 25 ms) ≥ 3×")
        #expect(state.algorithm == .peakEWMA)
        #expect(state.lastSwitch == t0)
    }

    @Test("errors concentrated on one server: peak_ewma, before any latency rule")
    func errorRateSwitches() {
        var state = AdaptiveState(algorithm: .roundRobin)
        var servers = alike(3)
        servers[2].failures = 20
        let decision = AdaptiveEngine.evaluate(backend: "web", servers: servers, state: &state, now: t0)
        #expect(decision.to == .peakEWMA)
        #expect(decision.rule == .errorRate)
        #expect(decision.explanation.contains("error rate 20% on web3 vs 0% on web1"))
    }

    @Test("errors everywhere alike are not steered around")
    func uniformErrorsAreNotARule() {
        var state = AdaptiveState(algorithm: .roundRobin)
        let servers = alike(3).map { server in
            var server = server
            server.failures = 30
            return server
        }
        #expect(AdaptiveEngine.evaluate(backend: "web", servers: servers, state: &state, now: t0).rule == .uniform)
    }

    @Test("uneven requests in flight: least_connections")
    func unevenLoadSwitches() {
        var state = AdaptiveState(algorithm: .roundRobin)
        var servers = alike(2)
        servers[0].meanInFlight = 9
        servers[1].meanInFlight = 2
        let decision = AdaptiveEngine.evaluate(backend: "api", servers: servers, state: &state, now: t0)
        #expect(decision.to == .leastConnections)
        #expect(decision.rule == .unevenLoad)
        #expect(decision.explanation == "api round_robin → least_connections: in-flight imbalance 3.3× (web1 vs web2) ≥ 2×")
    }

    @Test("a server holding requests without having answered any in the window has turned slow: peak_ewma")
    func serverWithoutAnswersButHoldingRequests() {
        var state = AdaptiveState(algorithm: .roundRobin)
        var servers = alike(3)
        servers[2].requests = 0
        servers[2].p95Milliseconds = nil
        servers[2].meanInFlight = 12
        servers[0].meanInFlight = 3
        servers[1].meanInFlight = 3
        let decision = AdaptiveEngine.evaluate(backend: "api", servers: servers, state: &state, now: t0)
        #expect(decision.to == .peakEWMA)
        #expect(decision.rule == .latencySpread)
        #expect(decision.explanation == "api round_robin → peak_ewma: web3 holds 12 requests and answered none in the window")
        // Also when it answered before and is judged by that last measurement (carried over).
        var measured = AdaptiveState(algorithm: .roundRobin)
        _ = AdaptiveEngine.evaluate(backend: "api", servers: alike(3), state: &measured, now: t0)
        #expect(AdaptiveEngine.evaluate(backend: "api", servers: servers, state: &measured, now: t0 + .seconds(1)).to == .peakEWMA)
        // One that neither answered nor holds anything is not judged idle.
        servers[2].meanInFlight = 0
        var fresh = AdaptiveState(algorithm: .roundRobin)
        #expect(AdaptiveEngine.evaluate(backend: "api", servers: servers, state: &fresh, now: t0).to == .roundRobin)
    }

    @Test("weighted alike servers, each given its weight's share, go to weighted round robin")
    func weightedRotation() {
        var state = AdaptiveState(algorithm: .leastConnections)
        var servers = alike(2)
        servers[0].weight = 3
        servers[0].requests = 300
        servers[0].meanInFlight = 3
        let decisions = (0..<3).map { step in
            AdaptiveEngine.evaluate(backend: "web", servers: servers, state: &state, now: t0 + .seconds(5 * step))
        }
        #expect(decisions.map(\.rule) == [.confirming, .confirming, .uniform])
        #expect(decisions[2].to == .weightedRoundRobin)
    }

    @Test("no second switch within min_switch_interval; the held-back wish is recorded, and says so")
    func minimumSwitchInterval() {
        var state = AdaptiveState()
        for step in 0..<3 {
            _ = AdaptiveEngine.evaluate(backend: "web", servers: alike(2), state: &state, now: t0 + .seconds(5 * step))
        }
        #expect(state.algorithm == .roundRobin)
        #expect(state.lastSwitch == t0 + .seconds(10))

        // A server turns slow 20 s after that switch: leaving rotation must wait.
        var slow = alike(2)
        slow[1].p95Milliseconds = 200
        let held = AdaptiveEngine.evaluate(backend: "web", servers: slow, state: &state, now: t0 + .seconds(30))
        #expect(!held.switched)
        #expect(held.rule == .minSwitchInterval)
        #expect(
            held.explanation == "web keeps round_robin: held by min_switch_interval: would switch to peak_ewma "
                + "(p95 spread 10× (web2 200 ms vs web1 20 ms) ≥ 3×), but the last switch was 20s ago < 60s; "
                + "the rotation guard keeps traffic off servers out of line meanwhile"
        )
        #expect(state.algorithm == .roundRobin)

        let later = AdaptiveEngine.evaluate(backend: "web", servers: slow, state: &state, now: t0 + .seconds(71))
        #expect(later.switched)
        #expect(later.to == .peakEWMA)
        #expect(state.history.map(\.rule) == [.confirming, .confirming, .uniform, .minSwitchInterval, .latencySpread])
    }

    @Test("hysteresis: a spread just under the threshold does not switch back")
    func hysteresisPreventsFlapping() {
        var state = AdaptiveState(algorithm: .roundRobin)
        var servers = alike(2, p95: 10)
        servers[1].p95Milliseconds = 31  // 3.1× ≥ 3×: switch
        #expect(AdaptiveEngine.evaluate(backend: "web", servers: servers, state: &state, now: t0).to == .peakEWMA)
        servers[1].p95Milliseconds = 28  // 2.8× < 3× but ≥ 3 × 0.75: stay
        let stay = AdaptiveEngine.evaluate(backend: "web", servers: servers, state: &state, now: t0 + .seconds(120))
        #expect(!stay.switched)
        #expect(stay.rule == .latencySpread)
        servers[1].p95Milliseconds = 20  // 2× < 2.25×, but not alike (≥ 1.5×): web2 has not recovered
        let unproven = AdaptiveEngine.evaluate(backend: "web", servers: servers, state: &state, now: t0 + .seconds(240))
        #expect(unproven.to == .peakEWMA)
        #expect(unproven.rule == .recovering)
    }

    @Test("too little traffic, or one server: keep what is there")
    func insufficientData() {
        var state = AdaptiveState(algorithm: .leastConnections)
        var servers = alike(2, requests: 10)
        servers[1].p95Milliseconds = 500
        let decision = AdaptiveEngine.evaluate(backend: "web", servers: servers, state: &state, now: t0)
        #expect(decision.rule == .insufficientData)
        #expect(decision.explanation == "web keeps least_connections: 20 requests over 2 servers is too little to judge")
        #expect(AdaptiveEngine.evaluate(backend: "web", servers: alike(1), state: &state, now: t0).rule == .insufficientData)
    }

    @Test("manual switching and pinning: the engine leaves a pinned algorithm alone until unpinned")
    func manualControl() {
        var state = AdaptiveState(algorithm: .roundRobin)
        state.select(.leastConnections, pin: true, at: t0)
        var slow = alike(2)
        slow[1].p95Milliseconds = 400
        let pinned = AdaptiveEngine.evaluate(backend: "web", servers: slow, state: &state, now: t0 + .seconds(120))
        #expect(pinned.rule == .pinned)
        #expect(state.algorithm == .leastConnections)
        state.unpin()
        let free = AdaptiveEngine.evaluate(backend: "web", servers: slow, state: &state, now: t0 + .seconds(125))
        #expect(free.to == .peakEWMA)
    }

    @Test("the history keeps the last 100 decisions")
    func historyIsBounded() {
        var state = AdaptiveState()
        for step in 0..<150 {
            _ = AdaptiveEngine.evaluate(backend: "web", servers: alike(), state: &state, now: t0 + .seconds(step * 5))
        }
        #expect(state.history.count == AdaptiveState.historyLimit)
        #expect(state.history.first?.time == t0 + .seconds(50 * 5))
    }
}

extension AdaptiveEngineTests {
    @Test("a server avoided so well that it got no request keeps its last measured p95")
    func avoidedServerKeepsItsLatency() {
        var state = AdaptiveState(algorithm: .roundRobin)
        var slow = alike(2)
        slow[1].p95Milliseconds = 300
        #expect(AdaptiveEngine.evaluate(backend: "web", servers: slow, state: &state, now: t0).to == .peakEWMA)
        var quiet = alike(2)
        quiet[1] = ServerWindow(name: "web2", requests: 0, p95Milliseconds: nil)
        let later = AdaptiveEngine.evaluate(backend: "web", servers: quiet, state: &state, now: t0 + .seconds(120))
        #expect(!later.switched)
        #expect(later.rule == .latencySpread)
        #expect(later.inputs[1].p95Milliseconds == 300)
        #expect(later.inputs[1].carriedOver)
    }
}

extension AdaptiveEngineTests {
    @Test("steering around a failing server is not mistaken for uneven load or recovery")
    func noFlappingAroundAFailingServer() {
        var state = AdaptiveState(algorithm: .roundRobin)
        var flaky = alike(3)
        flaky[2].failures = 20
        #expect(AdaptiveEngine.evaluate(backend: "web", servers: flaky, state: &state, now: t0).to == .peakEWMA)
        // peak_ewma now keeps w3 idle: no requests, nothing in flight, while the others are busy.
        var steered = alike(3)
        steered[0].meanInFlight = 3
        steered[1].meanInFlight = 3
        steered[2] = ServerWindow(name: "web3", requests: 0, p95Milliseconds: nil, meanInFlight: 0)
        let later = AdaptiveEngine.evaluate(backend: "web", servers: steered, state: &state, now: t0 + .seconds(120))
        #expect(!later.switched, "\(later.explanation)")
        #expect(later.rule == .errorRate)
        #expect(later.inputs[2].carriedOver)
        // A couple of successful probe requests are not a recovery either.
        steered[2] = ServerWindow(name: "web3", requests: 2, p95Milliseconds: 11, meanInFlight: 0)
        let probed = AdaptiveEngine.evaluate(backend: "web", servers: steered, state: &state, now: t0 + .seconds(240))
        #expect(!probed.switched, "\(probed.explanation)")
        #expect(probed.rule == .errorRate)
    }
}

extension AdaptiveEngineTests {
    @Test("switches are kept apart from the decisions, which soon hold only keeps")
    func switchHistory() {
        var state = AdaptiveState(algorithm: .roundRobin)
        var slow = alike(2)
        slow[1].p95Milliseconds = 300
        _ = AdaptiveEngine.evaluate(backend: "web", servers: slow, state: &state, now: t0)
        for step in 1...150 {
            _ = AdaptiveEngine.evaluate(backend: "web", servers: slow, state: &state, now: t0 + .seconds(step))
        }
        #expect(state.history.count == AdaptiveState.historyLimit)
        #expect(state.history.allSatisfy { !$0.switched })
        #expect(state.switches.map(\.to) == [.peakEWMA])
    }
}
