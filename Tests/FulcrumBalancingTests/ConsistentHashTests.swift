import FulcrumConfig
import Testing

@testable import FulcrumBalancing

/// `algorithm: hash`: where keys go, how few move when servers come and go, and the load bound.
@Suite("Consistent hashing with bounded loads")
struct ConsistentHashTests {
    static let keys = (0..<10_000).map { StableHash.of("client-\($0)") }

    /// Where every key goes on `servers`, none excluded, no load.
    static func placement(_ servers: [BalancedServer], factor: Double = 0) -> [String] {
        let ring = ConsistentHash(balanceFactor: factor)
        return keys.map { key in ring.pick(from: servers, excluding: .none, hashKey: key).map { servers[$0].name } ?? "none" }
    }

    @Test("a key goes to the same server every time, and on every instance (the ring is built from names)")
    func stable() {
        let servers = makeServers(count: 5)
        #expect(Self.placement(servers) == Self.placement(makeServers(count: 5)))
        // Fixed vectors (FNV-1a 64, then SplitMix64's finalizer): the same in every process.
        #expect(StableHash.of("10.0.0.1") == 0x7fb1_b600_f0f5_c6d3)
        #expect(StableHash.of("") == 0xf52a_15e9_a9b5_e89b)
        // Spread: each of five alike servers owns 20 % ± 7 % of the keys.
        let counts = Dictionary(grouping: Self.placement(servers), by: { $0 }).mapValues(\.count)
        #expect(counts.count == 5)
        #expect(counts.values.allSatisfy { (1_300...2_700).contains($0) }, "\(counts)")
    }

    @Test("adding or removing one of ten servers moves about a tenth of the keys, all to or from that server")
    func keyMovement() {
        let ten = makeServers(count: 10)
        let before = Self.placement(ten)

        let eleven = ten + [BalancedServer(name: "s10")]
        let added = Self.placement(eleven)
        let movedOnAdd = zip(before, added).filter { $0 != $1 }
        let addedShare = Double(movedOnAdd.count) / Double(Self.keys.count)
        // Ideal: 1/11 = 9.1 %.
        #expect((0.06...0.13).contains(addedShare), "\(addedShare)")
        #expect(movedOnAdd.allSatisfy { $0.1 == "s10" })

        let nine = Array(ten.dropFirst(1))
        let removed = Self.placement(nine)
        let movedOnRemove = zip(before, removed).filter { $0 != $1 }
        let removedShare = Double(movedOnRemove.count) / Double(Self.keys.count)
        // Ideal: 1/10.
        #expect((0.07...0.14).contains(removedShare), "\(removedShare)")
        #expect(movedOnRemove.allSatisfy { $0.0 == "s0" })
        print(
            "hash key movement: adding an 11th server moved \(movedOnAdd.count) of \(Self.keys.count) keys,"
                + " removing one of ten \(movedOnRemove.count)"
        )
    }

    @Test("a draining, down or ejected server is skipped: its keys go elsewhere, the others stay")
    func skipping() {
        let servers = makeServers(count: 5)
        let before = Self.placement(servers)
        servers[2].setAdminState(.drain)
        servers[4].setHealthy(false)
        let after = Self.placement(servers)
        for (was, now) in zip(before, after) {
            if was == "s2" || was == "s4" {
                #expect(now != "s2" && now != "s4")
            } else {
                #expect(now == was)
            }
        }
        // A retry excludes the server tried, the same way.
        let ring = ConsistentHash(balanceFactor: 0)
        let key = Self.keys[0]
        let first = ring.pick(from: servers, excluding: .none, hashKey: key)
        let second = ring.pick(from: servers, excluding: ServerIndexSet(arrayLiteral: first!), hashKey: key)
        #expect(second != nil && second != first)
    }

    @Test("bounded load: one hot key fills its server to 1.25 × the average, then spills to the next ones")
    func boundedLoad() {
        let servers = makeServers(count: 4)
        let ring = ConsistentHash(balanceFactor: 1.25)
        let hot = Self.keys[7]
        var picked: [Int] = []
        for _ in 0..<100 {
            let index = ring.pick(from: servers, excluding: .none, hashKey: hot)!
            servers[index].requestStarted()
            picked.append(index)
        }
        // No server above ceil(1.25 × 100 / 4) = 32 in flight.
        #expect(servers.allSatisfy { $0.inFlight <= 32 }, "\(servers.map(\.inFlight))")
        // The key's own server took the first requests.
        #expect(Set(picked.prefix(1)) == [servers.firstIndex { $0.inFlight == servers.map(\.inFlight).max() }!])
        // No bound: every request on the key's server.
        let unbounded = makeServers(count: 4)
        let free = ConsistentHash(balanceFactor: 0)
        for _ in 0..<100 { unbounded[free.pick(from: unbounded, excluding: .none, hashKey: hot)!].requestStarted() }
        #expect(unbounded.map(\.inFlight).sorted() == [0, 0, 0, 100])
    }

    @Test("weights: a server of weight 2 owns about twice the keys; backups only when nothing else is up")
    func weights() {
        let servers = makeServers(weights: [2, 1, 1, 0])
        let counts = Dictionary(grouping: Self.placement(servers), by: { $0 }).mapValues(\.count)
        #expect(counts["s3"] == nil)
        let share = Double(counts["s0"] ?? 0) / Double(Self.keys.count)
        #expect((0.40...0.60).contains(share), "\(counts)")
        for index in 0..<3 { servers[index].setHealthy(false) }
        #expect(Set(Self.placement(servers)) == ["s3"])
    }

    @Test("no key: round robin; no server: nil")
    func keyless() {
        let servers = makeServers(count: 3)
        let ring = ConsistentHash()
        #expect((0..<6).map { _ in ring.pick(from: servers, excluding: .none, hashKey: nil) } == [0, 1, 2, 0, 1, 2])
        #expect(ring.pick(from: [], excluding: .none, hashKey: 1) == nil)
        for server in servers { server.setHealthy(false) }
        #expect(ring.pick(from: servers, excluding: .none, hashKey: 1) == nil)
    }
}
