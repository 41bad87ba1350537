import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Finds out which name a client address really has, by forward-confirmed reverse DNS: the
/// address's PTR name, kept only when that name resolves back to the same address. This is
/// the check Google, Microsoft, Apple, Yandex and Baidu document for their crawlers — anyone
/// can put `Googlebot` in a User-Agent or a PTR record, but only Google can make
/// `crawl-66-249-66-1.googlebot.com` resolve to 66.249.66.1.
///
/// The resolver calls block, so they run on a small thread pool of this verifier's own,
/// never on an event loop, and their answers are cached per address: a confirmed name for an
/// hour, no name for ten minutes. At most `maxEntries` addresses are remembered (the oldest
/// go first) and at most `maxPendingLookups` lookups run or wait at once: a flood of
/// addresses that all claim to be Googlebot cannot queue work without limit — beyond it, an
/// address is treated as unconfirmed for that request (and not cached).
///
/// Shared by every event loop of a `ProxyServer` and kept across reloads (what DNS says of an
/// address does not depend on the configuration). Only requests that claim to be a listed
/// crawler ever reach it.
final class CrawlerVerifier: Sendable {
    /// What is known of an address without waiting.
    enum Cached: Equatable {
        /// Its forward-confirmed name (lowercase, no trailing dot).
        case confirmed(String)
        /// It has no name, or its name does not resolve back to it.
        case unconfirmed
        /// Not looked up yet (or the answer expired).
        case unknown
    }

    private struct Entry {
        var hostname: String?
        var expires: NIODeadline
    }

    private struct State {
        var entries: [[UInt8]: Entry] = [:]
        /// Addresses in the order they were cached, for eviction (may hold stale duplicates).
        var order: [[UInt8]] = []
        var pending: [[UInt8]: [EventLoopPromise<String?>]] = [:]
        /// Started at the first lookup: most configurations never need it.
        var threadPool: NIOThreadPool?
        var stopped = false
    }

    static let confirmedTTL = TimeAmount.hours(1)
    static let unconfirmedTTL = TimeAmount.minutes(10)

    let maxEntries: Int
    let maxPendingLookups: Int
    let threads: Int
    private let state = NIOLockedValueBox(State())

    init(maxEntries: Int = 10_000, maxPendingLookups: Int = 64, threads: Int = 2) {
        self.maxEntries = maxEntries
        self.maxPendingLookups = maxPendingLookups
        self.threads = threads
    }

    /// Stops the lookup threads without waiting for a lookup stuck in the resolver; later
    /// lookups answer "unconfirmed" at once.
    func shutdown() {
        let threadPool = state.withLockedValue { state in
            state.stopped = true
            defer { state.threadPool = nil }
            return state.threadPool
        }
        threadPool?.shutdownGracefully { _ in }
    }

    /// The cached answer for `address` (4 or 16 bytes; IPv4-mapped IPv6 counts as IPv4).
    func cached(_ address: [UInt8], now: NIODeadline = .now()) -> Cached {
        let key = Self.canonical(address)
        return state.withLockedValue { state in
            guard let entry = state.entries[key], entry.expires > now else { return .unknown }
            return entry.hostname.map(Cached.confirmed) ?? .unconfirmed
        }
    }

    /// Looks `address` up (or joins a lookup of it under way) and answers on `eventLoop` with
    /// its forward-confirmed name, or nil.
    func lookUp(_ address: [UInt8], on eventLoop: any EventLoop) -> EventLoopFuture<String?> {
        let key = Self.canonical(address)
        let promise = eventLoop.makePromise(of: String?.self)
        let threadPool: NIOThreadPool? = state.withLockedValue { state in
            if let entry = state.entries[key], entry.expires > .now() {
                promise.succeed(entry.hostname)
                return nil
            }
            if state.pending[key] != nil {
                state.pending[key]!.append(promise)
                return nil
            }
            guard state.pending.count < maxPendingLookups, !state.stopped else {
                promise.succeed(nil)
                return nil
            }
            state.pending[key] = [promise]
            if state.threadPool == nil {
                let threadPool = NIOThreadPool(numberOfThreads: threads)
                threadPool.start()
                state.threadPool = threadPool
            }
            return state.threadPool
        }
        if let threadPool {
            threadPool.submit { [self] work in
                let hostname = work == .active ? Self.forwardConfirmedName(of: key) : nil
                finish(key, hostname: hostname, cache: work == .active)
            }
        }
        return promise.futureResult
    }

    private func finish(_ key: [UInt8], hostname: String?, cache: Bool) {
        let waiting: [EventLoopPromise<String?>] = state.withLockedValue { state in
            let waiting = state.pending.removeValue(forKey: key) ?? []
            guard cache else { return waiting }
            let ttl = hostname == nil ? Self.unconfirmedTTL : Self.confirmedTTL
            if state.entries.updateValue(Entry(hostname: hostname, expires: .now() + ttl), forKey: key) == nil {
                state.order.append(key)
            }
            if state.entries.count > maxEntries {
                // The longest cached first.
                var index = 0
                while state.entries.count > maxEntries, index < state.order.count {
                    state.entries.removeValue(forKey: state.order[index])
                    index += 1
                }
                state.order.removeFirst(index)
            }
            return waiting
        }
        for promise in waiting { promise.succeed(hostname) }
    }

    /// IPv4-mapped IPv6 (`::ffff:a.b.c.d`, what a dual-stack listener sees) as the IPv4 address.
    static func canonical(_ address: [UInt8]) -> [UInt8] {
        if address.count == 16, address[0..<10].allSatisfy({ $0 == 0 }), address[10] == 0xff, address[11] == 0xff {
            return Array(address[12..<16])
        }
        return address
    }

    /// Whether `hostname` is `domain` or ends in `.domain`.
    static func hostname(_ hostname: String, isIn domain: String) -> Bool {
        hostname == domain || hostname.hasSuffix("." + domain)
    }

    // MARK: The resolver (blocking; thread pool only)

    /// The address's PTR name, if it resolves back to the address.
    static func forwardConfirmedName(of address: [UInt8]) -> String? {
        guard let name = reverseName(of: address) else { return nil }
        return forwardAddresses(of: name).contains(address) ? name : nil
    }

    private static func reverseName(of address: [UInt8]) -> String? {
        guard let socketAddress = try? SocketAddress(packedIPAddress: ByteBuffer(bytes: address), port: 0) else {
            return nil
        }
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        let status = socketAddress.withSockAddr { pointer, size in
            getnameinfo(pointer, socklen_t(size), &host, socklen_t(host.count), nil, 0, NI_NAMEREQD)
        }
        guard status == 0 else { return nil }
        var name = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        return name.isEmpty ? nil : name
    }

    private static func forwardAddresses(of name: String) -> [[UInt8]] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Darwin)
        hints.ai_socktype = SOCK_STREAM
        #else
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(name, nil, &hints, &list) == 0, let first = list else { return [] }
        defer { freeaddrinfo(first) }
        var addresses: [[UInt8]] = []
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let current = node {
            if let socketAddress = current.pointee.ai_addr {
                switch Int32(current.pointee.ai_family) {
                case AF_INET:
                    socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                        var raw = $0.pointee.sin_addr
                        addresses.append(withUnsafeBytes(of: &raw) { Array($0) })
                    }
                case AF_INET6:
                    socketAddress.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                        var raw = $0.pointee.sin6_addr
                        addresses.append(canonical(withUnsafeBytes(of: &raw) { Array($0) }))
                    }
                default:
                    break
                }
            }
            node = current.pointee.ai_next
        }
        return addresses
    }
}
