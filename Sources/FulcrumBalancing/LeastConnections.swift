import FulcrumConfig

/// Weighted least connections: the eligible server with the fewest requests in flight per
/// unit of weight.
///
/// For backends whose requests vary a lot in duration (slow queries, streaming), where
/// rotation would pile requests onto a server still busy with long ones. A server with
/// weight 2 is considered as loaded with 2 requests in flight as a weight-1 server with 1.
/// In-flight counts are shared by all event loops (`BalancedServer.inFlight`), so every
/// loop sees the load the others put on a server.
///
/// Ties — the normal case on a lightly loaded backend, where everything is idle — are broken
/// round robin: the scan starts after the previously picked server and the first of the
/// equally loaded servers wins, so equal servers share the load rather than the lowest index
/// taking every request.
///
/// Weight-0 servers are used only when no eligible server has a positive weight; then the
/// one with the fewest requests in flight wins, ties again broken round robin.
///
/// Not thread-safe: one instance per event loop.
package final class LeastConnections: LoadBalancingAlgorithm {
    /// Where the next scan starts: just after the last pick. May be out of range after the
    /// server list shrank; `pick` wraps it.
    private var nextIndex = 0

    package init() {}

    package var name: AlgorithmName { .leastConnections }

    package func pick(from servers: [BalancedServer], excluding excluded: ServerIndexSet) -> Int? {
        let count = servers.count
        guard count > 0 else { return nil }

        // One pass keeps the best weighted server and the best backup side by side, so the
        // backups cost nothing extra in the common case.
        var best = -1
        var bestLoad = ServerLoad(inFlight: 0, weight: 1)
        var bestBackup = -1
        var bestBackupInFlight = 0
        var index = nextIndex < count ? nextIndex : 0
        for _ in 0..<count {
            let server = servers[index]
            if server.isEligible(at: index, excluding: excluded) {
                let weight = server.effectiveWeight
                let inFlight = server.inFlight
                if weight > 0 {
                    let load = ServerLoad(inFlight: inFlight, weight: weight)
                    // Strictly less: among equals the first in scan order wins.
                    if best < 0 || load.isLess(than: bestLoad) {
                        best = index
                        bestLoad = load
                    }
                } else if bestBackup < 0 || inFlight < bestBackupInFlight {
                    bestBackup = index
                    bestBackupInFlight = inFlight
                }
            }
            index = index + 1 == count ? 0 : index + 1
        }

        let picked = best >= 0 ? best : bestBackup
        guard picked >= 0 else { return nil }
        nextIndex = picked + 1 == count ? 0 : picked + 1
        return picked
    }
}

// Per-event-loop state without synchronisation: must not cross threads.
@available(*, unavailable)
extension LeastConnections: Sendable {}
