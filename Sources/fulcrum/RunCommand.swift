import ArgumentParser
import Foundation
import FulcrumAdmin
import FulcrumConfig
import FulcrumProxy
import FulcrumSystemd
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// `fulcrum run -c FILE`: starts the load balancer and runs until SIGINT or SIGTERM.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Start the load balancer.",
        discussion: """
            Loads and validates the configuration (nothing starts when it is invalid), binds \
            every frontend and serves until SIGINT or SIGTERM. On either signal it stops \
            accepting connections, lets requests in flight finish for at most \
            `global.grace_period` (default 10s), then exits 0. On SIGHUP, and when the file's \
            contents change, it reloads the file without dropping a connection; an invalid \
            file is logged with every error and the running configuration stays.
            """
    )

    @Option(name: [.short, .customLong("config")], help: "The YAML configuration file.")
    var config: String

    @Flag(name: .customLong("no-watch"), help: "Do not reload when the configuration file changes (SIGHUP still reloads).")
    var noWatch = false

    func run() async throws {
        let loaded: Config
        do {
            loaded = try ConfigLoader.load(contentsOfFile: config)
        } catch {
            printError("\(config): \(error.errors.count) error\(error.errors.count == 1 ? "" : "s"); not starting")
            for problem in error.errors { printError("  \(problem)") }
            throw ExitCode(1)
        }
        let logger = makeLogger(label: "fulcrum", level: loaded.global.log.level)
        let path = URL(fileURLWithPath: config).standardizedFileURL.path
        try await runProxy(config: loaded, logger: logger, configPath: path, watchesFile: !noWatch)
    }
}

/// Runs the proxy for `config` (and its admin API, when configured) until a graceful-shutdown
/// signal, then drains it. With `configPath`, SIGHUP (and, with `watchesFile`, a change to
/// the file) reloads it.
func runProxy(config: Config, logger: Logger, configPath: String? = nil, watchesFile: Bool = true) async throws {
    let threads =
        switch config.global.workers {
        case .auto: System.coreCount
        case .fixed(let count): count
        }
    // Read before anything starts: a missing token is a configuration error.
    let adminToken: String?
    do {
        adminToken = try config.global.admin.flatMap(readAdminToken)
    } catch {
        logger.error("\(error)")
        throw ExitCode(1)
    }
    if let raised = DescriptorLimit.raiseToHardLimit() {
        logger.info("descriptor limit raised", metadata: ["from": "\(raised.from)", "to": "\(raised.to)"])
    }
    let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
    let metrics = MetricsExporter()
    let server: ProxyServer
    do {
        server = try await ProxyServer.start(config: config, group: group, logger: logger, metricsFactory: metrics.factory)
    } catch {
        try? await group.shutdownGracefully()
        logger.error("fulcrum stopped: \(error)")
        throw ExitCode(1)
    }
    var services = [
        ServiceGroupConfiguration.ServiceConfiguration(
            service: server,
            successTerminationBehavior: .gracefullyShutdownGroup
        )
    ]
    let serviceManager = ServiceManagerNotifier(environment: ProcessInfo.processInfo.environment)
    let reloader = ConfigReloader(
        proxy: server,
        path: configPath,
        writeback: config.global.admin?.configWriteback ?? false,
        logger: logger,
        serviceManager: serviceManager
    )
    if configPath != nil {
        services.append(.init(service: ConfigReloadService(reloader: reloader, watchesFile: watchesFile)))
    }
    if let admin = config.global.admin {
        services.append(
            .init(
                service: AdminServer(config: admin, token: adminToken, proxy: server, reloader: reloader, metrics: metrics, logger: logger) { port in
                    logger.info("admin API listening", metadata: ["address": "\(admin.listen.host):\(port)"])
                }
            )
        )
    }
    if let serviceManager {
        // Last, so it is told of a shutdown first; the frontends listen already.
        let status = "serving \(config.frontends.count) frontend(s), \(config.backends.count) backend(s)"
        services.append(.init(service: ServiceManagerNotifierService(notifier: serviceManager, status: status)))
    }
    let serviceGroup = ServiceGroup(
        configuration: ServiceGroupConfiguration(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
    )
    do {
        try await serviceGroup.run()
    } catch {
        await server.shutdown(gracePeriod: .zero)
        try? await group.shutdownGracefully()
        logger.error("fulcrum stopped: \(error)")
        throw ExitCode(1)
    }
    try await group.shutdownGracefully()
    logger.info("stopped")
}

/// The admin token from the environment variable `token_env` names.
private func readAdminToken(_ admin: AdminConfig) throws -> String? {
    guard let variable = admin.tokenEnvironmentVariable else { return nil }
    guard let token = ProcessInfo.processInfo.environment[variable], !token.isEmpty else {
        throw AdminTokenMissing(variable: variable)
    }
    return token
}

private struct AdminTokenMissing: Error, CustomStringConvertible {
    let variable: String
    var description: String {
        "global.admin.token_env names \(variable), which is not set (or empty); not starting"
    }
}
