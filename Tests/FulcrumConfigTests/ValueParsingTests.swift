import FulcrumConfig
import Testing

@Suite("Parsing durations, sizes, addresses and CIDR blocks")
struct ValueParsingTests {
    @Test(
        "durations",
        arguments: [
            ("250ms", Duration.milliseconds(250)),
            ("2s", .seconds(2)),
            ("1m", .seconds(60)),
            ("1h", .seconds(3600)),
            ("1.5s", .milliseconds(1500)),
            ("0.1s", .milliseconds(100)),
            (".5s", .milliseconds(500)),
            ("100us", .microseconds(100)),
            ("100µs", .microseconds(100)),
            ("750ns", .nanoseconds(750)),
            ("1m30s", .seconds(90)),
            ("1h2m3.5s", .milliseconds(3_723_500)),
            ("0s", .zero),
            ("1.0000000001s", .seconds(1)),
        ]
    )
    func validDuration(text: String, expected: Duration) {
        #expect(parseDuration(text) == expected)
    }

    @Test(
        "invalid durations",
        arguments: [
            "", "5", "s", "2 s", " 2s", "2s ", "-1s", "+1s", "2S", "2sec", "1d", "1.5.5s", "1..5s", ".s", "1s2",
            "9999999999999h",
        ]
    )
    func invalidDuration(text: String) {
        #expect(parseDuration(text) == nil)
    }

    @Test(
        "byte sizes",
        arguments: [
            ("0", 0),
            ("65536", 65536),
            ("512b", 512),
            ("64k", 65536),
            ("64K", 65536),
            ("64KB", 65536),
            ("64 KB", 65536),
            ("64KiB", 65536),
            ("1m", 1_048_576),
            ("1MB", 1_048_576),
            ("2g", 2_147_483_648),
        ]
    )
    func validByteSize(text: String, expected: Int) {
        #expect(parseByteSize(text) == expected)
    }

    @Test(
        "invalid byte sizes",
        arguments: [
            "", "k", "64 ", "64  KB", "1.5MB", "-1", "64kbit", "64t", "lots", "99999999999999999999",
            "9999999999999g",
        ]
    )
    func invalidByteSize(text: String) {
        #expect(parseByteSize(text) == nil)
    }

    @Test("IP addresses")
    func ipAddresses() {
        #expect(parseIPAddress("10.1.2.3") == [10, 1, 2, 3])
        #expect(parseIPAddress("0.0.0.0") == [0, 0, 0, 0])
        #expect(parseIPAddress("255.255.255.255") == [255, 255, 255, 255])
        #expect(parseIPAddress("::") == Array(repeating: 0, count: 16))
        #expect(parseIPAddress("::1") == Array(repeating: 0, count: 15) + [1])
        #expect(parseIPAddress("1::") == [0, 1] + Array(repeating: 0, count: 14))
        #expect(
            parseIPAddress("2001:db8::ff00:42:8329")
                == [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0x00, 0x00, 0x42, 0x83, 0x29]
        )
        #expect(parseIPAddress("2001:0DB8:0000:0000:0000:FF00:0042:8329") == parseIPAddress("2001:db8::ff00:42:8329"))
        #expect(parseIPAddress("1:2:3:4:5:6:7::") == [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 0])
        #expect(parseIPAddress("::ffff:192.0.2.1") == Array(repeating: 0, count: 10) + [0xff, 0xff, 192, 0, 2, 1])
        #expect(parseIPAddress("64:ff9b::1.2.3.4") == [0, 0x64, 0xff, 0x9b] + Array(repeating: 0, count: 8) + [1, 2, 3, 4])

