import NIOConcurrencyHelpers
import NIOCore

/// A listener's open client channels, so that closing the listener can drain them: each gets
/// `ChannelShouldQuiesceEvent` (an idle one closes, a busy one closes after its response), and
/// the drain completes when the last has closed.
///
/// What NIO's `ServerQuiescingHelper` does for a server channel; Fulcrum accepts without one
/// (`ParkingLot`), so it keeps the set itself. A channel opened after the drain began is told
/// at once.
final class ConnectionTracker: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var quiescing = false
        var drained: [EventLoopPromise<Void>] = []
    }

    private let state = NIOLockedValueBox(State())

    var count: Int { state.withLockedValue { $0.channels.count } }

    func add(_ channel: any Channel) {
        let quiescing = state.withLockedValue { state in
            state.channels[ObjectIdentifier(channel)] = channel
            return state.quiescing
        }
        if quiescing {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
    }

    func remove(_ channel: any Channel) {
        let drained = state.withLockedValue { state -> [EventLoopPromise<Void>] in
            state.channels[ObjectIdentifier(channel)] = nil
            guard state.quiescing, state.channels.isEmpty else { return [] }
            defer { state.drained.removeAll() }
            return state.drained
        }
        for promise in drained { promise.succeed(()) }
    }

    /// Asks every channel to finish; `promise` completes once none is open.
    func quiesce(promise: EventLoopPromise<Void>?) {
        let (channels, drained) = state.withLockedValue { state -> ([any Channel], [EventLoopPromise<Void>]) in
            state.quiescing = true
            if let promise { state.drained.append(promise) }
            guard state.channels.isEmpty else { return (Array(state.channels.values), []) }
            defer { state.drained.removeAll() }
            return ([], state.drained)
        }
        for channel in channels {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        for promise in drained { promise.succeed(()) }
    }
}
