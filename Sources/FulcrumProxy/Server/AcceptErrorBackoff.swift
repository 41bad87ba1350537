import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A listener's failed `accept` calls: counted by frontend and errno, logged at a limited rate,
/// and, for an error that says resources ran out, a pause before the next try.
///
/// A listener out of descriptors (EMFILE, ENFILE) stays readable: the connection that could
/// not be accepted is still in the backlog. Without a pause the parking lot's thread would try
/// again at once and spin a core. Errors stop here: they are the listener's, and no request saw
/// them.
struct AcceptErrorBackoff {
    /// How long a listener pauses after a resource error: long enough to cost nothing (a few
    /// failing `accept` calls a second), short enough that a client in the backlog is served
    /// soon after descriptors are free again.
    static let pause = TimeAmount.milliseconds(250)
    /// At most one log line per listener in this time; the lines in between are counted.
    static let logInterval = TimeAmount.seconds(10)

    private var lastLogged: NIODeadline?
    private var unlogged = 0

    private static func isResourceError(_ code: CInt) -> Bool {
        code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM
    }

    /// Counts and perhaps logs a failed accept. Returns whether the listener should pause.
    mutating func failed(errno code: CInt, frontend: String, events: ListenerEventCounts, logger: Logger) -> Bool {
        events.record(ListenerEvent(frontend: frontend, kind: .acceptError, reason: Self.name(of: code)))
        guard Self.isResourceError(code) else {
            // ECONNABORTED: a client reset before it was accepted; the next one may be fine.
            logger.debug("accept failed", metadata: ["frontend": "\(frontend)", "error": "\(Self.name(of: code))"])
            return false
        }
        let now = NIODeadline.now()
        if let lastLogged, now - lastLogged < Self.logInterval {
            unlogged += 1
            return true
        }
        var metadata: Logger.Metadata = [
            "frontend": "\(frontend)",
            "error": "\(IOError(errnoCode: code, reason: "accept"))",
            "retry_in_ms": "\(Self.pause.nanoseconds / 1_000_000)",
        ]
        if unlogged > 0 {
            metadata["since_last_message"] = "\(unlogged)"
        }
        logger.warning("cannot accept connections: out of descriptors or memory; backing off", metadata: metadata)
        lastLogged = now
        unlogged = 0
        return true
    }

    /// The errno's symbolic name (the metric's label), or its number.
    static func name(of code: CInt) -> String {
        switch code {
        case EMFILE: return "EMFILE"
        case ENFILE: return "ENFILE"
        case ENOBUFS: return "ENOBUFS"
        case ENOMEM: return "ENOMEM"
        case ECONNABORTED: return "ECONNABORTED"
        default: return "errno_\(code)"
        }
    }
}
