import FulcrumConfig

/// `algorithm: hash`: consistent hashing of a request key, with bounded loads.
///
/// **The ring.** Each server owns `pointsPerWeight × weight` points on a 64-bit ring (backups,
/// weight 0, own `pointsPerWeight`), placed by a stable hash of its *name* and the point's
/// number, so every event loop and every Fulcrum instance builds the same ring, and a reload
/// that keeps a server keeps its points. A key goes to the owner of the first point at or
/// after the key's hash. Adding or removing one of N servers moves only the keys whose first
/// point changes owner: about 1/N of them.
///
/// **Slow start.** A server that ramps up after coming back has a share of its points, in
/// steps of a tenth (`pointCount`), and a share of its bound: its keys come back gradually.
///
/// **Skipping.** A server that cannot be picked (down, ejected, draining, in maintenance, or
/// already tried for this request) is passed over on the way round the ring, so its keys go to
/// the next owner while the other servers keep theirs.
///
/// **Bounded loads** ("Consistent Hashing with Bounded Loads", Mirrokni, Thorup and
/// Zadimoghaddam; HAProxy's `hash-balance-factor`). A server whose requests in flight would
/// exceed `balanceFactor` × its weighted share of all requests in flight (this one included) is
/// full, and the walk goes on: no server takes more than that, and a popular key spills over to
/// its neighbours instead of overloading its server. When every eligible server is full, the
/// first eligible one on the walk takes the request. `balanceFactor` 0 is no bound.
///
/// A request without a key (the header, cookie or parameter is missing) is balanced by round
/// robin, as HAProxy does.
///
/// Not thread-safe: one instance per event loop.
package final class ConsistentHash: LoadBalancingAlgorithm {
    package var name: AlgorithmName { .hash }
    package var usesHashKey: Bool { true }

    /// Points per unit of weight: with 64, each server's share of the ring is within about
    /// ±25 % of its weight's (the bound evens the rest out).
    package static let pointsPerWeight = 64

    package let balanceFactor: Double
    private let keyless = RoundRobin()
    /// The ring: sorted points, and the index of the server owning each.
    private var points: [UInt64] = []
    private var owners: [Int] = []
    /// What the ring was built from, to rebuild it when the servers or their weights change.
    private var builtFor: [(server: ObjectIdentifier, points: Int)] = []
    /// Scratch for one walk: which servers were seen.
    private var seen: [Bool] = []

    package init(balanceFactor: Double = 1.25) {
        self.balanceFactor = balanceFactor
    }

    package func pick(from servers: [BalancedServer], excluding excluded: ServerIndexSet) -> Int? {
        keyless.pick(from: servers, excluding: excluded)
    }

    package func pick(from servers: [BalancedServer], excluding excluded: ServerIndexSet, hashKey: UInt64?) -> Int? {
        guard let hashKey else { return keyless.pick(from: servers, excluding: excluded) }
        rebuildIfNeeded(servers)
        guard !points.isEmpty else { return nil }
        return walk(servers, excluded: excluded, key: hashKey, tier: .weighted)
            ?? walk(servers, excluded: excluded, key: hashKey, tier: .backup)
    }

    /// The server owning `key` on a ring of `servers` with none excluded and no load bound:
    /// where the key lives (for tests and the key movement measurement).
    package func owner(of key: UInt64, in servers: [BalancedServer]) -> Int? {
        rebuildIfNeeded(servers)
        guard !points.isEmpty else { return nil }
        return owners[firstPoint(atOrAfter: key)]
    }

    // MARK: The walk

    private func walk(_ servers: [BalancedServer], excluded: ServerIndexSet, key: UInt64, tier: WeightTier) -> Int? {
        // The tier's eligible servers, their weights and requests in flight, for the bound.
        var totalWeight = 0
        var totalInFlight = 0
        for (index, server) in servers.enumerated() where server.isEligible(at: index, excluding: excluded) {
            let weight = server.effectiveWeight
            guard tier.includes(weight: weight) else { continue }
            totalWeight += tier.effectiveWeight(weight)
            totalInFlight += server.inFlight
        }
        guard totalWeight > 0 else { return nil }
        for index in seen.indices { seen[index] = false }
        var remaining = servers.count
        var firstEligible: Int?
        var position = firstPoint(atOrAfter: key)
        for _ in 0..<points.count {
            let index = owners[position]
            position += 1
            if position == points.count { position = 0 }
            guard !seen[index] else { continue }
            seen[index] = true
            remaining -= 1
            let server = servers[index]
            let weight = server.effectiveWeight
            if tier.includes(weight: weight), server.isEligible(at: index, excluding: excluded) {
                if balanceFactor == 0 { return index }
                // Room for this request: in flight + 1 ≤ factor × (all in flight + 1) × share.
                let share = Double(tier.effectiveWeight(weight)) / Double(totalWeight)
                let capacity = (balanceFactor * Double(totalInFlight + 1) * share).rounded(.up)
                if Double(server.inFlight + 1) <= capacity { return index }
                if firstEligible == nil { firstEligible = index }
            }
            if remaining == 0 { break }
        }
        return firstEligible
    }

    /// A server's points: `pointsPerWeight` per unit of weight (a backup's as weight 1). While a
    /// slow start ramps the server, a share of them in steps of a tenth, so the ring is rebuilt
    /// a few times per ramp, not at every step; the points a server has are the first of its
    /// full set, so the keys it regains are the ones it had.
    private static func pointCount(_ server: BalancedServer) -> Int {
        let full = pointsPerWeight * max(1, server.weight)
        guard let percent = server.rampPercent else { return full }
        return max(1, full * (percent / 10) / 10)
    }

    /// The index of the first point at or after `key`, wrapping to the first point.
    private func firstPoint(atOrAfter key: UInt64) -> Int {
        var low = 0
        var high = points.count
        while low < high {
            let middle = (low + high) / 2
            if points[middle] < key { low = middle + 1 } else { high = middle }
        }
        return low == points.count ? 0 : low
    }

    // MARK: The ring

    private func rebuildIfNeeded(_ servers: [BalancedServer]) {
        // Checked on every pick, in place (no array built per request).
        if servers.count == builtFor.count,
            !zip(servers, builtFor).contains(where: { ObjectIdentifier($0) != $1.server || Self.pointCount($0) != $1.points })
        {
            return
        }
        builtFor = servers.map { (server: ObjectIdentifier($0), points: Self.pointCount($0)) }
        var ring: [(point: UInt64, owner: Int)] = []
        for (index, server) in servers.enumerated() {
            let count = builtFor[index].points
            ring.reserveCapacity(ring.count + count)
            for number in 0..<count {
                ring.append((StableHash.of("\(server.name)#\(number)"), index))
            }
        }
        // Ties (two points equal to the bit) go to the lower index, the same on every loop.
        ring.sort { $0.point != $1.point ? $0.point < $1.point : $0.owner < $1.owner }
        points = ring.map(\.point)
        owners = ring.map(\.owner)
        seen = Array(repeating: false, count: servers.count)
    }
}

/// A hash that is the same in every process (Swift's `Hasher` is seeded per process): FNV-1a
/// over the bytes, then SplitMix64's finalizer, which spreads keys that differ in a few bits
/// (addresses, counters) over the whole ring.
package enum StableHash {
    package static func of(_ text: String) -> UInt64 {
        of(bytes: text.utf8)
    }

    package static func of(bytes: some Sequence<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        hash ^= hash >> 30
        hash &*= 0xbf58_476d_1ce4_e5b9
        hash ^= hash >> 27
        hash &*= 0x94d0_49bb_1331_11eb
        hash ^= hash >> 31
        return hash
    }
}
