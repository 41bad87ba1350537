import ArgumentParser
import FulcrumWorker
import Logging
import NIOPosix
import ServiceLifecycle

/// `fulcrum worker`: the test/demo backend with run-time latency and error injection.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a worker server (a backend for tests, the demo and experiments).",
        discussion: """
            Endpoints: GET /health (200 "ok", or 503 when set unhealthy); GET /work (200 after \
            delay ± jitter ms, 500 at the error rate; ?delay_ms=N overrides the delay); /echo \
            (the request as JSON); POST /control with JSON {delay_ms, jitter_ms, error_rate, \
            capacity, healthy} changes behaviour at run time; with a capacity, /work requests \
            beyond it queue (first come, first served) before their delay starts; POST /sink \
            (consumes a body, returns its size and FNV-1a checksum); GET /bytes?n=N (streams N \
            bytes). Every response carries X-Worker: NAME.
            """
    )

    @Option(help: "Port to listen on.")
    var port: Int

    @Option(help: "Address to bind.")
    var host = "127.0.0.1"

    @Option(help: "Name reported in the X-Worker header (default: worker-PORT).")
    var name: String?

    @Option(name: .customLong("delay-ms"), help: "Simulated work per /work request, in milliseconds.")
    var delayMilliseconds = 10

    @Option(name: .customLong("jitter-ms"), help: "Uniform random jitter added to the delay (±), in milliseconds.")
    var jitterMilliseconds = 0

    @Option(name: .customLong("error-rate"), help: "Fraction of /work requests answered with 500 (0.0 to 1.0).")
    var errorRate = 0.0

    @Option(help: "/work requests worked on at once; the rest queue (0 = unlimited).")
    var capacity = 0

    func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("--port must be 1…65535") }
        guard delayMilliseconds >= 0, jitterMilliseconds >= 0 else { throw ValidationError("--delay-ms and --jitter-ms must not be negative") }
        guard (0...1).contains(errorRate) else { throw ValidationError("--error-rate must be between 0.0 and 1.0") }
        guard capacity >= 0 else { throw ValidationError("--capacity must not be negative") }
    }

    func run() async throws {
        let logger = makeLogger(label: "fulcrum.worker", level: .info)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let behaviour = WorkerBehaviour(
            delayMilliseconds: delayMilliseconds,
            jitterMilliseconds: jitterMilliseconds,
            errorRate: errorRate,
            capacity: capacity
        )
        let worker = try await WorkerServer.start(
            name: name ?? "worker-\(port)",
            host: host,
            port: port,
            behaviour: behaviour,
            group: group
        )
        print("worker \(worker.name) listening on http://\(host):\(worker.port)")
        try await ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [WaitForShutdown()],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        ).run()
        try await worker.shutdown()
        try await group.shutdownGracefully()
    }
}

/// A service that only waits for the graceful-shutdown signal.
struct WaitForShutdown: Service {
    func run() async throws {
        try? await gracefulShutdown()
    }
}
