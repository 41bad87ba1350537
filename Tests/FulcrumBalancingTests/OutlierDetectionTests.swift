import FulcrumConfig
import Testing

@testable import FulcrumBalancing

private let second: UInt64 = 1_000_000_000

@Suite struct EjectionBackoffTests {
    @Test("each ejection soon after the last lasts twice as long, up to the maximum")
    func doublesUpToMaximum() {
        var backoff = EjectionBackoff()
        let base = Int64(10 * second)
        let maximum = Int64(60 * second)
        var now: UInt64 = 1000 * second
        var lengths: [Int64] = []
        for _ in 0..<5 {
            let length = backoff.eject(now: now, base: base, maximum: maximum)
            lengths.append(length / Int64(second))
            #expect(!backoff.isOver(now: now + UInt64(length) - 1))
            #expect(backoff.isOver(now: now + UInt64(length)))
            now += UInt64(length)
            backoff.returned(now: now)
            now += 5 * second  // fails again soon after coming back
        }
        #expect(lengths == [10, 20, 40, 60, 60])
        #expect(backoff.consecutiveEjections == 5)
    }

    @Test("a server that stayed in for the maximum starts again from the base")
    func resetsAfterAQuietSpell() {
        var backoff = EjectionBackoff()
        let base = Int64(10 * second)
        let maximum = Int64(60 * second)
        _ = backoff.eject(now: 0, base: base, maximum: maximum)
        backoff.returned(now: 10 * second)
        #expect(backoff.eject(now: 20 * second, base: base, maximum: maximum) == 20 * Int64(second))
        backoff.returned(now: 40 * second)
        #expect(backoff.eject(now: 100 * second, base: base, maximum: maximum) == 10 * Int64(second))
        #expect(backoff.consecutiveEjections == 1)
    }

    @Test("a huge number of ejections cannot overflow the length")
    func noOverflow() {
        var backoff = EjectionBackoff()
        var length: Int64 = 0
        for round in 0..<200 {
            length = backoff.eject(now: UInt64(round), base: 1, maximum: .max)
            backoff.returned(now: UInt64(round))
        }
        #expect(length == .max)
    }
}

@Suite struct OutlierDetectorTests {
    private static func detector(_ servers: [BalancedServer], failures: Int = 3, maxPercent: Int = 50) -> OutlierDetector {
        OutlierDetector(
            settings: .init(
                consecutiveFailures: failures,
                baseEjection: Int64(10 * second),
                maximumEjection: Int64(300 * second),
                maxEjectedPercent: maxPercent
            ),
            servers: servers
        )
    }

    @Test("consecutive failures eject; a success in between starts the count over")
    func ejectsOnAStreak() {
        let servers = makeServers(count: 3)
        let detector = Self.detector(servers)
        #expect(detector.recordFailure(serverIndex: 1, now: 0) == nil)
        #expect(detector.recordFailure(serverIndex: 1, now: 0) == nil)
        detector.recordSuccess(serverIndex: 1)
        #expect(detector.recordFailure(serverIndex: 1, now: 0) == nil)
        #expect(detector.recordFailure(serverIndex: 1, now: 0) == nil)
        #expect(servers[1].state == .up)
        #expect(detector.recordFailure(serverIndex: 1, now: 0) == .ejected(nanoseconds: Int64(10 * second), consecutiveEjections: 1))
        #expect(servers[1].state == .ejected)
        #expect(!servers[1].isAvailable)
        // Failures of requests still in flight when it was ejected do not eject it again.
        for _ in 0..<5 { #expect(detector.recordFailure(serverIndex: 1, now: 0) == nil) }
    }

    @Test("an ejected server returns only once its ejection is over; the next one lasts longer")
    func returnsAfterTheEjection() {
        let servers = makeServers(count: 2)
        let detector = Self.detector(servers, failures: 1)
        #expect(detector.recordFailure(serverIndex: 0, now: 0) == .ejected(nanoseconds: Int64(10 * second), consecutiveEjections: 1))
        #expect(!detector.returnIfOver(serverIndex: 0, now: 9 * second))
        #expect(servers[0].isEjected)
        #expect(detector.returnIfOver(serverIndex: 0, now: 10 * second))
        #expect(servers[0].isAvailable)
        #expect(!detector.returnIfOver(serverIndex: 0, now: 11 * second))
        #expect(detector.recordFailure(serverIndex: 0, now: 12 * second) == .ejected(nanoseconds: Int64(20 * second), consecutiveEjections: 2))
    }

    @Test("the last server in rotation is never ejected (panic threshold)")
    func neverTheLastServer() {
        let servers = makeServers(count: 2)
        let detector = Self.detector(servers, failures: 2, maxPercent: 100)
        _ = detector.recordFailure(serverIndex: 0, now: 0)
        #expect(detector.recordFailure(serverIndex: 0, now: 0) != nil)
        #expect(servers[0].isEjected)
        _ = detector.recordFailure(serverIndex: 1, now: 0)
        #expect(detector.recordFailure(serverIndex: 1, now: 0) == .spared(reason: "it is the last server in rotation"))
        #expect(servers[1].isAvailable)
        // Said once per streak, not on every further failure.
        #expect(detector.recordFailure(serverIndex: 1, now: 0) == nil)
        // Health checks count too: with the other server down, the last one stays.
        let more = makeServers(count: 2)
        let other = Self.detector(more, failures: 1, maxPercent: 100)
        more[0].setHealthy(false)
        #expect(other.recordFailure(serverIndex: 1, now: 0) == .spared(reason: "it is the last server in rotation"))
    }

    @Test("at most max_ejected_percent of the servers are ejected at once, but at least one")
    func ejectedShareIsCapped() {
        let servers = makeServers(count: 4)
        let detector = Self.detector(servers, failures: 1, maxPercent: 50)
        #expect(detector.recordFailure(serverIndex: 0, now: 0) != nil)
        #expect(detector.recordFailure(serverIndex: 1, now: 0) != nil)
        #expect(detector.recordFailure(serverIndex: 2, now: 0) == .spared(reason: "2 of 4 servers are ejected already (max_ejected_percent 50)"))
        let few = makeServers(count: 3)
        let small = Self.detector(few, failures: 1, maxPercent: 10)
        #expect(small.recordFailure(serverIndex: 0, now: 0) != nil)
        #expect(small.recordFailure(serverIndex: 1, now: 0) == .spared(reason: "1 of 3 servers are ejected already (max_ejected_percent 10)"))
    }
}

@Suite struct ServerStateTests {
    @Test("every reason keeps a server out; the reported state puts the operator's choice first")
    func exclusionsAndState() {
        let server = BalancedServer(name: "s")
        #expect(server.state == .up && server.isAvailable && server.adminState == .ready)
        server.setEjected(true)
        #expect(server.state == .ejected && !server.isAvailable)
        server.setHealthy(false)
        #expect(server.state == .down)
        server.setAdminState(.drain)
        #expect(server.state == .draining && server.adminState == .drain)
        server.setAdminState(.maintenance)
        #expect(server.state == .maintenance && server.adminState == .maintenance)
        server.setAdminState(.ready)
        server.setHealthy(true)
        #expect(server.state == .ejected)
        server.setEjected(false)
        #expect(server.state == .up && server.isAvailable)
    }

    @Test("a draining server gets no new picks from any algorithm")
    func drainingServerIsSkipped() {
        let servers = makeServers(count: 3)
        servers[1].setAdminState(.drain)
        for name in AlgorithmName.allCases where name != .adaptive {
            let algorithm = makeAlgorithm(name)
            #expect(!algorithm.picks(30, from: servers).contains(1), "\(name)")
        }
    }
}
