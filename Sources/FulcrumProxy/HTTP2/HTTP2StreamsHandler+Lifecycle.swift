import NIOCore
import NIOHTTP2

/// The connection's life, as `NIOHTTP2ServerConnectionManagementHandler` keeps it for a
/// server, without the extra handler every frame and event would pass: `client_idle` with no
/// stream open closes the connection, and a shutdown (`ChannelShouldQuiesceEvent`) sends GOAWAY
/// and closes once the streams in flight have ended.
///
/// The GOAWAY names the last stream the client opened; a stream it opened after that is
/// refused, and the client may retry it on a new connection (RFC 9113 § 6.8). NIO's handler
/// sends two GOAWAYs a round trip apart to catch streams in flight; HAProxy, like this, sends
/// one.
extension HTTP2StreamsHandler {
    /// A stream's first HEADERS arrived. (NIOHTTP2 reports the stream created before it, but
    /// reading its event costs a cast, and a stream whose first block NIOHTTP2 refused is
    /// reported closed without having been reported created.)
    func streamCreated(_ streamID: HTTP2StreamID) {
        openStreams.append(streamID)
        if streamID > lastStreamID { lastStreamID = streamID }
        idleTimer.cancel()
    }

    /// A stream NIOHTTP2 reported closed: the last one out starts the idle time, or, on
    /// shutdown, closes the connection. Streams this handler never saw open are ignored.
    func streamEnded(_ streamID: HTTP2StreamID, context: ChannelHandlerContext) {
        guard let index = openStreams.firstIndex(of: streamID) else { return }
        openStreams.remove(at: index)
        guard openStreams.isEmpty else { return }
        if isDraining {
            // On the next tick: NIOHTTP2 reports the stream closed as it encodes the stream's
            // last frame, before that frame is written.
            context.eventLoop.assumeIsolated().execute { context.close(promise: nil) }
        } else {
            idleTimer.arm(in: idleTimeout)
        }
    }

    func idleTimerFired() {
        guard idleTimer.fired(), openStreams.isEmpty, let context else { return }
        goAway(context: context)
        context.close(promise: nil)
    }

    /// Shutdown: no new stream; the connection closes once the open ones end.
    func drain(context: ChannelHandlerContext) {
        guard !isDraining else { return }
        isDraining = true
        goAway(context: context)
        if openStreams.isEmpty {
            context.close(promise: nil)
        }
    }

    private func goAway(context: ChannelHandlerContext) {
        let frame = HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: lastStreamID, errorCode: .noError, opaqueData: nil))
        context.writeAndFlush(NIOAny(frame), promise: nil)
    }
}
