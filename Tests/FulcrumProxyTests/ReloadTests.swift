import AsyncHTTPClient
import Foundation
import FulcrumConfig
import FulcrumProxy
import FulcrumWorker
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// `ProxyServer.reload(to:)` on a running proxy: real workers, real clients, real sockets.
@Suite("Hot reload", .serialized)
struct ReloadTests {
    /// `config` with backend `app` serving the workers `names` (of `harness`), picked by `algorithm`.
    private static func config(
        _ config: Config,
        harness: ProxyHarness,
        servers names: [String],
        algorithm: AlgorithmName? = nil
    ) -> Config {
        var config = config
        config.backends[0].servers = names.map { name in
            let index = Int(name.dropFirst())! - 1
            return ServerConfig(name: name, address: ServerAddress(host: "127.0.0.1", port: harness.workers[index].port))
        }
        if let algorithm { config.backends[0].algorithm = algorithm }
        return config
    }

    @Test("servers added and removed: new requests follow the new list, a kept server keeps its counters")
    func serversAddedAndRemoved() async throws {
        let workers = Array(repeating: WorkerBehaviour(delayMilliseconds: 0), count: 3)
        try await withProxy(workers: workers, yaml: { simpleConfig(Array($0.prefix(2))) }) { harness in
            for _ in 0..<4 { _ = try await harness.send("/work") }
            let before = try await harness.proxy.stats()[0].servers.first { $0.name == "w1" }!.metrics.totals.requests
            #expect(before == 2)

            let summary = try await harness.proxy.reload(
                to: Self.config(harness.proxy.config, harness: harness, servers: ["w1", "w3"])
            )
            #expect(summary.serversAdded == ["app/w3"])
            #expect(summary.serversRemoved == ["app/w2"])
            #expect(summary.listenersAdded.isEmpty && summary.listenersRemoved.isEmpty)
            #expect(summary.description == "servers added: app/w3; servers removed: app/w2")

            var seen: [String: Int] = [:]
            for _ in 0..<6 { seen[try await harness.send("/work").worker ?? "?", default: 0] += 1 }
            #expect(seen == ["w1": 3, "w3": 3])
            let stats = try await harness.proxy.stats()[0]
            #expect(stats.servers.map(\.name) == ["w1", "w3"])
            // w1 is the same server object: its totals went on from 2.
            #expect(stats.servers[0].metrics.totals.requests == 5)
            #expect(stats.servers[1].metrics.totals.requests == 3)
        }
    }

    @Test("the summary names listeners, backends and servers added, removed and changed")
    func summary() throws {
        let old = try ConfigLoader.load(yaml: simpleConfig([9001, 9002]))
        var new = old
        new.frontends[0].listen.append(ListenAddress(host: "127.0.0.1", port: 8081))
        new.backends[0].servers[0].weight = 5  // changed
        new.backends[0].servers[1].address = ServerAddress(host: "127.0.0.1", port: 9003)  // replaced
        var extra = new.backends[0]
        extra.name = "extra"
        new.backends.append(extra)
        let summary = ReloadSummary(from: old, to: new)
        #expect(summary.listenersAdded == ["test@127.0.0.1:8081"])
        #expect(summary.backendsAdded == ["extra"])
        #expect(summary.serversAdded == ["app/w2", "extra/w1", "extra/w2"])
        #expect(summary.serversRemoved == ["app/w2"])
        #expect(summary.serversChanged == ["app/w1"])
        #expect(ReloadSummary(from: new, to: old).backendsRemoved == ["extra"])
        #expect(ReloadSummary(from: new, to: old).listenersRemoved == ["test@127.0.0.1:8081"])
    }

