import ArgumentParser
import FulcrumConfig
import FulcrumProxy
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
            `global.grace_period` (default 10s), then exits 0.
            """
    )

    @Option(name: [.short, .customLong("config")], help: "The YAML configuration file.")
    var config: String

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
        try await runProxy(config: loaded, logger: logger)
    }
}

/// Runs the proxy for `config` until a graceful-shutdown signal, then drains it.
func runProxy(config: Config, logger: Logger, additionalServices: [any Service] = [], onStart: @escaping @Sendable (ProxyServer) -> Void = { _ in }) async throws {
    let threads = switch config.global.workers {
    case .auto: System.coreCount
    case .fixed(let count): count
    }
    let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
    let service = ProxyService(config: config, group: group, logger: logger, onStart: onStart)
    let serviceGroup = ServiceGroup(configuration: ServiceGroupConfiguration(
        services: [ServiceGroupConfiguration.ServiceConfiguration(
            service: service,
            successTerminationBehavior: .gracefullyShutdownGroup
        )] + additionalServices.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger
    ))
    do {
        try await serviceGroup.run()
    } catch {
        try? await group.shutdownGracefully()
        logger.error("fulcrum stopped: \(error)")
        throw ExitCode(1)
    }
    try await group.shutdownGracefully()
    logger.info("stopped")
}

/// The proxy as a swift-service-lifecycle service: start, wait for the shutdown signal, drain.
struct ProxyService: Service {
    let config: Config
    let group: MultiThreadedEventLoopGroup
    let logger: Logger
    let onStart: @Sendable (ProxyServer) -> Void

    func run() async throws {
        let server = try await ProxyServer.start(config: config, group: group, logger: logger)
        onStart(server)
        // Returns on SIGINT/SIGTERM (or throws on cancellation); either way, drain.
        try? await gracefulShutdown()
        await server.shutdown(gracePeriod: config.global.gracePeriod)
    }
}
