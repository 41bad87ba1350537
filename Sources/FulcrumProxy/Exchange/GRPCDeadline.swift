import NIOCore

/// A gRPC call's `grpc-timeout`: the time the client gives the call, which caps the backend's
/// response timeout for it (Envoy's `max_grpc_timeout` caps its route timeout the same way).
/// A call the server does not answer within it gets DEADLINE_EXCEEDED from Fulcrum; the
/// server, which gets the header too, enforces the deadline on its own side.
enum GRPCDeadline {
    /// `TimeoutValue TimeoutUnit`: at most 8 digits, then `H`, `M`, `S`, `m`, `u` or `n`
    /// (gRPC's PROTOCOL-HTTP2.md). Anything else is no deadline.
    static func parse(_ text: String) -> TimeAmount? {
        let utf8 = text.utf8
        guard (2...9).contains(utf8.count), let unit = utf8.last else { return nil }
        var value: Int64 = 0
        for byte in utf8.dropLast() {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        switch unit {
        case UInt8(ascii: "H"): return .hours(value)
        case UInt8(ascii: "M"): return .minutes(value)
        case UInt8(ascii: "S"): return .seconds(value)
        case UInt8(ascii: "m"): return .milliseconds(value)
        case UInt8(ascii: "u"): return .microseconds(value)
        case UInt8(ascii: "n"): return .nanoseconds(value)
        default: return nil
        }
    }
}
