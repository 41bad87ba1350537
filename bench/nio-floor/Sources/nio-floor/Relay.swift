import NIOCore
import NIOPosix

/// The `relay` mode: the least a proxy on NIO can do per request. Each client connection gets
/// its own connection to the backend, opened on the same event loop, and bytes are copied
/// both ways as they arrive: no parsing, no routing, no pool, no timers. What it costs per
/// keep-alive request is the floor under any HTTP proxy built on NIO's channels, Fulcrum
/// included, since such a proxy reads and writes on two channels for every request.
final class RelayHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var partner: (any Channel)?

    /// Pairs this side with the other one; reading starts once both exist.
    func pair(with partner: any Channel) {
        self.partner = partner
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.close(promise: nil)
        partner = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Opens the backend connection for a new client channel and pairs the two relays.
func startRelay(client: any Channel, backendPort: Int) -> EventLoopFuture<Void> {
    let clientRelay = RelayHandler()
    do {
        try client.pipeline.syncOperations.addHandler(clientRelay)
    } catch {
        return client.eventLoop.makeFailedFuture(error)
    }
    let backendRelay = RelayHandler()
    ClientBootstrap(group: client.eventLoop)
        .channelOption(.autoRead, value: false)
        .channelInitializer { backend in
            backend.eventLoop.makeCompletedFuture {
                try backend.pipeline.syncOperations.addHandler(backendRelay)
            }
        }
        .connect(host: "127.0.0.1", port: backendPort)
        .whenComplete { result in
            switch result {
            case .success(let backend):
                guard client.isActive else { return backend.close(promise: nil) }
                clientRelay.pair(with: backend)
                backendRelay.pair(with: client)
                client.setOption(.autoRead, value: true).whenComplete { _ in }
                backend.setOption(.autoRead, value: true).whenComplete { _ in }
            case .failure:
                client.close(promise: nil)
            }
        }
    return client.eventLoop.makeSucceededVoidFuture()
}
