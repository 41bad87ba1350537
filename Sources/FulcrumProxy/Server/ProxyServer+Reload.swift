import FulcrumACME
import FulcrumConfig
import Logging
import NIOCore
import NIOPosix

extension ProxyServer {
    // MARK: Reload

    /// Replaces the running configuration with `config` without dropping a connection.
    ///
    /// Builds the new snapshot (resolving servers, loading certificates, binding new
    /// addresses) before touching anything, so a configuration that cannot be applied throws
    /// and leaves the running one as it was. Then: listeners whose address is gone stop
    /// accepting and their connections close once their request in flight is answered; every
    /// event loop switches to the new snapshot (a connection picks it up at its next request;
    /// a request in flight finishes on the one it started with); kept listeners serve new
    /// connections with the new frontend settings; new listeners start accepting. Servers with
    /// the same backend, name and address keep their pools, health, counters and in-flight
    /// counts; removed servers get no new requests, finish the ones they have, and their idle
    /// connections close. Reloads run one at a time.
    ///
    /// `global.workers`, `global.log` and `global.admin` are read at start only.
    @discardableResult
    package func reload(to config: Config) async throws -> ReloadSummary {
        try await reloads.run { try await apply(config) }
    }

    private func apply(_ config: Config) async throws -> ReloadSummary {
        guard lifecycleState == .running else { throw StartupError.notRunning }
        let current = running.withLockedValue { $0 }
        let summary = ReloadSummary(from: current.snapshot.declared, to: config)
        guard summary.changed else { return summary }
        // Names are asked afresh; one that fails keeps the addresses it had.
        let discovered = try await discovery.resolveAll(config, last: current.discovered)
        try await install(config, discovered: discovered, over: current)
        // (Whoever asked for the reload logs it, with what triggered it.)
        logger.debug("configuration reloaded: \(summary)")
        return summary
    }

    /// Serves `declared`, with its names replaced by what `discovered` says, in place of
    /// `current`: see `reload(to:)`. Runs inside `reloads`.
    func install(_ declared: Config, discovered: DiscoveredServers, over current: Running) async throws {
        let config = declared.expandingServers(with: discovered)
        // Everything that can fail, first; what blocks (certificate files) on the thread pool
        // for blocking work.
        let (logger, pollInterval, challenges) = (logger, certificatePollInterval, challenges)
        let (snapshot, certificateStores) = try await NIOThreadPool.singleton.runIfActive {
            let snapshot = try RuntimeSnapshot(config: config, declared: declared, previous: current.snapshot, challenges: challenges)
            let stores = try Self.makeCertificateStores(
                for: config,
                reusing: current.certificateStores,
                challenges: challenges,
                logger: logger,
                pollInterval: pollInterval
            )
            return (snapshot, stores)
        }
        let bound = try await Self.bindListeners(
            for: config,
            keeping: current.listeners,
            certificateStores: certificateStores,
            limits: connectionLimits.update(to: config),
            events: listenerEvents,
            lot: lot,
            group: group,
            contexts: contexts,
            logger: logger
        )

        // Listeners that are gone: stop accepting, and let their connections finish what they
        // started before the loops stop knowing their frontend.
        for listener in current.listeners where !bound.kept.contains(where: { $0 === listener }) {
            retire(listener)
        }
        let choices = keepAlgorithmChoices(from: current.snapshot, to: snapshot)
        for loop in loops {
            try await loop.eventLoop.submit { loop.value.install(snapshot, algorithmChoices: choices) }.get()
        }
        for (listener, binding) in bound.rebound { listener.binding = binding }
        for listener in bound.added { try await listener.startAccepting() }
        for (name, store) in current.certificateStores where certificateStores[name] !== store {
            store.stopWatching()
        }
        for (name, store) in certificateStores where current.certificateStores[name] !== store {
            store.startWatching()
        }
        running.withLockedValue {
            $0 = Running(
                snapshot: snapshot,
                listeners: bound.kept + bound.added,
                certificateStores: certificateStores,
                discovered: discovered
            )
        }
        adaptive.update(to: snapshot)
        slowStart.update(to: snapshot)
        healthChecker.update(to: snapshot)
    }

    /// Stops a listener accepting; its connections close once their request in flight is done.
    private func retire(_ listener: ProxyListener) {
        let helper = listener.quiescing
        retiredHelpers.withLockedValue { $0.append(helper) }
        helper.initiateShutdown(promise: nil)
        listener.parking.close(drained: nil)
        logger.info(
            "listener closed",
            metadata: ["frontend": "\(listener.binding.frontend)", "address": "\(listener.configuredAddress)"]
        )
    }

    /// Certificate stores for `config`'s TLS frontends; a frontend whose TLS settings did not
    /// change keeps its store (loaded and watched already).
    static func makeCertificateStores(
        for config: Config,
        reusing existing: [String: CertificateStore],
        challenges: HTTP01Challenges,
        logger: Logger,
        pollInterval: Duration
    ) throws -> [String: CertificateStore] {
        var stores: [String: CertificateStore] = [:]
        for frontend in config.frontends {
            guard let tls = frontend.tls else { continue }
            if let store = existing[frontend.name], store.tls == tls {
                stores[frontend.name] = store
            } else {
                stores[frontend.name] = try CertificateStore(
                    frontend: frontend.name,
                    tls: tls,
                    challenges: challenges,
                    logger: logger,
                    pollInterval: pollInterval
                )
            }
        }
        return stores
    }

    /// Listeners for `config`: an address already bound in `existing` keeps its socket (and
    /// gets the frontend's current settings as its new binding); others are bound now, not
    /// accepting yet. On failure, closes what it bound and throws.
    static func bindListeners(
        for config: Config,
        keeping existing: [ProxyListener],
        certificateStores: [String: CertificateStore],
        limits: [String: ConnectionLimits],
        events: ListenerEventCounts,
        lot: ParkingLot,
        group: any EventLoopGroup,
        contexts: LoopContextTable,
        logger: Logger
    ) async throws -> (added: [ProxyListener], kept: [ProxyListener], rebound: [(ProxyListener, ProxyListener.Binding)]) {
        var added: [ProxyListener] = []
        var kept: [ProxyListener] = []
        var rebound: [(ProxyListener, ProxyListener.Binding)] = []
        do {
            for frontend in config.frontends {
                let binding = ProxyListener.Binding(
                    frontend: frontend,
                    certificates: certificateStores[frontend.name],
                    limits: limits[frontend.name]!
                )
                for address in frontend.listen {
                    if let listener = existing.first(where: { $0.configuredAddress == address }),
                        !kept.contains(where: { $0 === listener })
                    {
                        kept.append(listener)
                        rebound.append((listener, binding))
                        continue
                    }
                    let listener: ProxyListener
                    do {
                        listener = try await ProxyListener.bind(
                            address: address,
                            binding: binding,
                            events: events,
                            lot: lot,
                            group: group,
                            contexts: contexts,
                            logger: logger
                        )
                    } catch {
                        throw StartupError.cannotListen(
                            frontend: frontend.name,
                            address: address.description,
                            reason: describeNetworkError(error)
                        )
                    }
                    added.append(listener)
                    logger.info("listening", metadata: ["frontend": "\(frontend.name)", "address": "\(address)"])
                }
            }
        } catch {
            for listener in added { try? await listener.channel.close() }
            throw error
        }
        return (added, kept, rebound)
    }
}
