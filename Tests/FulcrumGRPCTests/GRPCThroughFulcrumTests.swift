import FulcrumConfig
import FulcrumProxy
import FulcrumTestSupport
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import NIOPosix
import Synchronization
import Testing

/// gRPC through Fulcrum with grpc-swift 2's own client and server (HTTP/2 by prior knowledge
/// on both sides): every kind of call, a server's error status, a deadline, a cancellation, a
/// server that goes down mid-stream, and none up at all.
@Suite("gRPC through Fulcrum (grpc-swift 2)", .serialized)
struct GRPCThroughFulcrumTests {
    /// A grpc-swift echo server, Fulcrum in front of it (`protocol: h2c`, an `h2c: true`
    /// frontend), and a grpc-swift client of Fulcrum's port. `body` gets the client, the
    /// service, and a way to stop the server at once (its task cancelled: its calls end).
    /// `servers`: the backend's server list, given the echo server's port (by default that
    /// server alone).
    static func withEchoThroughFulcrum(
        serverPort: Int? = nil,
        responseTimeout: String = "10s",
        retries: Int = 0,
        servers: ((_ echoPort: Int) -> [String])? = nil,
        _ body: (Echo_Echo.Client<HTTP2ClientTransport.Posix>, EchoService, _ stopServer: @escaping @Sendable () -> Void) async throws -> Void
    ) async throws {
        let service = EchoService()
        let server = GRPCServer(
            transport: .http2NIOPosix(address: .ipv4(host: "127.0.0.1", port: 0), transportSecurity: .plaintext),
            services: [service]
        )
        let serving = Task { try await server.serve() }
        defer { serving.cancel() }
        do {
            let listening = try #require(try await server.listeningAddress?.ipv4)
            let echoPort = serverPort ?? listening.port
            let serverList =
                servers?(echoPort) ?? [#"{ name: e1, address: "127.0.0.1:\#(echoPort)", protocol: h2c }"#]
            let yaml = """
                global:
                  workers: 1
                  log: { level: warning, access: off }
                frontends:
                  - name: grpc
                    listen: ["127.0.0.1:1"]
                    h2c: true
                    default_backend: echo
                backends:
                  - name: echo
                    retries: \(retries)
                    timeouts: { connect: 1s, response: \(responseTimeout) }
                    servers: [\(serverList.joined(separator: ", "))]
                """
            var config = try ConfigLoader.load(yaml: yaml)
            config.frontends[0].listen = [ListenAddress(host: "127.0.0.1", port: 0)]
            let proxyGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            var logger = Logger(label: "fulcrum.grpc-test")
            logger.logLevel = .critical
            let proxy = try await ProxyServer.start(config: config, group: proxyGroup, logger: logger)
            let port = try #require(proxy.listeners.first?.address.port)
            do {
                try await withGRPCClient(
                    transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
                ) { client in
                    try await body(Echo_Echo.Client(wrapping: client), service, { serving.cancel() })
                }
            } catch {
                await proxy.shutdown(gracePeriod: .seconds(1))
                try await proxyGroup.shutdownGracefully()
                throw error
            }
            await proxy.shutdown(gracePeriod: .seconds(1))
            try await proxyGroup.shutdownGracefully()
        }
        server.beginGracefulShutdown()
        _ = await serving.result
    }

    @Test("unary, server streaming, client streaming and bidirectional calls pass, with their statuses")
    func everyKindOfCall() async throws {
        try await Self.withEchoThroughFulcrum { echo, _, _ in
            // (The call outside `#expect`: inside it, with Swift 6.3.1, the next call went out
            // with this one's message, as the frames Fulcrum received showed.)
            let hello = try await echo.get(.with { $0.text = "hello" })
            #expect(hello.text == "hello")

            let words = try await echo.expand(.with { $0.text = "one two three" }) { response in
                try await response.messages.reduce(into: [String]()) { $0.append($1.text) }
            }
            #expect(words == ["one", "two", "three"])

            let collected = try await echo.collect { writer in
                for text in ["x", "y", "z"] { try await writer.write(.with { $0.text = text }) }
            }
            #expect(collected.text == "x y z")

            let echoed = try await echo.update { writer in
                for index in 0..<50 { try await writer.write(.with { $0.text = "\(index)" }) }
            } onResponse: { response in
                try await response.messages.reduce(into: [String]()) { $0.append($1.text) }
            }
            #expect(echoed == (0..<50).map { "\($0)" })

            // A server's own error status reaches the client in its trailers, as sent.
            let error = await #expect(throws: RPCError.self) { try await echo.get(.with { $0.text = "fail" }) }
            #expect(error?.code == .notFound)
            #expect(error?.message == "nothing called fail")
        }
    }

    @Test("a deadline shorter than the call: DEADLINE_EXCEEDED, long before the server would answer")
    func deadline() async throws {
        try await Self.withEchoThroughFulcrum { echo, _, _ in
            var options = CallOptions.defaults
            options.timeout = .milliseconds(300)
            let clock = ContinuousClock()
            let start = clock.now
            let error = await #expect(throws: RPCError.self) {
                try await echo.get(.with { $0.text = "sleep 5000" }, options: options)
            }
            #expect(error?.code == .deadlineExceeded)
            #expect(clock.now - start < .seconds(3))
            // (Whether the server's call then ends by its own deadline or by the reset stream
            // is a race: the server enforces `grpc-timeout` too. The tests below show each.)
        }
    }

