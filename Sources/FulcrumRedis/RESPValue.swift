/// A value of RESP2, Redis's serialization protocol (https://redis.io/docs/reference/protocol-spec/).
package enum RESPValue: Sendable, Equatable {
    /// `+OK`
    case simpleString(String)
    /// `-ERR …`: the command failed; the connection is fine.
    case error(String)
    /// `:42`
    case integer(Int)
    /// `$3\r\nabc` (nil: `$-1`, the null bulk string).
    case bulkString([UInt8]?)
    /// `*2\r\n…` (nil: `*-1`, the null array).
    case array([RESPValue]?)

    /// The value as text, for a simple or bulk string.
    package var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulkString(let bytes?): String(decoding: bytes, as: UTF8.self)
        default: nil
        }
    }
}
