/// What one algorithm achieved in one scenario.
public struct LabResult: Sendable, Codable {
    public var scenario: String
    public var algorithm: String
    public var requests: Int
    /// Responses that were not 2xx, and requests that got no response.
    public var errors: Int
    public var p50Milliseconds: Double
    public var p95Milliseconds: Double
    public var p99Milliseconds: Double
    /// Requests answered by each server (`X-Worker`), in server order.
    public var perServer: [String: Int]
    /// For `adaptive`: the algorithm switches the engine made, with their explanations.
    public var switches: [String]

    public var errorRate: Double { requests == 0 ? 0 : Double(errors) / Double(requests) }
}
