import Testing

@testable import FulcrumShield

@Suite struct ClientPrefixTests {
    @Test(
        "IPv4 addresses keep their /24",
        arguments: [
            ("192.0.2.7", "192.0.2.0/24"),
            ("192.0.2.255", "192.0.2.0/24"),
            ("0.0.0.0", "0.0.0.0/24"),
            ("255.255.255.255", "255.255.255.0/24"),
            ("[10.1.2.3]", "10.1.2.0/24"),
        ]
    )
    func ipv4(address: String, prefix: String) {
        let parsed = ClientPrefix(address: address)
        #expect(parsed.description == prefix)
        #expect(!parsed.isOpaque)
    }

    @Test(
        "IPv6 addresses keep their /64, in any text form",
        arguments: [
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
            ("2001:0db8:0001:0002:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
            ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),
            ("2001:db8::1", "2001:db8::/64"),
            ("2001:db8:0:0:1::", "2001:db8::/64"),
            ("::1", "::/64"),
            ("::", "::/64"),
            ("fe80::1%eth0", "fe80::/64"),
            ("[2001:db8:a:b::7]", "2001:db8:a:b::/64"),
            ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4::/64"),
            ("::1.2.3.4", "::/64"),
        ]
    )
    func ipv6(address: String, prefix: String) {
        let parsed = ClientPrefix(address: address)
        #expect(parsed.description == prefix)
        #expect(!parsed.isOpaque)
    }

    @Test("an IPv4-mapped IPv6 address is its IPv4 address")
    func mapped() {
        #expect(ClientPrefix(address: "::ffff:192.0.2.7") == ClientPrefix(address: "192.0.2.99"))
        #expect(ClientPrefix(address: "::ffff:c000:207").description == "192.0.2.0/24")
    }

    @Test("addresses in one prefix are equal, across prefixes not")
    func equality() {
        #expect(ClientPrefix(address: "198.51.100.1") == ClientPrefix(address: "198.51.100.200"))
        #expect(ClientPrefix(address: "198.51.100.1") != ClientPrefix(address: "198.51.101.1"))
        #expect(ClientPrefix(address: "2001:db8::1") == ClientPrefix(address: "2001:db8::ffff:1"))
        #expect(ClientPrefix(address: "2001:db8::1") != ClientPrefix(address: "2001:db8:0:1::1"))
        // 0.0.0.x and ::/64 are different families.
        #expect(ClientPrefix(address: "0.0.0.1") != ClientPrefix(address: "::1"))
    }

    @Test(
        "text that is not an address literal is kept whole",
        arguments: [
            "", "unknown", "/var/run/fulcrum.sock", "192.0.2", "192.0.2.1.5", "192.0.2.256", "192.0.2.01",
            "192.0.2.1:8080", "1.2.3.-4", "1:2:3:4:5:6:7:8:9", "1::2::3", ":1", "1:", "12345::", "::g",
            "1:2:3:4:5:6:7::8:9", "::1.2.3", "1.2.3.4::", "2001:db8::1/64",
        ]
    )
    func opaque(text: String) {
        let parsed = ClientPrefix(address: text)
        #expect(parsed.isOpaque)
        #expect(parsed.description == text)
    }

    @Test("network-order bytes give the same prefix as text")
    func bytes() {
        #expect(ClientPrefix(addressBytes: [192, 0, 2, 7]) == ClientPrefix(address: "192.0.2.1"))
        let ipv6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 9, 9, 9, 9, 9, 9, 9, 9]
        #expect(ClientPrefix(addressBytes: ipv6) == ClientPrefix(address: "2001:db8:1:2::"))
        let mapped: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 200]
        #expect(ClientPrefix(addressBytes: mapped) == ClientPrefix(address: "192.0.2.1"))
        #expect(ClientPrefix(addressBytes: [1, 2, 3]).isOpaque)
    }
}
