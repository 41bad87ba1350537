import FulcrumConfig
import Logging

extension ProxyServer {
    /// How often the follower looks for names that fell due (each has its own
    /// `resolve_every`, 1s at the least).
    static let discoveryTick = Duration.seconds(1)

    /// Starts asking DNS again as the servers' names fall due, until shutdown.
    func startFollowingDNS() {
        let task = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.discoveryTick)
                guard let self, lifecycleState == .running else { return }
                await followDNS()
            }
        }
        followingDNS.withLockedValue { $0 = task }
    }

    /// Asks the names that are due; when their addresses changed, applies them as a reload
    /// does: servers at new addresses join (cold, with `slow_start`), servers at addresses gone
    /// finish what they have and leave, the others keep their state.
    func followDNS() async {
        let current = running.withLockedValue { $0 }
        let declared = current.snapshot.declared
        let discovered = await discovery.refresh(declared, last: current.discovered)
        guard discovered != current.discovered else { return }
        do {
            try await reloads.run {
                let current = running.withLockedValue { $0 }
                // A reload came first: it asked every name afresh.
                guard current.snapshot.declared == declared, lifecycleState == .running else { return }
                let summary = ReloadSummary(from: current.snapshot.config, to: declared.expandingServers(with: discovered))
                guard summary.changed else {
                    // New answers that give the same servers: nothing to install.
                    running.withLockedValue { $0.discovered = discovered }
                    return
                }
                try await install(declared, discovered: discovered, over: current)
                logger.info("servers follow DNS", metadata: ["added": "\(summary.serversAdded)", "removed": "\(summary.serversRemoved)"])
            }
        } catch {
            logger.warning("the servers DNS gave could not be applied; serving the ones before", metadata: ["reason": "\(error)"])
        }
    }
}
