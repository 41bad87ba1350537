import FulcrumWorker

/// A condition the lab puts the servers in: the workers' behaviour and weights, changes of
/// behaviour during the run, a server joining late, and how the offered load varies.
///
/// Times are fractions of the real-time run of 180 s (45 s = 0.25). The compressed mode plays
/// the same story in its shorter run; a longer real-time run keeps the times in seconds, and
/// repeating changes go on to its end.
package struct LabScenario: Sendable {
    /// A change of one worker's behaviour at a point of the run, once or again and again.
    package struct Change: Sendable {
        /// When, as a fraction of the 180 s run (0.5 = at 90 s).
        package var at: Double
        package var worker: Int
        package var behaviour: WorkerBehaviour
        /// Again after each such fraction, to the end of the run.
        package var every: Double?
    }

    /// The offered load at a point of the run, as a multiple of `--rate`; the load moves in a
    /// straight line between points.
    package struct LoadPoint: Sendable {
        package var at: Double
        package var multiple: Double
    }

    package var name: String
    package var summary: String
    package var workers: [WorkerBehaviour]
    /// Server weights, in worker order.
    package var weights: [Int]
    package var changes: [Change] = []
    /// The last worker is not in the configuration at first, and is added by a reload at this
    /// point of the run (a server joining), a fraction of the 180 s run like `Change.at`.
    package var joinsAt: Double?
    /// The offered load over the run (empty: `--rate` throughout).
    package var load: [LoadPoint] = []
    /// The backend's `slow_start`, a fraction of the 180 s run like `Change.at` (nil: none).
    package var slowStart: Double?

    /// The real-time run's length the scenarios' times are written for.
    package static let realtimeDuration = Duration.seconds(180)

    /// When the changes and the join happen in a run of `total` seconds, in seconds, in order
    /// (`scale`: the seconds one unit of the scenario's fractions lasts).
    func events(scale: Double, total: Double) -> [(seconds: Double, change: Change?)] {
        var events: [(seconds: Double, change: Change?)] = joinsAt.map { [($0 * scale, nil)] } ?? []
        for change in changes {
            var time = change.at * scale
            while time < total {
                events.append((time, change))
                guard let every = change.every, every > 0 else { break }
                time += every * scale
            }
        }
        return events.sorted { $0.seconds < $1.seconds }
    }

    /// The load's multiple of `--rate` at `fraction` of the run.
    package func loadMultiple(at fraction: Double) -> Double {
        guard let first = load.first else { return 1 }
        if fraction <= first.at { return first.multiple }
        for (from, to) in zip(load, load.dropFirst()) where fraction <= to.at {
            let span = max(to.at - from.at, .ulpOfOne)
            return from.multiple + (to.multiple - from.multiple) * (fraction - from.at) / span
        }
        return load[load.count - 1].multiple
    }

    /// The scenarios, servers answering in 50 ms (± 5 ms) unless stated. (At 10 ms, this shared
    /// machine's scheduling noise moved an algorithm's p99 by up to 25 % between runs; at 50 ms
    /// it is small beside the service time.) Capacities are sized for the default 200 req/s.
    package static let all: [LabScenario] = [
        LabScenario(
            name: "homogeneous",
            summary: "three alike servers",
            workers: [normal, normal, normal],
            weights: [1, 1, 1]
        ),
        LabScenario(
            name: "slow",
            summary: "one server 10× slower (500 ms)",
            workers: [normal, normal, slow],
            weights: [1, 1, 1]
        ),
        LabScenario(
            name: "flaky",
            summary: "one server fails 20 % of its requests with 500",
            workers: [normal, normal, WorkerBehaviour(delayMilliseconds: 50, jitterMilliseconds: 5, errorRate: 0.2)],
            weights: [1, 1, 1]
        ),
        LabScenario(
            name: "becomes-slow",
            summary: "one server turns 10× slower halfway through",
            workers: [normal, normal, normal],
            weights: [1, 1, 1],
            changes: [Change(at: 0.5, worker: 2, behaviour: slow)]
        ),
        LabScenario(
            name: "weighted",
            summary: "alike servers weighted 3:1:1",
            workers: [normal, normal, normal],
            weights: [3, 1, 1]
        ),
        LabScenario(
            name: "small-server",
            summary: "one server with 1/8 of the others' capacity (2 at once vs 16), offered more than an equal share can take",
            workers: [capacity(16), capacity(16), capacity(2)],
            weights: [1, 1, 1]
        ),
        LabScenario(
            name: "overload",
            summary: "offered load rising from 0.5× to 1.3× then back, against 1.2× in total capacity (4 at once each)",
            workers: [capacity(4), capacity(4), capacity(4)],
            weights: [1, 1, 1],
            load: [LoadPoint(at: 0, multiple: 0.5), LoadPoint(at: 0.5, multiple: 1.3), LoadPoint(at: 1, multiple: 0.5)]
        ),
        LabScenario(
            name: "recovering",
            summary: "a 10× slower server recovers halfway through and must win its share back",
            workers: [normal, normal, slow],
            weights: [1, 1, 1],
            changes: [Change(at: 0.5, worker: 2, behaviour: normal)]
        ),
        LabScenario(
            name: "oscillating",
            summary: "one server alternates between fast and 10× slower every 45 s",
            workers: [normal, normal, normal],
            weights: [1, 1, 1],
            changes: [
                Change(at: 0.25, worker: 2, behaviour: slow, every: 0.5), Change(at: 0.5, worker: 2, behaviour: normal, every: 0.5),
            ]
        ),
        LabScenario(
            name: "cold-start",
            summary: "a third server joins at 60 s and is 10× slower for its first 20 s",
            workers: [normal, normal, slow],
            weights: [1, 1, 1],
            changes: [Change(at: 80.0 / 180, worker: 2, behaviour: normal)],
            joinsAt: 60.0 / 180
        ),
        LabScenario(
            name: "slow-start",
            summary: "cold-start with slow_start: 30s: the joining server ramps from 10 % of its share",
            workers: [normal, normal, slow],
            weights: [1, 1, 1],
            changes: [Change(at: 80.0 / 180, worker: 2, behaviour: normal)],
            joinsAt: 60.0 / 180,
            slowStart: 30.0 / 180
        ),
    ]

    /// The five scenarios of the first lab, the compressed mode's bar.
    package static let original = ["homogeneous", "slow", "flaky", "becomes-slow", "weighted"]

    private static let normal = WorkerBehaviour(delayMilliseconds: 50, jitterMilliseconds: 5)
    private static let slow = WorkerBehaviour(delayMilliseconds: 500, jitterMilliseconds: 5)

    private static func capacity(_ requests: Int) -> WorkerBehaviour {
        var behaviour = normal
        behaviour.capacity = requests
        return behaviour
    }
}
