/// How a ``WorkerServer`` behaves: how slow `/work` is, how often it fails, how many `/work`
/// requests it works on at once and what `/health` reports.
///
/// The behaviour can be changed while the worker runs, either in-process with
/// ``WorkerServer/update(_:)`` or over HTTP with `POST /control`. Its JSON form uses the keys
/// `delay_ms`, `jitter_ms`, `error_rate`, `capacity` and `healthy`; keys missing from the JSON keep
/// their default value when decoding.
///
/// The values are not range-checked here, because out-of-range values have an obvious meaning at
/// runtime (a negative delay is no delay, an error rate above 1 always fails, a negative capacity
/// is no limit). `POST /control` does
/// reject them with a `400`, so a typo in a demo script is reported rather than silently clamped.
package struct WorkerBehaviour: Sendable, Equatable, Codable {
    /// The mean time `/work` takes to answer, in milliseconds.
    package var delayMilliseconds: Int = 10
    /// `/work` takes a delay drawn uniformly from
    /// `delayMilliseconds - jitterMilliseconds ... delayMilliseconds + jitterMilliseconds` (never below 0).
    package var jitterMilliseconds: Int = 0
    /// The probability, in `0...1`, that a `/work` request is answered with a `500`.
    package var errorRate: Double = 0
    /// Whether `/health` answers `200 ok` (`true`) or `503 unhealthy` (`false`).
    package var healthy: Bool = true
    /// How many `/work` requests the whole worker works on at once, across all its connections;
    /// the others wait, first come first served, and only then take their delay. `0` means no limit.
    ///
    /// This models a smaller or saturated machine: its latency grows with the queue in front of it
    /// rather than with each request's work. The delay, jitter and failure of a request are drawn
    /// when its work starts, so a behaviour change also applies to the requests still waiting.
    package var capacity: Int = 0

    package init(
        delayMilliseconds: Int = 10,
        jitterMilliseconds: Int = 0,
        errorRate: Double = 0,
        healthy: Bool = true,
        capacity: Int = 0
    ) {
        self.delayMilliseconds = delayMilliseconds
        self.jitterMilliseconds = jitterMilliseconds
        self.errorRate = errorRate
        self.healthy = healthy
        self.capacity = capacity
    }

    enum CodingKeys: String, CodingKey {
        case delayMilliseconds = "delay_ms"
        case jitterMilliseconds = "jitter_ms"
        case errorRate = "error_rate"
        case healthy
        case capacity
    }

    package init(from decoder: any Decoder) throws {
        // Every key is optional so that a partial document (as accepted by `POST /control`) decodes.
        self.init()
        try self.apply(WorkerBehaviour.Update(from: decoder))
    }
}

extension WorkerBehaviour {
    /// A partial update of a ``WorkerBehaviour``, as sent to `POST /control`: absent fields are `nil`
    /// and leave the corresponding value unchanged.
    struct Update: Sendable, Equatable, Decodable {
        var delayMilliseconds: Int?
        var jitterMilliseconds: Int?
        var errorRate: Double?
        var healthy: Bool?
        var capacity: Int?

        typealias CodingKeys = WorkerBehaviour.CodingKeys

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.delayMilliseconds = try container.decodeIfPresent(Int.self, forKey: .delayMilliseconds)
            self.jitterMilliseconds = try container.decodeIfPresent(Int.self, forKey: .jitterMilliseconds)
            self.errorRate = try container.decodeIfPresent(Double.self, forKey: .errorRate)
            self.healthy = try container.decodeIfPresent(Bool.self, forKey: .healthy)
            self.capacity = try container.decodeIfPresent(Int.self, forKey: .capacity)
        }
    }

    /// Overwrites the values that `update` carries.
    mutating func apply(_ update: Update) {
        if let delay = update.delayMilliseconds { self.delayMilliseconds = delay }
        if let jitter = update.jitterMilliseconds { self.jitterMilliseconds = jitter }
        if let errorRate = update.errorRate { self.errorRate = errorRate }
        if let healthy = update.healthy { self.healthy = healthy }
        if let capacity = update.capacity { self.capacity = capacity }
    }

    /// Why this behaviour makes no sense, or `nil` if it is valid.
    var validationProblem: String? {
        if self.delayMilliseconds < 0 {
            return "delay_ms must not be negative"
        }
        if self.jitterMilliseconds < 0 {
            return "jitter_ms must not be negative"
        }
        // Written so that NaN fails too.
        if !(self.errorRate >= 0 && self.errorRate <= 1) {
            return "error_rate must be between 0 and 1"
        }
        if self.capacity < 0 {
            return "capacity must not be negative"
        }
        return nil
    }

    /// Picks the delay of one `/work` request: uniform in `[delay - jitter, delay + jitter]`, clamped at 0.
    func sampleDelayMilliseconds() -> Int {
        let jitter = max(0, self.jitterMilliseconds)
        let sampled = Int.random(in: (self.delayMilliseconds - jitter)...(self.delayMilliseconds + jitter))
        return max(0, sampled)
    }

    /// Decides whether one `/work` request fails, with probability ``errorRate``.
    func sampleFailure() -> Bool {
        // `0..<1` never yields 1, so an error rate of 1 always fails and 0 never does.
        Double.random(in: 0..<1) < self.errorRate
    }
}
