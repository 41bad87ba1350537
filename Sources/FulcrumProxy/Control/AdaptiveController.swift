import CoreMetrics
import FulcrumBalancing
import FulcrumConfig
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Runs the decision engine for every `algorithm: adaptive` backend.
///
/// Every `evaluate_every` it closes the window on each event loop (one task per loop, so
/// the counters stay lock-free), merges the loops' counts per server, asks `AdaptiveEngine`,
/// logs the decision and, on a switch, tells every loop which algorithm to pick with.
/// Operators switch and pin through the same state (`select`, `unpin`).
final class AdaptiveController: Sendable {
    private struct Backend: Sendable {
        let name: String
        let serverNames: [String]
        let servers: [BalancedServer]
        let settings: AdaptiveOptions
    }

    private let loops: [NIOLoopBound<LoopContext>]
    private let metricsFactory: any MetricsFactory
    private let logger: Logger
    private let backends: NIOLockedValueBox<[String: Backend]>
    private let states: NIOLockedValueBox<[String: AdaptiveState]>
    private let tasks = NIOLockedValueBox<[RepeatedTask]>([])

    init(snapshot: RuntimeSnapshot, loops: [NIOLoopBound<LoopContext>], metricsFactory: any MetricsFactory, logger: Logger) {
        self.loops = loops
        self.metricsFactory = metricsFactory
        self.logger = logger
        self.backends = NIOLockedValueBox(Self.adaptiveBackends(of: snapshot))
        self.states = NIOLockedValueBox([:])
        states.withLockedValue { states in
            for name in backends.withLockedValue({ $0.keys }) { states[name] = AdaptiveState() }
        }
    }

    private static func adaptiveBackends(of snapshot: RuntimeSnapshot) -> [String: Backend] {
        var backends: [String: Backend] = [:]
        for (runtime, config) in zip(snapshot.backends, snapshot.config.backends) where runtime.algorithm == .adaptive {
            backends[runtime.name] = Backend(
                name: runtime.name,
                serverNames: runtime.servers.map(\.name),
                servers: runtime.servers,
                settings: config.adaptive
            )
        }
        return backends
    }

    /// Starts evaluating (on the first loop, each backend on its own schedule).
    func start() {
        guard let eventLoop = loops.first?.eventLoop else { return }
        let started = backends.withLockedValue { $0.values }.map { backend in
            let every = TimeAmount(backend.settings.evaluateEvery)
            return eventLoop.scheduleRepeatedAsyncTask(initialDelay: every, delay: every) { [self] _ in
                evaluate(backend)
            }
        }
        tasks.withLockedValue { $0 = started }
    }

    func stop() {
        let running = tasks.withLockedValue { tasks in
            defer { tasks = [] }
            return tasks
        }
        for task in running { task.cancel() }
    }

    /// Follows a reload: a backend that stays adaptive keeps its state (current algorithm,
    /// pin, history, time of the last switch); the loops carried its algorithm over when they
    /// installed the snapshot. New adaptive backends start with peak EWMA, as at start.
    func update(to snapshot: RuntimeSnapshot) {
        stop()
        let updated = Self.adaptiveBackends(of: snapshot)
        backends.withLockedValue { $0 = updated }
        states.withLockedValue { states in
            states = states.filter { updated[$0.key] != nil }
            for name in updated.keys where states[name] == nil {
                states[name] = AdaptiveState()
            }
        }
        start()
    }

    /// The algorithm an adaptive backend uses now (nil: not an adaptive backend).
    func algorithm(of backend: String) -> AlgorithmName? {
        states.withLockedValue { $0[backend]?.algorithm }
    }

    /// Whether an operator pinned the backend's algorithm (nil: not an adaptive backend).
    func isPinned(_ backend: String) -> Bool? {
        states.withLockedValue { $0[backend]?.isPinned }
    }

    /// The backend's recent decisions, oldest first (nil: not an adaptive backend).
    func decisions(of backend: String) -> [AdaptiveDecision]? {
        states.withLockedValue { $0[backend]?.history }
    }

    /// The backend's recent switches, oldest first (nil: not an adaptive backend).
    func switches(of backend: String) -> [AdaptiveDecision]? {
        states.withLockedValue { $0[backend]?.switches }
    }

    /// Switches an adaptive backend by hand; with `pin` the engine stops switching it.
    /// Returns false when `backend` is not adaptive or `algorithm` is not a concrete one.
    func select(_ algorithm: AlgorithmName, backend: String, pin: Bool) -> Bool {
        guard algorithm != .adaptive else { return false }
        let previous = states.withLockedValue { states -> AlgorithmName? in
            guard let previous = states[backend]?.algorithm else { return nil }
            states[backend]!.select(algorithm, pin: pin, at: .now)
            return previous
        }
        guard let previous else { return false }
        logger.info("adaptive: \(backend) set to \(algorithm.rawValue) by an operator\(pin ? ", pinned" : "")")
        if previous != algorithm { countSwitch(backend: backend, from: previous, to: algorithm) }
        apply(algorithm, to: backend)
        return true
    }

    /// Lets the engine choose again for `backend`.
    func unpin(backend: String) -> Bool {
        states.withLockedValue { states in
            guard states[backend] != nil else { return false }
            states[backend]!.unpin()
            return true
        }
    }

    private func evaluate(_ backend: Backend) -> EventLoopFuture<Void> {
        let eventLoop = loops[0].eventLoop
        let windows = loops.map { loop in
            loop.eventLoop.submit { loop.value.closeAdaptiveWindow(backend: backend.name) ?? [] }
        }
        return EventLoopFuture.whenAllSucceed(windows, on: eventLoop).map { [self] perLoop in
            var merged = Array(repeating: ServerWindowCounts(), count: backend.servers.count)
            for counts in perLoop {
                for (index, serverCounts) in counts.enumerated() where index < merged.count {
                    merged[index].merge(serverCounts)
                }
            }
            let inputs = merged.enumerated().map { index, counts in
                counts.window(
                    name: backend.serverNames[index],
                    weight: backend.servers[index].weight,
                    inFlightNow: backend.servers[index].inFlight,
                    // A server ramping up after a slow start is not at its share yet: no evidence.
                    inRotation: backend.servers[index].isAvailable && backend.servers[index].weight > 0 && !backend.servers[index].isRamping
                )
            }
            let decision = states.withLockedValue { states -> AdaptiveDecision? in
                guard states[backend.name] != nil else { return nil }
                return AdaptiveEngine.evaluate(
                    backend: backend.name,
                    servers: inputs,
                    state: &states[backend.name]!,
                    now: .now,
                    settings: backend.settings
                )
            }
            guard let decision else { return }
            if decision.switched {
                logger.notice("adaptive: \(decision.explanation)")
                countSwitch(backend: backend.name, from: decision.from, to: decision.to)
                apply(decision.to, to: backend.name)
            } else {
                logger.debug("adaptive: \(decision.explanation)")
            }
        }
    }

    private func countSwitch(backend: String, from: AlgorithmName, to: AlgorithmName) {
        Counter(
            label: "fulcrum_algorithm_switches_total",
            dimensions: [("backend", backend), ("from", from.rawValue), ("to", to.rawValue)],
            factory: metricsFactory
        ).increment()
    }

    private func apply(_ algorithm: AlgorithmName, to backend: String) {
        for loop in loops {
            loop.eventLoop.execute { loop.value.useAlgorithm(algorithm, backend: backend) }
        }
    }
}
