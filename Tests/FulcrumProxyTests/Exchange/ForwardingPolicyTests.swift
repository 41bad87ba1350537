import FulcrumConfig
import NIOCore
import NIOHTTP1
import Testing

@testable import FulcrumProxy

/// Who the client is, from a trusted proxy's headers, without sockets.
@Suite("Forwarding policy")
struct ForwardingPolicyTests {
    static func policy(trusted: [String], header: ForwardingConfig.ClientIPHeader = .xForwardedFor) -> ForwardingPolicy {
        var config = ForwardingConfig()
        config.trustedProxies = trusted.compactMap(CIDRBlock.init(parsing:))
        config.clientIPHeader = header
        return ForwardingPolicy(config)!
    }

    static func client(_ policy: ForwardingPolicy, peer: String = "10.0.0.1", _ headers: HTTPHeaders) throws -> String {
        let peerInfo = ClientInfo(peer: try SocketAddress(ipAddress: peer, port: 1234), isSecure: false)
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: headers)
        return policy.client(of: head, peer: peerInfo).addressText
    }

    @Test("X-Forwarded-For, right to left past trusted hops; several lines; all trusted: the leftmost")
    func forwardedFor() throws {
        let policy = Self.policy(trusted: ["10.0.0.0/8"])
        #expect(try Self.client(policy, ["X-Forwarded-For": "1.1.1.1, 2.2.2.2, 10.9.9.9"]) == "2.2.2.2")
        #expect(try Self.client(policy, ["X-Forwarded-For": "1.1.1.1", "x-forwarded-for": "10.1.1.1,10.2.2.2"]) == "1.1.1.1")
        #expect(try Self.client(policy, ["X-Forwarded-For": "10.1.1.1, 10.2.2.2"]) == "10.1.1.1")
        #expect(try Self.client(policy, [:]) == "10.0.0.1")
        // Not an address: the walk stops, at the last trusted hop (or the peer).
        #expect(try Self.client(policy, ["X-Forwarded-For": "1.1.1.1, unknown, 10.3.3.3"]) == "10.3.3.3")
        #expect(try Self.client(policy, ["X-Forwarded-For": "1.1.1.1, garbage"]) == "10.0.0.1")
        // IPv6, and IPv4 with a port.
        #expect(try Self.client(policy, ["X-Forwarded-For": "2001:db8::7"]) == "2001:db8::7")
        #expect(try Self.client(policy, ["X-Forwarded-For": "1.2.3.4:5678"]) == "1.2.3.4")
        // An untrusted peer names no one.
        #expect(try Self.client(policy, peer: "192.0.2.1", ["X-Forwarded-For": "1.1.1.1"]) == "192.0.2.1")
    }

    @Test("Forwarded: for= in each element, quoted, bracketed, with ports, any case; other parameters ignored")
    func forwarded() throws {
        let policy = Self.policy(trusted: ["10.0.0.0/8"], header: .forwarded)
        #expect(try Self.client(policy, ["Forwarded": #"for=192.0.2.60;proto=http;by=203.0.113.43"#]) == "192.0.2.60")
        #expect(try Self.client(policy, ["Forwarded": #"for="[2001:db8:cafe::17]:4711", FOR=10.0.0.5"#]) == "2001:db8:cafe::17")
        #expect(try Self.client(policy, ["Forwarded": "proto=https;for=\"198.51.100.17:80\""]) == "198.51.100.17")
        #expect(try Self.client(policy, ["Forwarded": "for=unknown"]) == "10.0.0.1")
        #expect(try Self.client(policy, ["Forwarded": "by=10.0.0.2"]) == "10.0.0.1")
        #expect(try Self.client(policy, ["X-Forwarded-For": "1.1.1.1"]) == "10.0.0.1", "not the header it reads")
    }

    @Test("the Forwarded element this hop adds: IPv6 quoted in brackets, the host quoted when it is no token")
    func element() throws {
        let v4 = ClientInfo(peer: try SocketAddress(ipAddress: "192.0.2.1", port: 1), isSecure: true)
        #expect(ForwardingPolicy.forwardedElement(peer: v4, host: "example.com") == "for=192.0.2.1;proto=https;host=example.com")
        let v6 = ClientInfo(peer: try SocketAddress(ipAddress: "2001:db8::1", port: 1), isSecure: false)
        #expect(ForwardingPolicy.forwardedElement(peer: v6, host: "[::1]:8080") == #"for="[2001:db8::1]";proto=http;host="[::1]:8080""#)
        #expect(ForwardingPolicy.forwardedElement(peer: v6, host: nil) == #"for="[2001:db8::1]";proto=http"#)
    }
}
