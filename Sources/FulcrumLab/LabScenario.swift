import FulcrumWorker

/// A condition the lab puts the servers in: the workers' behaviour, their weights, and
/// optionally a change halfway through the run.
public struct LabScenario: Sendable {
    /// A change of one worker's behaviour at a point of the run.
    public struct Change: Sendable {
        /// When, as a fraction of the run (0.5 = halfway).
        public var at: Double
        public var worker: Int
        public var behaviour: WorkerBehaviour
    }

    public var name: String
    public var summary: String
    public var workers: [WorkerBehaviour]
    /// Server weights, in worker order.
    public var weights: [Int]
    public var change: Change?

    /// The scenarios the issue asks for, servers answering in 50 ms (± 5 ms) unless stated.
    /// (At 10 ms, this shared machine's scheduling noise moved an algorithm's p99 by up to
    /// 25 % between runs; at 50 ms it is small beside the service time.)
    public static let all: [LabScenario] = [
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
            change: Change(at: 0.5, worker: 2, behaviour: slow)
        ),
        LabScenario(
            name: "weighted",
            summary: "alike servers weighted 3:1:1",
            workers: [normal, normal, normal],
            weights: [3, 1, 1]
        ),
    ]

    private static let normal = WorkerBehaviour(delayMilliseconds: 50, jitterMilliseconds: 5)
    private static let slow = WorkerBehaviour(delayMilliseconds: 500, jitterMilliseconds: 5)
}