    @Test("the same configuration again changes nothing")
    func unchanged() async throws {
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: { simpleConfig($0) }) { harness in
            let summary = try await harness.proxy.reload(to: harness.proxy.config)
            #expect(!summary.changed)
            #expect(summary.description == "no change")
            #expect(try await harness.send("/work").status == .ok)
        }
    }

    @Test("a request in flight finishes on the server a reload removed; its connections then close")
    func inFlightFinishesOnRemovedServer() async throws {
        let workers = [WorkerBehaviour(delayMilliseconds: 600), WorkerBehaviour(delayMilliseconds: 0)]
        try await withProxy(workers: workers, yaml: { simpleConfig($0) }) { harness in
            // Round robin: the first request goes to w1 (slow).
            let slow = Task { try await harness.send("/work") }
            try await waitUntil(timeout: .seconds(15)) {
                try await harness.proxy.requestsInFlight()["app"]?["w1"] == 1
            }
            try await harness.proxy.reload(to: Self.config(harness.proxy.config, harness: harness, servers: ["w2"]))
            for _ in 0..<3 { #expect(try await harness.send("/work").worker == "w2") }
            let response = try await slow.value
            #expect(response.status == .ok)
            #expect(response.worker == "w1")
        }
    }

    @Test("an algorithm change applies to the next request; an adaptive backend keeps the engine's choice")
    func algorithmChange() async throws {
        let workers = Array(repeating: WorkerBehaviour(delayMilliseconds: 0), count: 2)
        try await withProxy(workers: workers, yaml: { simpleConfig($0, weights: [3, 1]) }) { harness in
            var config = harness.proxy.config
            config.backends[0].algorithm = .weightedRoundRobin
            try await harness.proxy.reload(to: config)
            var seen: [String: Int] = [:]
            for _ in 0..<8 { seen[try await harness.send("/work").worker ?? "?", default: 0] += 1 }
            #expect(seen == ["w1": 6, "w2": 2])

            config.backends[0].algorithm = .adaptive
            try await harness.proxy.reload(to: config)
            #expect(harness.proxy.selectAlgorithm(.leastConnections, forBackend: "app", pin: true))
            // Adding a server rebuilds the backend; its adaptive choice and pin stay.
            config.backends[0].servers.append(
                ServerConfig(
                    name: "w3",
                    address: ServerAddress(host: "127.0.0.1", port: harness.workers[1].port)
                )
            )
            try await harness.proxy.reload(to: config)
            #expect(harness.proxy.currentAlgorithm(ofBackend: "app") == .leastConnections)
            #expect(harness.proxy.isAlgorithmPinned(ofBackend: "app") == true)
        }
    }

    @Test("listeners: a kept address keeps its socket and connections, a new one accepts, a removed one stops")
    func listeners() async throws {
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: { simpleConfig($0) }) { harness in
            let extraPort = try deadPort()
            var config = harness.proxy.config
            config.frontends[0].listen.append(ListenAddress(host: "127.0.0.1", port: extraPort))
            // A raw keep-alive connection on the kept address, open across both reloads.
            let kept = try await RawConnection.connect(port: harness.port)
            #expect(try await kept.exchange("GET /work HTTP/1.1\r\nHost: a\r\n\r\n").hasPrefix("HTTP/1.1 200"))

            let added = try await harness.proxy.reload(to: config)
            #expect(added.listenersAdded == ["test@127.0.0.1:\(extraPort)"])
            #expect(harness.proxy.listeners.count == 2)
            #expect(try await get(port: extraPort) == 200)
            #expect(try await kept.exchange("GET /work HTTP/1.1\r\nHost: a\r\n\r\n").hasPrefix("HTTP/1.1 200"))

            config.frontends[0].listen.removeLast()
            let removed = try await harness.proxy.reload(to: config)
            #expect(removed.listenersRemoved == ["test@127.0.0.1:\(extraPort)"])
            await #expect(throws: (any Error).self) { try await get(port: extraPort) }
            #expect(try await kept.exchange("GET /work HTTP/1.1\r\nHost: a\r\n\r\n").hasPrefix("HTTP/1.1 200"))
            #expect(harness.proxy.listeners.map(\.address.port) == [harness.port])
            try await kept.close()
        }
    }

    @Test("a frontend renamed on a kept address: its open connections carry on under the new name, across reloads")
    func frontendRenamed() async throws {
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: { simpleConfig($0) }) { harness in
            let kept = try await RawConnection.connect(port: harness.port)
            #expect(try await kept.exchange("GET /work HTTP/1.1\r\nHost: a\r\n\r\n").hasPrefix("HTTP/1.1 200"))
            // Renamed twice while the connection is idle: "test" → "public" → "edge".
            var config = harness.proxy.config
            for name in ["public", "edge"] {
                config.frontends[0].name = name
                try await harness.proxy.reload(to: config)
            }
            #expect(harness.proxy.listeners.map(\.frontend) == ["edge"])
            #expect(try await kept.exchange("GET /work HTTP/1.1\r\nHost: a\r\n\r\n").hasPrefix("HTTP/1.1 200"))
            #expect(try await get(port: harness.port) == 200)
            let frontends = try await harness.proxy.traffic().series.map(\.frontend)
            #expect(Set(frontends) == ["test", "edge"], "\(frontends)")
            try await kept.close()
        }
    }

    @Test("a configuration that cannot be applied throws and leaves the running one serving")
    func unappliable() async throws {
        try await withProxy(workers: [WorkerBehaviour(delayMilliseconds: 0)], yaml: { simpleConfig($0) }) { harness in
            let running = harness.proxy.config
            // An address someone else holds.
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let squatter = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
            var taken = running
            taken.frontends[0].listen.append(ListenAddress(host: "127.0.0.1", port: squatter.localAddress!.port!))
            taken.backends[0].algorithm = .random
            await #expect(throws: StartupError.self) { try await harness.proxy.reload(to: taken) }
            try await squatter.close()
            try await group.shutdownGracefully()

            // A server whose name does not resolve.
            var unresolvable = running
            unresolvable.backends[0].servers.append(
                ServerConfig(
                    name: "ghost",
                    address: ServerAddress(host: "no-such-host.invalid", port: 80)
                )
            )
            await #expect(throws: StartupError.self) { try await harness.proxy.reload(to: unresolvable) }

            #expect(harness.proxy.config == running)
            #expect(harness.proxy.listeners.count == 1)
            #expect(try await harness.send("/work").status == .ok)
        }
    }

    @Test("a server down by its health check stays down across a reload that adds another")
    func healthCarriesOver() async throws {
        let workers = [WorkerBehaviour(delayMilliseconds: 0, healthy: false), WorkerBehaviour(delayMilliseconds: 0)]
        let yaml = { (ports: [Int]) in
            simpleConfig(Array(ports.prefix(1)))
                + "\n    health_check: { path: /health, interval: 100ms, timeout: 500ms, rise: 2, fall: 1 }"
        }
        try await withProxy(workers: workers, yaml: yaml) { harness in
            try await waitUntil(timeout: .seconds(15)) { try await harness.proxy.stats()[0].servers[0].state == .down }
            var config = harness.proxy.config
            config.backends[0].servers.append(
                ServerConfig(
                    name: "w2",
                    address: ServerAddress(host: "127.0.0.1", port: harness.workers[1].port)
                )
            )
            try await harness.proxy.reload(to: config)
            let states = try await harness.proxy.stats()[0].servers.map(\.state)
            #expect(states == [.down, .up])
            for _ in 0..<4 { #expect(try await harness.send("/work").worker == "w2") }
        }
    }

    /// The bar of the issue, scaled to seconds: 50 reloads that alternately add and remove a
    /// server and change the algorithm, under constant load from keep-alive clients and
    /// clients that open a new connection per request. Every request must succeed.
    @Test("50 reloads under load: zero failed requests, zero reset connections")
    func reloadsUnderLoad() async throws {
        let workers = Array(repeating: WorkerBehaviour(delayMilliseconds: 2), count: 3)
        let algorithms: [AlgorithmName] = [.roundRobin, .leastConnections, .powerOfTwo, .adaptive, .random, .peakEWMA]
        try await withProxy(workers: workers, proxyThreads: 2, clientConnections: 8, yaml: { simpleConfig(Array($0.prefix(2))) }) { harness in
            let base = harness.proxy.config
            let tally = Tally()
            let stop = NIOLockedValueBox(false)
            let load = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    // Keep-alive clients (the harness client pools up to 8 connections).
                    for _ in 0..<6 {
                        group.addTask {
                            while !stop.withLockedValue({ $0 }) {
                                tally.record(await Self.outcome { try await harness.send("/work") })
                                // Constant, not saturating: the suites beside this one measure time.
                                try? await Task.sleep(for: .milliseconds(2))
                            }
                        }
                    }
                    // A new connection per request.
                    for _ in 0..<2 {
                        group.addTask {
                            while !stop.withLockedValue({ $0 }) {
                                tally.record(
                                    await Self.outcome {
                                        try await harness.send("/work", headers: [("Connection", "close")])
                                    }
                                )
                                try? await Task.sleep(for: .milliseconds(2))
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            try await Task.sleep(for: .milliseconds(200))
            for round in 0..<50 {
                let servers = round % 2 == 0 ? ["w1", "w2", "w3"] : ["w1", "w3"]
                let config = Self.config(base, harness: harness, servers: servers, algorithm: algorithms[round % algorithms.count])
                try await harness.proxy.reload(to: config)
                try await Task.sleep(for: .milliseconds(30))
            }
            stop.withLockedValue { $0 = true }
            try await load.value
            let (succeeded, failures) = tally.result
            #expect(failures.isEmpty, "\(failures.count) failed: \(failures.prefix(5))")
            #expect(succeeded >= 100, "the load did not run")
            print("reloads under load: 50 reloads, \(succeeded) requests succeeded, \(failures.count) failed")
        }
    }

    private static func outcome(_ send: () async throws -> CollectedResponse) async -> Result<HTTPResponseStatus, any Error> {
        do { return .success(try await send().status) } catch { return .failure(error) }
    }
}

/// Counts request outcomes from many tasks.
private final class Tally: Sendable {
    private let state = NIOLockedValueBox<(succeeded: Int, failures: [String])>((0, []))

    func record(_ outcome: Result<HTTPResponseStatus, any Error>) {
        state.withLockedValue { state in
            switch outcome {
            case .success(.ok): state.succeeded += 1
            case .success(let status): state.failures.append("status \(status.code)")
            case .failure(let error): state.failures.append("\(error)")
            }
        }
    }

    var result: (succeeded: Int, failures: [String]) { state.withLockedValue { $0 } }
}

/// A GET on a fresh connection; the status code.
private func get(port: Int) async throws -> Int {
    let connection = try await RawConnection.connect(port: port)
    let response = try await connection.exchange("GET /work HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    try? await connection.close()
    guard let code = Int(response.dropFirst(9).prefix(3)) else { throw RawConnection.Failure.noResponse }
    return code
}

/// One keep-alive TCP connection for sending requests one after another and reading each
/// response (delimited by Content-Length): shows that a connection outlives a reload.
private final class RawConnection: Sendable {
    enum Failure: Error {
        case noResponse
    }

    private let channel: any Channel
    private let received: NIOLockedValueBox<(bytes: [UInt8], closed: Bool)>

    private init(channel: any Channel, received: NIOLockedValueBox<(bytes: [UInt8], closed: Bool)>) {
        self.channel = channel
        self.received = received
    }

    static func connect(port: Int) async throws -> RawConnection {
        let received = NIOLockedValueBox<(bytes: [UInt8], closed: Bool)>(([], false))
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Recorder(received: received))
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .get()
        return RawConnection(channel: channel, received: received)
    }

    /// Sends `request` and returns its response (head and body) once complete; throws when the
    /// connection closes first or nothing complete arrives within 5 s.
    func exchange(_ request: String) async throws -> String {
        received.withLockedValue { $0.bytes = [] }
        try await channel.writeAndFlush(ByteBuffer(string: request)).get()
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            let (bytes, closed) = received.withLockedValue { $0 }
            let text = String(decoding: bytes, as: UTF8.self)
            if let headEnd = text.range(of: "\r\n\r\n") {
                let length =
                    text[..<headEnd.lowerBound].split(separator: "\r\n")
                    .first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                if text[headEnd.upperBound...].utf8.count >= length { return text }
            }
            if closed { throw Failure.noResponse }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw Failure.noResponse
    }

    func close() async throws {
        try await channel.close()
    }

    private final class Recorder: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let received: NIOLockedValueBox<(bytes: [UInt8], closed: Bool)>

        init(received: NIOLockedValueBox<(bytes: [UInt8], closed: Bool)>) {
            self.received = received
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            received.withLockedValue { $0.bytes += buffer.readableBytesView }
        }

        func channelInactive(context: ChannelHandlerContext) {
            received.withLockedValue { $0.closed = true }
        }
    }
}