    @Test("a response timeout of Fulcrum's own is DEADLINE_EXCEEDED too, from Fulcrum")
    func responseTimeout() async throws {
        try await Self.withEchoThroughFulcrum(responseTimeout: "1s") { echo, service, _ in
            // A first call opens the connection to the server, so that on a busy machine the
            // timed call's stream reaches the server's handler before Fulcrum gives up on it
            // (a stream reset before that would cancel nothing the test can see).
            _ = try await echo.get(.with { $0.text = "hello" })
            let error = await #expect(throws: RPCError.self) { try await echo.get(.with { $0.text = "sleep 5000" }) }
            #expect(error?.code == .deadlineExceeded)
            #expect(error?.message == "The server did not answer in time.")
            // Fulcrum reset the server's stream when it gave up.
            try await waitFor { service.counters.cancelled.load(ordering: .relaxed) == 1 }
        }
    }

    @Test("a client that cancels a streaming call cancels the server's call")
    func cancellation() async throws {
        try await Self.withEchoThroughFulcrum { echo, service, _ in
            let firstArrived = Atomic(false)
            let call = Task {
                try await echo.expand(.with { $0.text = "slow a b c d e f g h i j" }) { response in
                    for try await _ in response.messages { firstArrived.store(true, ordering: .relaxed) }
                }
            }
            try await waitFor { firstArrived.load(ordering: .relaxed) }
            call.cancel()
            _ = await call.result
            try await waitFor { service.counters.cancelled.load(ordering: .relaxed) == 1 }
        }
    }

    @Test("a server that goes down mid-stream ends the call with an error, not a hang")
    func serverDownMidStream() async throws {
        try await Self.withEchoThroughFulcrum { echo, _, stopServer in
            let received = Atomic(0)
            let clock = ContinuousClock()
            let start = clock.now
            await #expect(throws: RPCError.self) {
                try await echo.expand(.with { $0.text = "slow a b c d e f g h i j k l m n o p" }) { response in
                    for try await _ in response.messages {
                        if received.add(1, ordering: .relaxed).newValue == 2 {
                            // Not graceful: the server's calls end under them.
                            stopServer()
                        }
                    }
                }
            }
            #expect(received.load(ordering: .relaxed) < 16)
            #expect(clock.now - start < .seconds(5))
        }
    }

    @Test("a call whose server dropped it before any response goes to another server, messages and all")
    func retryBeforeResponse() async throws {
        let faulty = try await FaultyHTTP2Server.start(.dropConnection)
        defer { Task { try await faulty.shutdown() } }
        // The faulty server first, the echo server a backup (weight 0): every call meets the
        // fault, then the retry.
        try await Self.withEchoThroughFulcrum(retries: 1) { echoPort in
            [
                #"{ name: faulty, address: "127.0.0.1:\#(faulty.port)", protocol: h2c }"#,
                #"{ name: e1, address: "127.0.0.1:\#(echoPort)", protocol: h2c, weight: 0 }"#,
            ]
        } _: { echo, service, _ in
            let hello = try await echo.get(.with { $0.text = "hello" })
            #expect(hello.text == "hello")
            // Client streaming: the messages sent before the fault go again, then the rest.
            let collected = try await echo.collect { writer in
                for text in ["x", "y", "z"] { try await writer.write(.with { $0.text = text }) }
            }
            #expect(collected.text == "x y z")
            let echoed = try await echo.update { writer in
                for index in 0..<5 { try await writer.write(.with { $0.text = "\(index)" }) }
            } onResponse: { response in
                try await response.messages.reduce(into: [String]()) { $0.append($1.text) }
            }
            #expect(echoed == (0..<5).map { "\($0)" })
            #expect(faulty.requestsReceived == 3)
            #expect(service.counters.calls.load(ordering: .relaxed) == 3)
        }
    }

    @Test("a call whose response began is not retried when its server goes down")
    func noRetryOnceAnswering() async throws {
        let backup = EchoService()
        let backupServer = GRPCServer(
            transport: .http2NIOPosix(address: .ipv4(host: "127.0.0.1", port: 0), transportSecurity: .plaintext),
            services: [backup]
        )
        let serving = Task { try await backupServer.serve() }
        defer { serving.cancel() }
        let backupPort = try #require(try await backupServer.listeningAddress?.ipv4).port
        try await Self.withEchoThroughFulcrum(retries: 2) { echoPort in
            [
                #"{ name: e1, address: "127.0.0.1:\#(echoPort)", protocol: h2c }"#,
                #"{ name: e2, address: "127.0.0.1:\#(backupPort)", protocol: h2c, weight: 0 }"#,
            ]
        } _: { echo, service, stopServer in
            let received = Atomic(0)
            await #expect(throws: RPCError.self) {
                try await echo.expand(.with { $0.text = "slow a b c d e f g h i j k l m n o p" }) { response in
                    for try await _ in response.messages {
                        if received.add(1, ordering: .relaxed).newValue == 2 { stopServer() }
                    }
                }
            }
            #expect(service.counters.calls.load(ordering: .relaxed) == 1)
            // The client saw part of an answer: a second server's answer would repeat it.
            #expect(backup.counters.calls.load(ordering: .relaxed) == 0)
        }
        backupServer.beginGracefulShutdown()
    }

    @Test("with no server up, Fulcrum answers UNAVAILABLE")
    func noServer() async throws {
        try await Self.withEchoThroughFulcrum(serverPort: 1) { echo, _, _ in
            let error = await #expect(throws: RPCError.self) { try await echo.get(.with { $0.text = "hello" }) }
            #expect(error?.code == .unavailable)
        }
    }

    /// Polls `condition` every 20 ms for up to 10 s.
    private func waitFor(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition(), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(condition())
    }
}
