import NIOCore
import Testing

@testable import FulcrumProxy

/// The client address text `X-Forwarded-For`, logs and ACLs use: written by hand for IPv4
/// (inet_ntop's sprintf was a third of its cost), so it must match NIO's text exactly.
@Suite("Client address text")
struct ClientInfoTests {
    @Test(
        "an IPv4 address reads as NIO writes it",
        arguments: ["0.0.0.0", "127.0.0.1", "192.0.2.7", "10.0.100.9", "9.99.100.255", "255.255.255.255"]
    )
    func ipv4(address: String) throws {
        let peer = try SocketAddress(ipAddress: address, port: 40000)
        let client = ClientInfo(peer: peer, isSecure: false)
        #expect(client.addressText == address)
        #expect(client.addressText == peer.ipAddress)
        #expect(client.addressBytes?.count == 4)
    }

    @Test("IPv6 and unknown peers")
    func otherPeers() throws {
        let peer = try SocketAddress(ipAddress: "2001:db8::7", port: 40000)
        #expect(ClientInfo(peer: peer, isSecure: true).addressText == "2001:db8::7")
        #expect(ClientInfo(peer: peer, isSecure: true).addressBytes?.count == 16)
        #expect(ClientInfo(peer: nil, isSecure: false).addressText == "unknown")
    }
}
