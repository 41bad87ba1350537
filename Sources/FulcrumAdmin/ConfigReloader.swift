import Foundation
import FulcrumConfig
import FulcrumProxy
import FulcrumSystemd
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import UnixSignals

/// Keeps the running proxy and its configuration file in step.
///
/// Three triggers apply a configuration: SIGHUP and a change to the file (both re-read the
/// file), and the admin API (a whole new configuration, or an edit of the running one). Each
/// goes read → validate → apply, where applying is `ProxyControl.reload(to:)` (diff, then
/// publish atomically). An invalid configuration is logged with every error and changes
/// nothing. With `writeback`, what the API applied is written to the file (atomically, the
/// previous version kept as `.bak`), so a restart keeps it.
package final class ConfigReloader: Sendable {
    /// What asked for a reload (for the log).
    package enum Trigger: String, Sendable {
        case signal = "SIGHUP"
        case fileChange = "file change"
        case api = "admin API"
    }

    /// Reloads so far, by outcome.
    package struct Counts: Sendable, Equatable {
        package var succeeded = 0
        package var failed = 0

        package init(succeeded: Int = 0, failed: Int = 0) {
            self.succeeded = succeeded
            self.failed = failed
        }
    }

    /// The configuration file (nil: the proxy was not started from one; only the API reloads).
    package let path: String?
    private let proxy: any ProxyControl
    private let writeback: Bool
    private let logger: Logger
    /// Told when a reload begins and ends (`Type=notify` under systemd).
    private let serviceManager: ServiceManagerNotifier?
    /// One reload (with its write-back) at a time, so an older configuration is never written
    /// over a newer one.
    private let gate = SerialAsyncGate()
    /// The file's contents as last read or written: the watcher acts only on something else.
    private let knownContents: NIOLockedValueBox<Data?>
    private let counts = NIOLockedValueBox(Counts())

    package init(
        proxy: any ProxyControl,
        path: String?,
        writeback: Bool,
        logger: Logger,
        serviceManager: ServiceManagerNotifier? = nil
    ) {
        self.proxy = proxy
        self.serviceManager = serviceManager
        self.path = path
        self.writeback = writeback && path != nil
        self.logger = logger
        self.knownContents = NIOLockedValueBox(path.flatMap { FileManager.default.contents(atPath: $0) })
    }

    package var reloadCounts: Counts { counts.withLockedValue { $0 } }

    /// Whether changes made through the API are written to the configuration file.
    package var writesBack: Bool { writeback }

    /// What relative paths in a configuration sent over the API resolve against: the file's
    /// directory (nil without a file: the working directory).
    package var baseDirectory: String? {
        path.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path }
    }

    /// Re-reads the file and applies it; logs the outcome. False when it is invalid or cannot
    /// be applied (the running configuration stays).
    @discardableResult
    package func reloadFile(trigger: Trigger) async -> Bool {
        guard let path else { return false }
        do {
            return try await gate.run {
                knownContents.withLockedValue { $0 = FileManager.default.contents(atPath: path) }
                let config: Config
                do throws(ConfigErrors) {
                    config = try ConfigLoader.load(contentsOfFile: path)
                } catch {
                    record(succeeded: false)
                    logger.error("reload (\(trigger.rawValue)) refused: \(path) has \(error.errors.count) error(s); the running configuration stays")
                    for problem in error.errors { logger.error("  \(problem)") }
                    return false
                }
                _ = try await reload(to: config, trigger: trigger)
                return true
            }
        } catch {
            return false
        }
    }

    /// Applies `config` (validated by the caller) and writes it back when configured.
    ///
    /// - Throws: `StartupError` when it cannot be applied (nothing changed then).
    @discardableResult
    package func apply(_ config: Config) async throws -> ReloadOutcome {
        try await gate.run {
            let summary = try await reload(to: config, trigger: .api)
            return writeBack(config, summary: summary)
        }
    }

    /// Loads `yaml` (a whole configuration, YAML or JSON) with relative paths resolved against
    /// the file's directory, applies it, and writes it back when configured.
    ///
    /// - Throws: `ConfigErrors` when it is invalid (counted as a failed reload), `StartupError`
    ///   when it cannot be applied; nothing changed then.
    @discardableResult
    package func apply(yaml: String, sourceName: String) async throws -> ReloadOutcome {
        let config: Config
        do throws(ConfigErrors) {
            config = try ConfigLoader.load(yaml: yaml, sourceName: sourceName, baseDirectory: baseDirectory)
        } catch {
            record(succeeded: false)
            logger.error("reload (\(Trigger.api.rawValue)) refused: \(error.errors.count) error(s); the running configuration stays")
            throw error
        }
        return try await apply(config)
    }

    /// Applies `edit` to the running configuration, validated exactly as a file would be
    /// (errors name the path in the document, e.g. `backends[0].servers[2].weight`), and
    /// writes the result back when configured.
    ///
    /// - Throws: `ConfigErrors` when the edited configuration is invalid, `StartupError` when
    ///   it cannot be applied, or whatever `edit` throws; nothing changed then.
    @discardableResult
    package func change(_ edit: (Config) throws -> Config) async throws -> ReloadOutcome {
        try await gate.run {
            let edited = try edit(proxy.config)
            let config = try ConfigLoader.load(yaml: ConfigRenderer.yaml(edited), sourceName: "the changed configuration")
            let summary = try await reload(to: config, trigger: .api)
            return writeBack(config, summary: summary)
        }
    }

    private func reload(to config: Config, trigger: Trigger) async throws -> ReloadSummary {
        let running = proxy.config
        // Under systemd: the unit shows "reloading" until READY=1 follows, whatever the
        // outcome (and with Type=notify-reload, `systemctl reload` waits for it).
        serviceManager?.notify(.reloading)
        defer { serviceManager?.notify(.ready) }
        do {
            let summary = try await proxy.reload(to: config)
            record(succeeded: true)
            logger.notice("reload (\(trigger.rawValue)): \(summary)")
            if config.global != running.global {
                logger.warning(
                    "reload (\(trigger.rawValue)): changes under global (workers, log, admin, grace_period, store) take effect at the next start"
                )
            }
            return summary
        } catch {
            record(succeeded: false)
            logger.error("reload (\(trigger.rawValue)) failed: \(error); the running configuration stays")
            throw error
        }
    }

    /// Writes `config` to the file when write-back is on. A failure to write is reported in
    /// the outcome, not thrown: the configuration is applied by then, and saying otherwise
    /// would be false.
    private func writeBack(_ config: Config, summary: ReloadSummary) -> ReloadOutcome {
        guard writeback, summary.changed, let path else { return ReloadOutcome(summary: summary) }
        let text = ConfigRenderer.yaml(config)
        do {
            try ConfigFileWriter.write(text, to: path)
        } catch {
            logger.error("configuration applied but not written back: \(error)")
            return ReloadOutcome(summary: summary, writebackError: "\(error)")
        }
        knownContents.withLockedValue { $0 = Data(text.utf8) }
        logger.info("configuration written back to \(path) (previous version: \(path).bak)")
        return ReloadOutcome(summary: summary, writtenTo: path)
    }

    private func record(succeeded: Bool) {
        counts.withLockedValue { counts in
            if succeeded {
                counts.succeeded += 1
            } else {
                counts.failed += 1
            }
        }
    }

    // MARK: Triggers

    /// Reloads whenever the file's contents change (checked every `interval`), until cancelled.
    /// Contents rather than modification times: editors and `cp` keep or coarsen those.
    package func watchFile(every interval: Duration = .seconds(1)) async {
        guard let path else { return }
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { return }
            // A file that is missing for a moment (an editor's rename dance) is not a change.
            guard let contents = FileManager.default.contents(atPath: path),
                contents != knownContents.withLockedValue({ $0 })
            else { continue }
            await reloadFile(trigger: .fileChange)
        }
    }

    /// Reloads the file on every SIGHUP, until cancelled.
    package func reloadOnHangUp() async {
        await reloadFile(on: await UnixSignalsSequence(trapping: .sighup))
    }

    /// Reloads the file on every signal of `signals` (trapping is in place once the sequence
    /// exists, so a caller can create it first and then send the signal).
    package func reloadFile(on signals: UnixSignalsSequence) async {
        for await signal in signals {
            if Task.isCancelled { return }
            logger.info("\(signal): reloading \(path ?? "the configuration")")
            await reloadFile(trigger: .signal)
        }
    }
}

/// What an API-triggered reload did.
package struct ReloadOutcome: Sendable {
    package var summary: ReloadSummary
    /// The file the configuration was written back to (nil: write-back is off, or nothing changed).
    package var writtenTo: String?
    /// Why writing back failed (the configuration is applied nonetheless).
    package var writebackError: String?
}

/// The reload triggers of a proxy started from a file — SIGHUP and, unless turned off, file
/// watching — as a swift-service-lifecycle service that ends on graceful shutdown.
package struct ConfigReloadService: Service {
    let reloader: ConfigReloader
    let watchesFile: Bool
    let watchInterval: Duration

    package init(reloader: ConfigReloader, watchesFile: Bool = true, watchInterval: Duration = .seconds(1)) {
        self.reloader = reloader
        self.watchesFile = watchesFile
        self.watchInterval = watchInterval
    }

    package func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await reloader.reloadOnHangUp() }
                if watchesFile {
                    group.addTask { await reloader.watchFile(every: watchInterval) }
                }
                await group.waitForAll()
            }
        }
    }
}
