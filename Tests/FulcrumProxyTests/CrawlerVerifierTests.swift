import NIOCore
import NIOPosix
import Testing

@testable import FulcrumProxy

/// `CrawlerVerifier`: forward-confirmed reverse DNS with the machine's own resolver, its cache
/// and its bounds. (Only loopback is looked up: the test must not depend on a network.)
@Suite("Crawler verification")
struct CrawlerVerifierTests {
    @Test(
        "127.0.0.1 is confirmed as localhost, looked up once and then answered from the cache",
        .enabled(if: loopbackIsLocalhost, "127.0.0.1 does not resolve to localhost and back on this machine (/etc/hosts)")
    )
    func confirmsAndCaches() async throws {
        #expect(CrawlerVerifier.forwardConfirmedName(of: [127, 0, 0, 1]) == "localhost")
        let verifier = CrawlerVerifier()
        defer { verifier.shutdown() }
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        #expect(verifier.cached([127, 0, 0, 1]) == .unknown)
        // Two at once share one lookup; both get the name.
        async let first = verifier.lookUp([127, 0, 0, 1], on: eventLoop).get()
        async let second = verifier.lookUp([127, 0, 0, 1], on: eventLoop).get()
        #expect(try await [first, second] == ["localhost", "localhost"])
        #expect(verifier.cached([127, 0, 0, 1]) == .confirmed("localhost"))
        // The IPv4-mapped form is the same address.
        let mapped: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]
        #expect(verifier.cached(mapped) == .confirmed("localhost"))
        // An hour later it is looked up again.
        #expect(verifier.cached([127, 0, 0, 1], now: .now() + .minutes(61)) == .unknown)
    }

    @Test("beyond max_pending lookups, and after shutdown, an address is unconfirmed at once and not cached")
    func bounded() async throws {
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let busy = CrawlerVerifier(maxPendingLookups: 0)
        defer { busy.shutdown() }
        #expect(try await busy.lookUp([127, 0, 0, 1], on: eventLoop).get() == nil)
        #expect(busy.cached([127, 0, 0, 1]) == .unknown)

        let stopped = CrawlerVerifier()
        stopped.shutdown()
        #expect(try await stopped.lookUp([127, 0, 0, 1], on: eventLoop).get() == nil)
        #expect(stopped.cached([127, 0, 0, 1]) == .unknown)
    }

    @Test("a name is in a domain when it is the domain or ends in .domain")
    func domains() {
        #expect(CrawlerVerifier.hostname("crawl-66-249-66-1.googlebot.com", isIn: "googlebot.com"))
        #expect(CrawlerVerifier.hostname("googlebot.com", isIn: "googlebot.com"))
        #expect(!CrawlerVerifier.hostname("evilgooglebot.com", isIn: "googlebot.com"))
        #expect(!CrawlerVerifier.hostname("googlebot.com.evil.example", isIn: "googlebot.com"))
        #expect(CrawlerVerifier.canonical([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]) == [192, 0, 2, 1])
        #expect(CrawlerVerifier.canonical([0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 12)).count == 16)
    }
}

/// Whether this machine names 127.0.0.1 `localhost` and resolves `localhost` back to it (what
/// the verified-crawler tests rely on; /etc/hosts says so nearly everywhere).
let loopbackIsLocalhost: Bool = {
    guard let loopback = try? SocketAddress(ipAddress: "127.0.0.1", port: 0) else { return false }
    var host = [CChar](repeating: 0, count: 1025)
    let status = loopback.withSockAddr { pointer, size in
        getnameinfo(pointer, socklen_t(size), &host, socklen_t(host.count), nil, 0, NI_NAMEREQD)
    }
    guard status == 0, String(cString: host) == "localhost" else { return false }
    return (try? SocketAddress.makeAddressResolvingHost("localhost", port: 0))?.ipAddress == "127.0.0.1"
}()