        for invalid in [
            "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.-4", "a.b.c.d", "1.2.3.4 ",
            ":", ":::", "1:2", ":1", "1:", "1::2::3", "12345::", "g::", "+1::", "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7:8::", "::1.2.3.4:5", "1.2.3.4::", "fe80::1%eth0", "[::1]",
        ] {
            #expect(parseIPAddress(invalid) == nil, "\(invalid) should be rejected")
        }
    }

    @Test("CIDR blocks are parsed with host bits cleared")
    func cidrParsing() throws {
        #expect(CIDRBlock(parsing: "10.0.0.0/8") == CIDRBlock(network: [10, 0, 0, 0], prefixLength: 8))
        #expect(CIDRBlock(parsing: "10.1.2.3/8") == CIDRBlock(network: [10, 0, 0, 0], prefixLength: 8))
        #expect(CIDRBlock(parsing: "192.168.77.200/20") == CIDRBlock(network: [192, 168, 64, 0], prefixLength: 20))
        #expect(CIDRBlock(parsing: "127.0.0.1") == CIDRBlock(network: [127, 0, 0, 1], prefixLength: 32))
        #expect(CIDRBlock(parsing: "0.0.0.0/0") == CIDRBlock(network: [0, 0, 0, 0], prefixLength: 0))
        #expect(CIDRBlock(parsing: "::1") == CIDRBlock(network: Array(repeating: 0, count: 15) + [1], prefixLength: 128))
        let documentation = try #require(CIDRBlock(parsing: "2001:db8:abcd:12ff::1/52"))
        #expect(documentation.network == [0x20, 0x01, 0x0d, 0xb8, 0xab, 0xcd, 0x10] + Array(repeating: 0, count: 9))
        #expect(documentation.description == "2001:db8:abcd:1000:0:0:0:0/52")
        #expect(CIDRBlock(parsing: "10.1.2.3/8")?.description == "10.0.0.0/8")

        for invalid in [
            "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/8/8",
            "10.0.0/8", "/8", "", "example.com/8", "10.0.0.0/0008",
        ] {
            #expect(CIDRBlock(parsing: invalid) == nil, "\(invalid) should be rejected")
        }
    }

    @Test("IPv4 blocks contain IPv4 and IPv4-mapped IPv6 addresses")
    func ipv4Containment() throws {
        let office = try #require(CIDRBlock(parsing: "10.0.0.0/8"))
        #expect(office.contains(try #require(parseIPAddress("10.0.0.0"))))
        #expect(office.contains(try #require(parseIPAddress("10.255.255.255"))))
        #expect(!office.contains(try #require(parseIPAddress("11.0.0.1"))))
        #expect(!office.contains(try #require(parseIPAddress("9.255.255.255"))))
        // An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d.
        #expect(office.contains(try #require(parseIPAddress("::ffff:10.9.8.7"))))
        #expect(!office.contains(try #require(parseIPAddress("::ffff:11.9.8.7"))))
        // Not mapped: the IPv4-compatible form and NAT64 prefixes are other addresses.
        #expect(!office.contains(try #require(parseIPAddress("::10.9.8.7"))))
        #expect(!office.contains(try #require(parseIPAddress("64:ff9b::10.9.8.7"))))

        let narrow = try #require(CIDRBlock(parsing: "192.168.64.0/20"))
        #expect(narrow.contains([192, 168, 79, 255]))
        #expect(!narrow.contains([192, 168, 80, 0]))
        #expect(!narrow.contains([192, 168, 63, 255]))

        let host = try #require(CIDRBlock(parsing: "127.0.0.1"))
        #expect(host.contains([127, 0, 0, 1]))
        #expect(!host.contains([127, 0, 0, 2]))

        let everything = try #require(CIDRBlock(parsing: "0.0.0.0/0"))
        #expect(everything.contains([203, 0, 113, 9]))
        #expect(!everything.contains(try #require(parseIPAddress("2001:db8::1"))))
    }

    @Test("IPv6 blocks contain IPv6 addresses only")
    func ipv6Containment() throws {
        let documentation = try #require(CIDRBlock(parsing: "2001:db8::/32"))
        #expect(documentation.contains(try #require(parseIPAddress("2001:db8::1"))))
        #expect(documentation.contains(try #require(parseIPAddress("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"))))
        #expect(!documentation.contains(try #require(parseIPAddress("2001:db9::1"))))
        #expect(!documentation.contains([32, 1, 13, 184]))

        let loopback = try #require(CIDRBlock(parsing: "::1"))
        #expect(loopback.contains(try #require(parseIPAddress("0:0:0:0:0:0:0:1"))))
        #expect(!loopback.contains(try #require(parseIPAddress("::2"))))
        #expect(!loopback.contains([127, 0, 0, 1]))

        // A prefix that ends mid-byte.
        let odd = try #require(CIDRBlock(parsing: "fe80::/10"))
        #expect(odd.contains(try #require(parseIPAddress("febf::1"))))
        #expect(!odd.contains(try #require(parseIPAddress("fec0::1"))))
    }
}
