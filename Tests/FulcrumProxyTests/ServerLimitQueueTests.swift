import Foundation
import FulcrumBalancing
import FulcrumConfig
import FulcrumWorker
import NIOHTTP1
import Testing

/// Server limits and the backend's queue, through a real proxy to real workers: no server
/// takes more than its limit, the requests beyond wait and are served in order, and a full
/// queue or a wait past its timeout gets 503.
@Suite("Server limits and the queue", .serialized)
struct ServerLimitQueueTests {
    static func config(_ ports: [Int], limit: String, queue: String) -> String {
        simpleConfig(ports, algorithm: "least_connections", backendTimeouts: "{ connect: 1s, response: 10s }", serverExtra: ", \(limit)")
            .replacingOccurrences(of: "algorithm: least_connections\n", with: "algorithm: least_connections\n    queue: \(queue)\n")
    }

    /// Sends `count` requests at once, `spacing` apart (so they reach the proxy in order),
    /// and returns each one's response and when it completed.
    static func burst(
        _ harness: ProxyHarness,
        count: Int,
        path: String,
        spacing: Duration = .milliseconds(15)
    )
        async throws -> [(response: CollectedResponse, completed: ContinuousClock.Instant)]
    {
        try await withThrowingTaskGroup(of: (Int, CollectedResponse, ContinuousClock.Instant).self) { group in
            for index in 0..<count {
                group.addTask {
                    try await Task.sleep(for: spacing * index)
                    let response = try await harness.send(path)
                    return (index, response, .now)
                }
            }
            var results: [(Int, CollectedResponse, ContinuousClock.Instant)] = []
            for try await result in group { results.append(result) }
            return results.sorted { $0.0 < $1.0 }.map { ($0.1, $0.2) }
        }
    }

    @Test("a queue drains in order under load: never more than the limits in flight, every request served")
    func drainsInOrder() async throws {
        let workers = Array(repeating: WorkerBehaviour(delayMilliseconds: 0), count: 2)
        let yaml: ([Int]) -> String = { Self.config($0, limit: "max_requests: 1", queue: "{ max: 20, timeout: 10s }") }
        try await withProxy(workers: workers, clientConnections: 16, yaml: yaml) { harness in
            let started = ContinuousClock.now
            let results = try await Self.burst(harness, count: 10, path: "/work?delay_ms=200")
            #expect(results.allSatisfy { $0.response.status == .ok }, "\(results.map(\.response.status))")
            // Two at a time, 200 ms each: the tenth ends after five rounds.
            #expect(ContinuousClock.now - started >= .milliseconds(950))
            // In order: a request ends no later than any sent two or more after it (two
            // servers, so neighbours may swap).
            for i in results.indices {
                for j in results.indices where j >= i + 2 {
                    #expect(results[i].completed < results[j].completed, "\(i) ended after \(j)")
                }
            }
            let stats = try await harness.proxy.stats()[0]
            let queue = try #require(stats.queue)
            // (Eight wait when the requests arrive together; a loaded machine spreads them out.)
            #expect(queue.served >= 4 && queue.length == 0 && queue.timedOut == 0 && queue.rejected == 0, "\(queue)")
            #expect(queue.waitedNanoseconds > 0)
            #expect(stats.servers.map(\.limit) == [1, 1])
        }
    }

    @Test("a full queue answers 503 at once; a wait past the timeout answers 503; the numbers say so")
    func fullAndTimeout() async throws {
        let workers = [WorkerBehaviour(delayMilliseconds: 0)]
        let yaml: ([Int]) -> String = { Self.config($0, limit: "max_connections: 1", queue: "{ max: 2, timeout: 800ms }") }
        try await withProxy(workers: workers, clientConnections: 16, yaml: yaml) { harness in
            // One in service for 1.5 s, two waiting, two turned away.
            let results = try await Self.burst(harness, count: 5, path: "/work?delay_ms=1500", spacing: .milliseconds(30))
            let statuses = results.map(\.response.status.code)
            #expect(statuses == [200, 503, 503, 503, 503], "\(statuses)")
            let pages = results.dropFirst().map(\.response.text)
            #expect(pages.filter { $0.contains("none came free within 800ms in the queue") }.count == 2, "\(pages)")
            #expect(pages.filter { $0.contains("the queue is full") }.count == 2, "\(pages)")
            let queue = try #require(try await harness.proxy.stats()[0].queue)
            #expect(queue.timedOut == 2 && queue.rejected == 2 && queue.length == 0, "\(queue)")
            // The server is free again: no waiting.
            #expect(try await harness.send("/work").status == .ok)
        }
    }

    @Test("a reload keeps the queue and the requests waiting in it, even with new settings: later ones queue behind them")
    func reloadKeepsQueue() async throws {
        let workers = [WorkerBehaviour(delayMilliseconds: 0)]
        let yaml: ([Int]) -> String = { Self.config($0, limit: "max_requests: 1", queue: "{ max: 10, timeout: 10s }") }
        try await withProxy(workers: workers, clientConnections: 8, yaml: yaml) { harness in
            async let burst = Self.burst(harness, count: 4, path: "/work?delay_ms=300")
            try await Task.sleep(for: .milliseconds(150))
            var config = harness.proxy.config
            config.backends[0].retries = 1
            config.backends[0].queue?.timeout = .seconds(9)
            try await harness.proxy.reload(to: config)
            // After the reload, behind those that waited before it (a new, empty queue would
            // hold it until its timeout: the requests before the reload free their slots in
            // the queue they waited in).
            let lateSent = ContinuousClock.now
            let late = try await harness.send("/work?delay_ms=300")
            let lateWaited = ContinuousClock.now - lateSent
            let results = try await burst
            #expect(results.map(\.response.status.code) == [200, 200, 200, 200])
            #expect(late.status == .ok)
            for i in 0..<3 { #expect(results[i].completed < results[i + 1].completed, "\(i) ended after \(i + 1)") }
            // Served in turn, far within its 9 s timeout (a queue replaced by the reload would
            // hold it that long). Not "after the burst's fourth": on a loaded machine the
            // client may send that one after it.
            #expect(lateWaited < .seconds(5), "\(lateWaited)")
            let queue = try #require(try await harness.proxy.stats()[0].queue)
            #expect(queue.served >= 3 && queue.timedOut == 0, "\(queue)")
        }
    }

    @Test("without limits there is no queue; a limit on any server gives the default one (1000, 5s)")
    func defaultQueue() throws {
        let plain = try ConfigLoader.load(yaml: simpleConfig([9001, 9002]))
        #expect(plain.backends[0].effectiveQueue == nil)
        var limited = plain
        limited.backends[0].servers[1].maxRequests = 4
        #expect(limited.backends[0].effectiveQueue == QueueConfig())
        limited.backends[0].servers[1].maxRequests = nil
        limited.backends[0].servers[1].maxConnections = 3
        #expect(limited.backends[0].servers[1].inFlightLimit == 3)
        limited.backends[0].servers[1].upstreamProtocol = .h2c
        #expect(limited.backends[0].servers[1].inFlightLimit == nil, "an HTTP/2 server's connections carry many requests")
    }
}
