import ArgumentParser
import Foundation
import FulcrumConfig
import FulcrumProxy
import FulcrumWorker
import NIOPosix

/// `fulcrum demo`: three workers and a load balancer in one process, ready to curl.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a self-contained demo: three workers behind a load balancer on 127.0.0.1:8080.",
        discussion: """
            Starts three worker servers on free local ports (worker 3 is slower), and the load \
            balancer from a built-in configuration (printed at start), with the admin API and \
            the live dashboard on 127.0.0.1:9090 (a token for its buttons is made for the run \
            and printed). Stop with Ctrl-C.
            """
    )

    @Option(help: "Port of the load balancer.")
    var port = 8080

    @Option(help: "Port of the admin API and the dashboard.")
    var adminPort = 9090

    @Option(help: "Balancing algorithm: \(AlgorithmName.allCases.map(\.rawValue).joined(separator: " | ")).")
    var algorithm = "round_robin"

    func validate() throws {
        guard AlgorithmName(rawValue: algorithm) != nil else {
            throw ValidationError("unknown algorithm \"\(algorithm)\"; use one of \(AlgorithmName.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() async throws {
        let workerGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var workers: [WorkerServer] = []
        for (index, delay) in [10, 10, 40].enumerated() {
            workers.append(
                try await WorkerServer.start(
                    name: "worker-\(index + 1)",
                    behaviour: WorkerBehaviour(delayMilliseconds: delay, jitterMilliseconds: 2),
                    group: workerGroup
                )
            )
        }
        // A token for this run only, so the dashboard's buttons work (changes need one).
        let token = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        setenv(Self.tokenVariable, token, 1)
        let yaml = Self.configuration(port: port, adminPort: adminPort, algorithm: algorithm, workerPorts: workers.map(\.port))
        let config: Config
        do {
            config = try ConfigLoader.load(yaml: yaml, sourceName: "built-in demo configuration")
        } catch {
            printError("the built-in demo configuration is invalid:\n\(error)")
            throw ExitCode(1)
        }
        print(
            """
            Fulcrum demo — configuration:

            \(yaml)
            Load balancer: http://127.0.0.1:\(port)  (\(algorithm) over \(workers.count) workers; worker-3 takes 40 ms, the others 10 ms)
            Dashboard:     http://127.0.0.1:\(adminPort)/  (admin token for its buttons: \(token))

            Try:
              curl -i http://127.0.0.1:\(port)/work
              for i in 1 2 3 4 5 6; do curl -s http://127.0.0.1:\(port)/work; done
              curl -s http://127.0.0.1:\(port)/echo
              curl -s -H 'Accept: application/json' http://127.0.0.1:\(port)/admin   # denied by a rule: 403 page
              curl -s -X POST http://127.0.0.1:\(workers[1].port)/control -d '{"error_rate": 1}'   # make worker-2 fail
              curl -s http://127.0.0.1:\(adminPort)/metrics | grep fulcrum_requests_total
              curl -s -X PATCH http://127.0.0.1:\(adminPort)/api/backends/workers/servers/worker-3 \\
                   -H "Authorization: Bearer \(token)" -d '{"state": "drain"}'

            Press Ctrl-C to stop.

            """
        )
        // Shown now even when standard output is a pipe or a file (and not a terminal).
        fflush(nil)
        let logger = makeLogger(label: "fulcrum", level: config.global.log.level)
        try await runProxy(config: config, logger: logger)
        for worker in workers { try? await worker.shutdown() }
        try await workerGroup.shutdownGracefully()
    }

    /// The environment variable the demo's admin token is passed in.
    static let tokenVariable = "FULCRUM_DEMO_ADMIN_TOKEN"

    static func configuration(port: Int, adminPort: Int, algorithm: String, workerPorts: [Int]) -> String {
        let servers = workerPorts.enumerated().map { index, workerPort in
            "      - { name: worker-\(index + 1), address: \"127.0.0.1:\(workerPort)\" }"
        }.joined(separator: "\n")
        return """
            global:
              workers: 1          # one event loop, so the round-robin order is exact
              log: { level: info, access: combined }
              admin: { listen: "127.0.0.1:\(adminPort)", token_env: \(tokenVariable) }
            frontends:
              - name: demo
                listen: ["127.0.0.1:\(port)"]
                acls:
                  admin: { path_prefix: /admin }
                rules:
                  - { deny: 403, if: [admin] }
                default_backend: workers
            backends:
              - name: workers
                algorithm: \(algorithm)
                retries: 2
                timeouts: { connect: 1s, response: 10s }
                servers:
            \(servers)

            """
    }
}
