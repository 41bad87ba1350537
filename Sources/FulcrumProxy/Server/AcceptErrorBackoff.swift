import Logging
import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// On a listening socket: counts the errors `accept` returns, by frontend and errno, logs them
/// at a limited rate, and stops accepting for a while after one that says resources ran out.
///
/// A listener out of descriptors (EMFILE, ENFILE) stays readable: the connection that could
/// not be accepted is still in the backlog. NIO keeps the socket registered for reading after
/// a failed accept, so without a pause it fails again at once and spins a core. (NIO's
/// `AcceptBackoffHandler` delays the next read request, but none is needed for that loop: with
/// it, this machine still made about 7,700 failing `accept4` calls a second.) Turning
/// `autoRead` off unregisters the socket; turning it back on after `backoff` retries.
/// Errors stop here: they are the listener's, and no request saw them.
final class AcceptErrorBackoff: ChannelInboundHandler {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    /// How long a listener pauses after a resource error: long enough to cost nothing (a few
    /// failing `accept` calls a second), short enough that a client in the backlog is served
    /// soon after descriptors are free again.
    static let backoff = TimeAmount.milliseconds(250)
    /// At most one log line per listener in this time; the lines in between are counted.
    static let logInterval = TimeAmount.seconds(10)

    private let binding: NIOLockedValueBox<ProxyListener.Binding>
    private let events: ListenerEventCounts
    private let logger: Logger
    private var lastLogged: NIODeadline?
    private var unlogged = 0
    private var paused = false

    init(binding: NIOLockedValueBox<ProxyListener.Binding>, events: ListenerEventCounts, logger: Logger) {
        self.binding = binding
        self.events = events
        self.logger = logger
    }

    private static func isResourceError(_ error: IOError) -> Bool {
        let code = error.errnoCode
        return code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let error = error as? IOError else {
            context.fireErrorCaught(error)
            return
        }
        let frontend = binding.withLockedValue { $0.frontend }
        events.record(ListenerEvent(frontend: frontend, kind: .acceptError, reason: Self.name(of: error)))
        guard Self.isResourceError(error) else {
            // ECONNABORTED: a client reset before it was accepted; the next one may be fine.
            logger.debug("accept failed", metadata: ["frontend": "\(frontend)", "error": "\(error)"])
            return
        }
        pause(context: context)
        let now = NIODeadline.now()
        if let lastLogged, now - lastLogged < Self.logInterval {
            unlogged += 1
            return
        }
        var metadata: Logger.Metadata = [
            "frontend": "\(frontend)",
            "error": "\(error)",
            "retry_in_ms": "\(Self.backoff.nanoseconds / 1_000_000)",
        ]
        if unlogged > 0 {
            metadata["since_last_message"] = "\(unlogged)"
        }
        logger.warning("cannot accept connections: out of descriptors or memory; backing off", metadata: metadata)
        lastLogged = now
        unlogged = 0
    }

    private func pause(context: ChannelHandlerContext) {
        guard !paused, let options = context.channel.syncOptions else { return }
        paused = true
        try? options.setOption(.autoRead, value: false)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let channel = context.channel
        context.eventLoop.assumeIsolated().scheduleTask(in: Self.backoff) {
            handler.value.paused = false
            // Reading again (the socket is registered again) unless a reload closed it.
            try? channel.syncOptions?.setOption(.autoRead, value: true)
        }
    }

    /// The errno's symbolic name (the metric's label), or its number.
    static func name(of error: IOError) -> String {
        let code = error.errnoCode
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
