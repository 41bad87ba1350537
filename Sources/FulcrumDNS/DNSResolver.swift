import NIOCore
import NIOPosix

/// Asks nameservers over UDP, on NIO: nothing blocks a thread, unlike `getaddrinfo`, and the
/// nameservers can be named (HAProxy's `resolvers` section), so tests point at a dnsmasq on a
/// loopback port. Each question goes to the nameservers in order until one answers within
/// `timeout`.
package struct DNSResolver: Sendable {
    /// A server named by an SRV record, with the addresses its target has.
    package struct Service: Sendable, Equatable {
        package var target: String
        package var port: Int
        package var priority: Int
        package var weight: Int
        package var addresses: [SocketAddress]
    }

    package let nameservers: [SocketAddress]
    package let timeout: TimeAmount
    private let group: any EventLoopGroup

    package init(nameservers: [SocketAddress], timeout: TimeAmount = .seconds(2), group: any EventLoopGroup) {
        self.nameservers = nameservers
        self.timeout = timeout
        self.group = group
    }

    /// Every A and AAAA address of `host`, with `port`, sorted; throws when neither question
    /// got an answer, or the name does not exist.
    package func addresses(of host: String, port: Int) async throws -> [SocketAddress] {
        async let v4 = Self.outcome { try await query(host, type: .a) }
        async let v6 = Self.outcome { try await query(host, type: .aaaa) }
        let answers = [await v4, await v6]
        let responses = answers.compactMap { try? $0.get() }
        if responses.isEmpty {
            // Neither answered: the IPv4 question's reason.
            _ = try answers[0].get()
        }
        let addresses = responses.flatMap(\.answers).compactMap { record -> SocketAddress? in
            guard case .address(let bytes) = record.data else { return nil }
            return Self.socketAddress(bytes, port: port)
        }
        return Self.sorted(addresses)
    }

    /// The servers `name`'s SRV records name, each with its target's addresses (from the
    /// answer's additional section, or asked for).
    package func services(_ name: String) async throws -> [Service] {
        let response = try await query(name, type: .srv)
        var services: [Service] = []
        for record in response.answers {
            guard case .service(let priority, let weight, let port, let target) = record.data, target != "" else { continue }
            var addresses = response.additional.compactMap { additional -> SocketAddress? in
                guard additional.name.lowercased() == target.lowercased(), case .address(let bytes) = additional.data else { return nil }
                return Self.socketAddress(bytes, port: Int(port))
            }
            if addresses.isEmpty { addresses = (try? await self.addresses(of: target, port: Int(port))) ?? [] }
            services.append(
                Service(target: target, port: Int(port), priority: Int(priority), weight: Int(weight), addresses: Self.sorted(addresses))
            )
        }
        return services.sorted { ($0.target, $0.port) < ($1.target, $1.port) }
    }

    /// One question, to each nameserver in turn until one answers.
    package func query(_ name: String, type: DNSMessage.RecordType) async throws -> DNSMessage.Response {
        var failure: any Error = DNSResolverError.noNameserver
        for nameserver in nameservers {
            do {
                let response = try await query(name, type: type, nameserver: nameserver)
                switch response.responseCode {
                case 0: return response
                case 3: throw DNSResolverError.noSuchName(name)
                default: failure = DNSResolverError.refused(name, code: response.responseCode)
                }
            } catch let error as DNSResolverError {
                if case .noSuchName = error { throw error }
                failure = error
            } catch {
                failure = error
            }
        }
        throw failure
    }

    private func query(_ name: String, type: DNSMessage.RecordType, nameserver: SocketAddress) async throws -> DNSMessage.Response {
        let id = UInt16.random(in: .min ... .max)
        let loop = group.next()
        let reply = loop.makePromise(of: DNSMessage.Response.self)
        let channel = try await DatagramBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DNSReplyHandler(id: id, nameserver: nameserver, reply: reply))
                }
            }
            .bind(host: nameserver.protocol == .inet6 ? "::" : "0.0.0.0", port: 0)
            .get()
        let timer = loop.scheduleTask(in: timeout) { reply.fail(DNSResolverError.timeout(name)) }
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: nameserver, data: DNSMessage.query(id: id, name: name, type: type)), promise: nil)
        defer {
            timer.cancel()
            channel.close(promise: nil)
        }
        return try await reply.futureResult.get()
    }

    private static func outcome<Value: Sendable>(_ body: () async throws -> Value) async -> Result<Value, any Error> {
        do {
            return .success(try await body())
        } catch {
            return .failure(error)
        }
    }

    private static func socketAddress(_ bytes: [UInt8], port: Int) -> SocketAddress? {
        let text: String
        if bytes.count == 4 {
            text = bytes.map(String.init).joined(separator: ".")
        } else {
            text = stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }.joined(separator: ":")
        }
        return try? SocketAddress(ipAddress: text, port: port)
    }

    private static func sorted(_ addresses: [SocketAddress]) -> [SocketAddress] {
        var seen = Set<String>()
        return addresses.filter { seen.insert($0.description).inserted }.sorted { $0.description < $1.description }
    }
}

/// Why a name has no answer.
package enum DNSResolverError: Error, Equatable, CustomStringConvertible {
    case noNameserver
    case timeout(String)
    case noSuchName(String)
    case refused(String, code: UInt8)
    /// The name exists, with no record of the types asked.
    case noRecords(String)

    package var description: String {
        switch self {
        case .noNameserver: "no nameserver configured"
        case .timeout(let name): "no answer for \(name) in time"
        case .noSuchName(let name): "\(name) does not exist"
        case .refused(let name, let code):
            "the nameserver answered \(name) with \([2: "SERVFAIL", 4: "NOTIMP", 5: "REFUSED"][code] ?? "error \(code)")"
        case .noRecords(let name): "\(name) has no address record"
        }
    }
}

/// Takes the one reply a query waits for: from its nameserver, with its ID (anything else is
/// ignored, so a forged reply from elsewhere has to guess both).
private final class DNSReplyHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let id: UInt16
    private let nameserver: SocketAddress
    private let reply: EventLoopPromise<DNSMessage.Response>

    init(id: UInt16, nameserver: SocketAddress, reply: EventLoopPromise<DNSMessage.Response>) {
        self.id = id
        self.nameserver = nameserver
        self.reply = reply
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard envelope.remoteAddress == nameserver, let response = try? DNSMessage.response(envelope.data), response.id == id else { return }
        reply.succeed(response)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        reply.fail(error)
    }
}
