@testable import FulcrumBalancing

/// Servers named "s0", "s1", … with the given weights.
func makeServers(weights: [Int]) -> [BalancedServer] {
    weights.enumerated().map { BalancedServer(name: "s\($0.offset)", weight: $0.element) }
}

/// `count` servers of weight 1.
func makeServers(count: Int) -> [BalancedServer] {
    makeServers(weights: Array(repeating: 1, count: count))
}

extension BalancedServer {
    /// Marks `count` requests as started.
    func startRequests(_ count: Int) {
        for _ in 0..<count { requestStarted() }
    }
}

extension LoadBalancingAlgorithm {
    /// The next `count` picks, `nil`s included.
    func picks(
        _ count: Int,
        from servers: [BalancedServer],
        excluding excluded: ServerIndexSet = .none
    ) -> [Int?] {
        (0..<count).map { _ in pick(from: servers, excluding: excluded) }
    }

    /// How often each server index is picked in `count` picks (all picks must succeed).
    func pickCounts(
        _ count: Int,
        from servers: [BalancedServer],
        excluding excluded: ServerIndexSet = .none
    ) -> [Int] {
        var counts = Array(repeating: 0, count: servers.count)
        for _ in 0..<count {
            if let index = pick(from: servers, excluding: excluded) { counts[index] += 1 }
        }
        return counts
    }
}
