#if os(Linux)
import CEpoll
import Glibc
import NIOCore
import NIOPosix

/// The `parked` mode: idle connections are not NIO channels at all. Fulcrum's design question
/// in numbers (docs/architecture.md, "What a connection costs"): what an idle connection costs
/// when it is a descriptor in an epoll set, and a channel only while a request is in flight.
///
/// One thread owns the listening socket and an epoll set of idle sockets. A socket that becomes
/// readable leaves the set and becomes a channel (`ClientBootstrap.withConnectedSocket`); once
/// its response is written, the channel closes over a duplicate of the descriptor, which goes
/// back into the set. A prototype: no timeouts, no limits, one request per read.
final class ParkingLot: @unchecked Sendable {
    private let epollDescriptor: CInt
    private let listeningDescriptor: CInt
    private let group: any EventLoopGroup

    init(port: Int, group: any EventLoopGroup) {
        self.group = group
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        var one: CInt = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        precondition(bound == 0 && listen(listener, 4096) == 0, "cannot listen on port \(port)")
        listeningDescriptor = listener
        epollDescriptor = epoll_create1(0)
        park(listeningDescriptor)
    }

    /// Waits for the descriptor to become readable (or hung up) in the set.
    func park(_ descriptor: CInt) {
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | EPOLLRDHUP.rawValue
        event.data.fd = descriptor
        epoll_ctl(epollDescriptor, EPOLL_CTL_ADD, descriptor, &event)
    }

    /// The parking thread's loop: accepts, and turns readable sockets into channels.
    func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        while true {
            let count = epoll_wait(epollDescriptor, &events, CInt(events.count), -1)
            for index in 0..<max(0, Int(count)) {
                let descriptor = events[index].data.fd
                if descriptor == listeningDescriptor {
                    acceptAll()
                    continue
                }
                epoll_ctl(epollDescriptor, EPOLL_CTL_DEL, descriptor, nil)
                if events[index].events & (EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 {
                    close(descriptor)  // the client left while its connection was parked
                } else {
                    unpark(descriptor)
                }
            }
        }
    }

    private func acceptAll() {
        while true {
            let descriptor = accept(listeningDescriptor, nil, nil)  // NIO makes it non-blocking
            guard descriptor >= 0 else { return }
            park(descriptor)
        }
    }

    private func unpark(_ descriptor: CInt) {
        let lot = self
        _ = ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ParkingResponder(descriptor: descriptor, lot: lot))
                }
            }
            .withConnectedSocket(descriptor)
    }
}

/// Answers one read, then parks the socket and closes the channel.
final class ParkingResponder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let descriptor: CInt
    private let lot: ParkingLot

    init(descriptor: CInt, lot: ParkingLot) {
        self.descriptor = descriptor
        self.lot = lot
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let written = context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: RawResponder.response)))
        let (descriptor, lot) = (descriptor, lot)
        written.assumeIsolated().whenSuccess {
            // NIO closes its descriptor; the duplicate keeps the connection open.
            let kept = dup(descriptor)
            context.close(promise: nil)
            lot.park(kept)
        }
    }
}
#endif
