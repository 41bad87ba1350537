import AsyncHTTPClient
import FulcrumConfig
import FulcrumProxy
import FulcrumWorker
import Histogram
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The algorithm lab: runs a scenario through a real Fulcrum once per algorithm and measures
/// what clients experience, overall and second by second.
///
/// Each run starts fresh workers in the scenario's condition and a proxy (one event loop)
/// with the algorithm under test, then drives an **open-loop** load: requests start at a
/// fixed rate whatever the responses do, and each latency is measured from the moment its
/// request was due, so a slow server cannot hide its effect by slowing the load down
/// (coordinated omission).
package enum AlgorithmLab {
    /// How time passes for the adaptive engine in the lab.
    package enum Mode: String, Sendable {
        /// Compressed time: the engine evaluates every 100 ms and may switch every 500 ms, so a
        /// run of seconds shows what production settings show over minutes. For quick runs.
        case compressed
        /// The production defaults (`evaluate_every: 5s`, `min_switch_interval: 60s`,
        /// `min_requests: 50`), in real time: runs of minutes.
        case realtime

        /// The backend's `adaptive:` settings (nil: the defaults).
        package var adaptiveSettings: String? {
            switch self {
            case .compressed: "{ evaluate_every: 100ms, min_switch_interval: 500ms, min_requests: 10 }"
            case .realtime: nil
            }
        }

        /// How the settings read in a banner.
        package var settingsDescription: String {
            adaptiveSettings ?? "the production defaults { evaluate_every: 5s, min_switch_interval: 60s, min_requests: 50 }"
        }
    }

    /// How the proxy reaches the lab's servers (`fulcrum lab --protocol`).
    package enum Upstream: String, Sendable, CaseIterable {
        /// HTTP/1.1, pooled connections.
        case http1
        /// HTTP/2 by prior knowledge: the workers speak h2c, the servers have `protocol: h2c`.
        case h2c
        /// `mode: tcp` frontend and backend: byte streams, balanced per connection. Each
        /// request comes on a connection of its own (`Connection: close`), so each is balanced,
        /// as a service of short connections is.
        case tcp

        /// Whether `algorithm` can run over it (TCP has no responses to time).
        package func supports(_ algorithm: AlgorithmName) -> Bool {
            self != .tcp || algorithm.worksWithoutResponses
        }
    }

    /// How hard and how long each run drives the proxy.
    package struct Load: Sendable {
        package var rate: Int
        package var duration: Duration
        package var mode: Mode
        package var upstream: Upstream

        package init(rate: Int = 200, duration: Duration = .seconds(20), mode: Mode = .compressed, upstream: Upstream = .http1) {
            self.rate = rate
            self.duration = duration
            self.mode = mode
            self.upstream = upstream
        }
    }

    /// Runs `scenario` with `algorithm` under `load`.
    package static func run(scenario: LabScenario, algorithm: AlgorithmName, load: Load) async throws -> LabResult {
        let workerGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let proxyGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var workers: [WorkerServer] = []
        var proxy: ProxyServer?
        var client: HTTPClient?
        do {
            for (index, behaviour) in scenario.workers.enumerated() {
                workers.append(
                    try await WorkerServer.start(
                        name: "w\(index + 1)",
                        behaviour: behaviour,
                        http2: load.upstream == .h2c,
                        group: workerGroup
                    )
                )
            }
            let ports = workers.map(\.port)
            // A server that joins later is added by a reload.
            let initialPorts = scenario.joinsAt == nil ? ports : Array(ports.dropLast())
            // Compressed runs play the scenario's 180 s in their length; real-time runs keep its
            // seconds, however long they last.
            let total = seconds(load.duration)
            let scale = load.mode == .realtime ? seconds(LabScenario.realtimeDuration) : total
            func config(ports: [Int]) throws -> Config {
                var config = try ConfigLoader.load(
                    yaml: configuration(
                        scenario: scenario,
                        algorithm: algorithm,
                        ports: ports,
                        mode: load.mode,
                        upstream: load.upstream,
                        slowStartSeconds: scenario.slowStart.map { $0 * scale }
                    ),
                    sourceName: "lab configuration"
                )
                // Any free port.
                config.frontends[0].listen = [ListenAddress(host: "127.0.0.1", port: 0)]
                return config
            }
            var logger = Logger(label: "fulcrum.lab")
            logger.logLevel = .error
            let server = try await ProxyServer.start(config: config(ports: initialPorts), group: proxyGroup, logger: logger)
            proxy = server
            var clientConfiguration = HTTPClient.Configuration()
            clientConfiguration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 1000)
            clientConfiguration.timeout = .init(connect: .seconds(2), read: .seconds(10))
            let httpClient = HTTPClient(eventLoopGroup: clientGroup, configuration: clientConfiguration)
            client = httpClient
            let started = workers
            let labLogger = logger
            let joined = try config(ports: ports)
            let events = scenario.events(scale: scale, total: total).map { event in
                Event(atSeconds: event.seconds) {
                    if let change = event.change {
                        started[change.worker].update(change.behaviour)
                    } else {
                        // A join that fails would leave the run measuring two servers: say so.
                        do { try await server.reload(to: joined) } catch { labLogger.error("lab: the joining server could not be added: \(error)") }
                    }
                }
            }
            let start = ContinuousClock.now + .milliseconds(50)
            let samples = try await drive(
                client: httpClient,
                url: "http://127.0.0.1:\(server.listeners[0].address.port!)/work",
                scenario: scenario,
                load: load,
                start: start,
                events: events
            )
            let switches = server.adaptiveSwitches(ofBackend: "lab") ?? []
            var result = summarize(
                samples,
                scenario: scenario,
                algorithm: algorithm,
                workerCount: workers.count,
                switches: switches.map(\.explanation)
            )
            result.timeline = LabTimeline(
                samples: samples,
                servers: (1...workers.count).map { "w\($0)" },
                durationSeconds: Int(total.rounded(.up)),
                switches: switches.map { decision in
                    LabTimeline.Switch(
                        atSeconds: seconds(decision.time - start),
                        from: decision.from.rawValue,
                        to: decision.to.rawValue,
                        rule: decision.rule.rawValue,
                        explanation: decision.explanation
                    )
                }
            )
            result.timelineRun = 1
            try await shutdown(client: client, proxy: proxy, workers: workers, groups: [clientGroup, proxyGroup, workerGroup])
            return result
        } catch {
            try? await shutdown(client: client, proxy: proxy, workers: workers, groups: [clientGroup, proxyGroup, workerGroup])
            throw error
        }
    }

    /// Something the scenario does at a point of the run (a worker's behaviour changes, a
    /// server joins).
    struct Event: Sendable {
        var atSeconds: Double
        var apply: @Sendable () async -> Void
    }

    static func configuration(
        scenario: LabScenario,
        algorithm: AlgorithmName,
        ports: [Int],
        mode: Mode = .compressed,
        upstream: Upstream = .http1,
        slowStartSeconds: Double? = nil
    ) -> String {
        let serverProtocol = upstream == .h2c ? ", protocol: h2c" : ""
        let servers = zip(ports, scenario.weights).enumerated().map { index, server in
            "      - { name: w\(index + 1), address: \"127.0.0.1:\(server.0)\", weight: \(server.1)\(serverProtocol) }"
        }.joined(separator: "\n")
        // A TCP backend has no response to time out: the tunnel's idle timeout bounds it.
        let (tcpMode, timeouts) = upstream == .tcp ? ("\n    mode: tcp", "{ tunnel: 10s }") : ("", "{ response: 10s }")
        let adaptive = algorithm == .adaptive ? mode.adaptiveSettings.map { "\n    adaptive: \($0)" } ?? "" : ""
        // Milliseconds: a compressed run's slow start is a fraction of a second or a few.
        let slowStart = slowStartSeconds.map { "\n    slow_start: \(max(1, Int(($0 * 1000).rounded())))ms" } ?? ""
        return """
            global:
              workers: 1
              log: { level: error, access: off }
            frontends:
              - name: lab\(tcpMode)
                listen: ["127.0.0.1:8080"]
                default_backend: lab
            backends:
              - name: lab\(tcpMode)
                algorithm: \(algorithm.rawValue)\(adaptive)\(slowStart)
                retries: 2
                timeouts: \(timeouts)
                servers:
            \(servers)
            """
    }

    /// Starts requests open-loop from `start` at the scenario's rate (`load.rate` times its
    /// load multiple at each moment), runs the events when their time comes, and returns every
    /// request's outcome.
    private static func drive(
        client: HTTPClient,
        url: String,
        scenario: LabScenario,
        load: Load,
        start: ContinuousClock.Instant,
        events: [Event]
    ) async throws -> [LabTimeline.Sample] {
        let clock = ContinuousClock()
        let total = seconds(load.duration)
        // A discarding group frees each request's task as it ends (a plain group keeps every
        // finished task until its result is taken: gigabytes over a real-time run); the
        // samples go to one locked array instead.
        let samples = SampleCollector()
        samples.list.withLock { $0.reserveCapacity(Int(total * Double(load.rate) * 1.5)) }
        try await withThrowingDiscardingTaskGroup { group in
            var pending = events[...]
            var offset = 0.0
            while offset < total {
                let due = start + .nanoseconds(Int64(offset * 1e9))
                try await clock.sleep(until: due)
                while let event = pending.first, event.atSeconds <= offset {
                    pending.removeFirst()
                    group.addTask { await event.apply() }
                }
                let dueNanoseconds = Int64(offset * 1e9)
                group.addTask {
                    var request = HTTPClientRequest(url: url)
                    request.method = .GET
                    if load.upstream == .tcp { request.headers.add(name: "Connection", value: "close") }
                    let sample: LabTimeline.Sample
                    do {
                        let response = try await client.execute(request, timeout: .seconds(10))
                        _ = try await response.body.collect(upTo: 1 << 20)
                        sample = LabTimeline.Sample(
                            dueNanoseconds: dueNanoseconds,
                            latencyNanoseconds: nanoseconds(clock.now - due),
                            ok: (200..<300).contains(response.status.code),
                            worker: response.headers.first(name: "X-Worker")
                        )
                    } catch {
                        sample = LabTimeline.Sample(
                            dueNanoseconds: dueNanoseconds,
                            latencyNanoseconds: nanoseconds(clock.now - due),
                            ok: false,
                            worker: nil
                        )
                    }
                    samples.list.withLock { $0.append(sample) }
                }
                let rate = Double(load.rate) * scenario.loadMultiple(at: offset / total)
                offset += 1 / max(rate, 0.1)
            }
        }
        return samples.list.withLock { $0 }
    }

    /// The samples of a run, appended to by its request tasks.
    private final class SampleCollector: Sendable {
        let list = Mutex<[LabTimeline.Sample]>([])
    }

    static func summarize(
        _ samples: [LabTimeline.Sample],
        scenario: LabScenario,
        algorithm: AlgorithmName,
        workerCount: Int,
        switches: [String]
    ) -> LabResult {
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

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
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
