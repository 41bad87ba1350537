import NIOConcurrencyHelpers

/// Something that happened to a frontend's listening sockets rather than to a request:
/// counted in `TrafficSnapshot.listenerEvents`, exported as metrics.
package struct ListenerEvent: Hashable, Sendable {
    package enum Kind: String, Sendable {
        /// `accept` failed; `reason` is the errno's name (`EMFILE`, `ENFILE`, `ENOBUFS`, …).
        case acceptError = "accept_error"
        /// The listener stopped accepting because a `max_connections` cap was full;
        /// `reason` is `Limit`'s raw value.
        case limitReached = "limit_reached"
    }

    /// The cap that was full.
    package enum Limit: String, Sendable {
        case global
        case frontend
    }

    package let frontend: String
    package let kind: Kind
    package let reason: String

    package init(frontend: String, kind: Kind, reason: String) {
        self.frontend = frontend
        self.kind = kind
        self.reason = reason
    }
}

/// Listener events counted since start, shared by every listener. They are rare (a listener
/// that backs off or pauses does not count again until it resumes), so a lock is cheap here.
final class ListenerEventCounts: Sendable {
    private let counts = NIOLockedValueBox<[ListenerEvent: Int]>([:])

    func record(_ event: ListenerEvent) {
        counts.withLockedValue { $0[event, default: 0] += 1 }
    }

    var snapshot: [ListenerEvent: Int] { counts.withLockedValue { $0 } }
}
