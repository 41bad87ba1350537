import FulcrumDNS
import Testing

@Suite("resolv.conf, the hosts file and the family a name's addresses are chosen from")
struct SystemFilesTests {
    @Test("resolv.conf: nameservers on port 53, the last search line, ndots")
    func resolvConf() {
        let conf = ResolvConf(
            parsing: "# comment\ndomain old.example\nsearch svc.cluster.local cluster.local\nnameserver 10.0.0.53\n"
                + "nameserver\t::1\nnameserver fe80::1%eth0\nnameserver not-an-address\noptions ndots:5 timeout:1\n"
        )
        #expect(conf.nameservers.map { "\($0.ipAddress ?? "") \($0.port ?? 0)" } == ["10.0.0.53 53", "::1 53", "fe80::1 53"])
        #expect(conf.search == ["svc.cluster.local", "cluster.local"])
        #expect(conf.ndots == 5)
    }

    @Test("search domains: first for a short name, after for a long one, never for a name ending with a dot")
    func candidates() {
        var conf = ResolvConf(parsing: "search a.example b.example\n")
        #expect(conf.candidates(for: "app") == ["app.a.example", "app.b.example", "app"])
        #expect(conf.candidates(for: "app.internal") == ["app.internal", "app.internal.a.example", "app.internal.b.example"])
        #expect(conf.candidates(for: "app.internal.") == ["app.internal"])
        conf.ndots = 5
        #expect(conf.candidates(for: "app.internal").last == "app.internal")
        #expect(ResolvConf().candidates(for: "app") == ["app"])
    }

    @Test("the hosts file: every address of a name, in any case, comments left out")
    func hostsFile() {
        let hosts = HostsFile(parsing: "127.0.0.1 localhost\n::1 localhost ip6-localhost # loopback\n# 10.0.0.9 gone\n10.0.0.7\tApp app.internal\n")
        #expect(hosts.addresses(of: "localhost") == ["127.0.0.1", "::1"])
        #expect(hosts.addresses(of: "APP") == ["10.0.0.7"])
        #expect(hosts.addresses(of: "app.internal.") == ["10.0.0.7"])
        #expect(hosts.addresses(of: "gone").isEmpty)
        #expect(hosts.addresses(of: "10.0.0.7").isEmpty)
    }

    @Test("the family: IPv4 preferred, IPv6 preferred, or all of them, without repeats")
    func family() {
        let both = ["2001:db8::1", "10.0.0.2", "10.0.0.1", "10.0.0.2"]
        #expect(HostResolver.choose(both, family: .ipv4Preferred) == ["10.0.0.1", "10.0.0.2"])
        #expect(HostResolver.choose(both, family: .ipv6Preferred) == ["2001:db8::1"])
        #expect(HostResolver.choose(both, family: .all) == ["10.0.0.1", "10.0.0.2", "2001:db8::1"])
        #expect(HostResolver.choose(["::1"], family: .ipv4Preferred) == ["::1"])
        #expect(HostResolver.choose(["127.0.0.1"], family: .ipv6Preferred) == ["127.0.0.1"])
    }
}
