import NIOCore

/// What a `mode: tcp` health check does once connected: nothing (the connect is the check),
/// or write `send` and, with `receive`, wait for the server's bytes to contain it (HAProxy's
/// `tcp-check send` and `tcp-check expect string`; Envoy's `tcp_health_check`).
struct TCPProbe: Sendable {
    let send: ByteBuffer?
    let receive: [UInt8]?

    init(send: String?, receive: String?) {
        self.send = send.map { ByteBuffer(string: $0) }
        self.receive = receive.map { Array($0.utf8) }
    }

    var connectsOnly: Bool { send == nil && receive == nil }
}

/// Why a TCP probe failed, as the log says it.
enum TCPProbeFailure: Error, CustomStringConvertible {
    /// The server closed before what `receive` names arrived.
    case closedBeforeReply(received: Int)
    /// So many bytes arrived without it that the probe gave up.
    case replyNotFound(received: Int)

    var description: String {
        switch self {
        case .closedBeforeReply(let received):
            "the server closed after \(received) byte(s), without the expected reply"
        case .replyNotFound(let received):
            "\(received) bytes arrived without the expected reply"
        }
    }
}

/// Runs a `TCPProbe` on a fresh connection; the caller closes it once `result` is complete.
final class TCPProbeHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The most a probe reads while looking for its reply: a banner or an answer, not a
    /// transfer.
    static let readLimit = 64 * 1024

    private let probe: TCPProbe
    private let result: EventLoopPromise<Void>
    private var received: [UInt8] = []

    init(probe: TCPProbe, result: EventLoopPromise<Void>) {
        self.probe = probe
        self.result = result
    }

    func channelActive(context: ChannelHandlerContext) {
        if let send = probe.send {
            let written = context.writeAndFlush(wrapOutboundOut(send))
            if probe.receive == nil {
                written.cascade(to: result)
            }
        } else if probe.receive == nil {
            result.succeed()
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let expected = probe.receive else { return }
        received.append(contentsOf: unwrapInboundIn(data).readableBytesView)
        if received.firstRange(of: expected) != nil {
            result.succeed()
        } else if received.count >= Self.readLimit {
            result.fail(TCPProbeFailure.replyNotFound(received: received.count))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        result.fail(TCPProbeFailure.closedBeforeReply(received: received.count))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        result.fail(error)
        context.close(promise: nil)
    }
}
