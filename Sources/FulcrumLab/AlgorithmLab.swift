import AsyncHTTPClient
import FulcrumConfig
import FulcrumProxy
import FulcrumWorker
import Histogram
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The algorithm lab: runs a scenario through a real Fulcrum once per algorithm and measures
/// what clients experience.
///
/// Each run starts fresh workers in the scenario's condition and a proxy (one event loop)
/// with the algorithm under test, then drives an **open-loop** load: requests start at a
/// fixed rate whatever the responses do, and each latency is measured from the moment its
/// request was due, so a slow server cannot hide its effect by slowing the load down
/// (coordinated omission).
public enum AlgorithmLab {
    /// How hard and how long each run drives the proxy.
    public struct Load: Sendable {
        public var rate: Int
        public var duration: Duration

        public init(rate: Int = 200, duration: Duration = .seconds(20)) {
            self.rate = rate
            self.duration = duration
        }
    }

    /// The adaptive engine's settings in the lab. A run lasts seconds, not hours, so time is
    /// compressed: the engine evaluates every 100 ms (a window holds 20 requests at the
    /// default rate) and may switch every 500 ms, where production defaults are 5 s and 60 s.
    /// Every request routed by rotation to a server that just turned slow shows in the tail, so
    /// the window bounds how much of the p99 a switch can save (documented in docs/lab.md).
    public static let adaptiveSettings = "{ evaluate_every: 100ms, min_switch_interval: 500ms, min_requests: 10 }"

    /// Runs `scenario` with `algorithm` under `load`.
    public static func run(scenario: LabScenario, algorithm: AlgorithmName, load: Load) async throws -> LabResult {
        let workerGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let proxyGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var workers: [WorkerServer] = []
        var proxy: ProxyServer?
        var client: HTTPClient?
        do {
            for (index, behaviour) in scenario.workers.enumerated() {
                workers.append(try await WorkerServer.start(name: "w\(index + 1)", behaviour: behaviour, group: workerGroup))
            }
            var config = try ConfigLoader.load(
                yaml: configuration(scenario: scenario, algorithm: algorithm, ports: workers.map(\.port)),
                sourceName: "lab configuration"
            )
            // Any free port.
            config.frontends[0].listen = [ListenAddress(host: "127.0.0.1", port: 0)]
            var logger = Logger(label: "fulcrum.lab")
            logger.logLevel = .error
            let server = try await ProxyServer.start(config: config, group: proxyGroup, logger: logger)
            proxy = server
            var clientConfiguration = HTTPClient.Configuration()
            clientConfiguration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 1000)
            clientConfiguration.timeout = .init(connect: .seconds(2), read: .seconds(10))
            let httpClient = HTTPClient(eventLoopGroup: clientGroup, configuration: clientConfiguration)
            client = httpClient
            let samples = try await drive(
                client: httpClient,
                url: "http://127.0.0.1:\(server.listeners[0].address.port!)/work",
                load: load,
                change: scenario.change.map { [workers] change in (change.at, { workers[change.worker].update(change.behaviour) }) }
            )
            let switches = server.adaptiveSwitches(ofBackend: "lab")?.map(\.explanation) ?? []
            let result = summarize(samples, scenario: scenario, algorithm: algorithm, workerCount: workers.count, switches: switches)
            try await shutdown(client: client, proxy: proxy, workers: workers, groups: [clientGroup, proxyGroup, workerGroup])
            return result
        } catch {
            try? await shutdown(client: client, proxy: proxy, workers: workers, groups: [clientGroup, proxyGroup, workerGroup])
            throw error
        }
    }

    static func configuration(scenario: LabScenario, algorithm: AlgorithmName, ports: [Int]) -> String {
        let servers = zip(ports, scenario.weights).enumerated().map { index, server in
            "      - { name: w\(index + 1), address: \"127.0.0.1:\(server.0)\", weight: \(server.1) }"
        }.joined(separator: "\n")
        let adaptive = algorithm == .adaptive ? "\n    adaptive: \(adaptiveSettings)" : ""
        return """
            global:
              workers: 1
              log: { level: error, access: off }
            frontends:
              - name: lab
                listen: ["127.0.0.1:8080"]
                default_backend: lab
            backends:
              - name: lab
                algorithm: \(algorithm.rawValue)\(adaptive)
                retries: 2
                servers:
            \(servers)
            """
    }

    /// One request's outcome.
    struct Sample: Sendable {
        var latencyNanoseconds: Int64
        var ok: Bool
        var worker: String?
    }

    private static func drive(
        client: HTTPClient,
        url: String,
        load: Load,
        change: (at: Double, apply: @Sendable () -> Void)?
    ) async throws -> [Sample] {
        let clock = ContinuousClock()
        let seconds = Double(load.duration.components.seconds) + Double(load.duration.components.attoseconds) / 1e18
        let count = max(1, Int(seconds * Double(load.rate)))
        let interval = Duration.seconds(1) / load.rate
        let changeIndex = change.map { Int(Double(count) * $0.at) }
        let start = clock.now + .milliseconds(50)
        return try await withThrowingTaskGroup(of: Sample.self) { group in
            for index in 0..<count {
                let due = start + interval * index
                try await clock.sleep(until: due)
                if index == changeIndex { change?.apply() }
                group.addTask {
                    var request = HTTPClientRequest(url: url)
                    request.method = .GET
                    do {
                        let response = try await client.execute(request, timeout: .seconds(10))
                        _ = try await response.body.collect(upTo: 1 << 20)
                        let latency = clock.now - due
                        return Sample(
                            latencyNanoseconds: nanoseconds(latency),
                            ok: (200..<300).contains(response.status.code),
                            worker: response.headers.first(name: "X-Worker")
                        )
                    } catch {
                        return Sample(latencyNanoseconds: nanoseconds(clock.now - due), ok: false, worker: nil)
                    }
                }
            }
            var samples: [Sample] = []
            samples.reserveCapacity(count)
            for try await sample in group { samples.append(sample) }
            return samples
        }
    }

    static func summarize(_ samples: [Sample], scenario: LabScenario, algorithm: AlgorithmName, workerCount: Int, switches: [String]) -> LabResult {
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        var perServer: [String: Int] = [:]
        for index in 1...workerCount { perServer["w\(index)"] = 0 }
        var errors = 0
        for sample in samples {
            _ = histogram.record(UInt64(max(sample.latencyNanoseconds / 1000, 1)))
            if !sample.ok { errors += 1 }
            if let worker = sample.worker { perServer[worker, default: 0] += 1 }
        }
        func milliseconds(_ percentile: Double) -> Double {
            Double(histogram.valueAtPercentile(percentile)) / 1000
        }
        return LabResult(
            scenario: scenario.name,
            algorithm: algorithm.rawValue,
            requests: samples.count,
            errors: errors,
            p50Milliseconds: milliseconds(50),
            p95Milliseconds: milliseconds(95),
            p99Milliseconds: milliseconds(99),
            perServer: perServer,
            switches: switches
        )
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }

    private static func shutdown(
        client: HTTPClient?,
        proxy: ProxyServer?,
        workers: [WorkerServer],
        groups: [MultiThreadedEventLoopGroup]
    ) async throws {
        try await client?.shutdown()
        await proxy?.shutdown(gracePeriod: .seconds(1))
        for worker in workers { try await worker.shutdown() }
        for group in groups { try await group.shutdownGracefully() }
    }
}
