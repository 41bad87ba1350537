import FulcrumBalancing
import NIOCore
import NIOHTTP1

/// The server side of an exchange: picking a server, connecting, sending the request, and
/// what the server connection reports (`BackendResponseSink`).
extension ProxyHandler {
    // MARK: Choosing a server and connecting

    func pickServer(excluding tried: ServerIndexSet) {
        guard let backend else { return }
        if let queue = backend.runtime.queue, !isDequeued, !queue.isEmpty {
            // Others wait for a slot already: behind them.
            waitInQueue(queue, excluding: tried)
            return
        }
        let servers = backend.runtime.servers
        if let bound = stickyServer, !tried.contains(bound), servers[bound].acceptsBoundClients, servers[bound].hasRoom {
            connect(to: bound, reuseIdle: true)
            return
        }
        guard let index = backend.algorithm.pick(from: servers, excluding: tried, hashKey: requestHashKey) else {
            if let queue = backend.runtime.queue, servers.indices.contains(where: { !tried.contains($0) && servers[$0].isAvailable }) {
                // Servers it could go to, all at their limits.
                waitInQueue(queue, excluding: tried)
            } else {
                run(machine.noServerAvailable())
            }
            return
        }
        connect(to: index, reuseIdle: true)
    }

    func connect(to index: Int, reuseIdle: Bool) {
        guard let backend else { return }
        leftQueue()
        let attempt = machine.connecting(to: index)
        serverIndex = index
        startCounting(backend.runtime.servers[index])
        record.upstreamStart = .now()
        let pool = backend.pools[index]
        let proxyHeader = context.flatMap { context in pool.sendProxy.map { peer.proxyProtocolHeader($0, connection: context.channel) } }
        if let http2 = pool.http2 {
            // An HTTP/2 server: a stream on a shared connection (`HTTP2ConnectionSet`).
            if let stream = http2.takeStream(proxyHeader: proxyHeader) {
                attach(stream, attempt: attempt)
                return
            }
            http2.waitForStream(proxyHeader: proxyHeader).assumeIsolated().whenComplete { [self] result in
                connectCompleted(result.map { $0 }, attempt: attempt, index: index)
            }
            return
        }
        if reuseIdle, let idle = pool.takeIdle(proxyHeader: proxyHeader) {
            attach(idle, attempt: attempt)
            return
        }
        pool.connect(proxyHeader: proxyHeader).assumeIsolated().whenComplete { [self] result in
            connectCompleted(result.map { $0 }, attempt: attempt, index: index)
        }
    }

    private func connectCompleted(_ result: Result<any UpstreamConnection, any Error>, attempt: Int, index: Int) {
        switch result {
        case .success(let connection):
            attach(connection, attempt: attempt)
        case .failure(let error):
            guard let backend, machine.isConnecting(attempt: attempt) else { return }
            stopCounting()
            recordOutcome(.connectFailure)
            let server = backend.runtime.servers[index].name
            let tlsError = error as? BackendTLSError
            if let tlsError {
                loop.logger.warning(
                    "TLS to server failed: \(tlsError)",
                    metadata: ["backend": "\(backend.runtime.name)", "server": "\(server)"]
                )
            }
            let failure = ExchangeStateMachine.ConnectFailure(
                isTLS: tlsError != nil,
                serverName: server,
                reason: describeNetworkError(error)
            )
            run(machine.connectFailed(attempt: attempt, failure))
        }
    }

    func attach(_ connection: any UpstreamConnection, attempt: Int) {
        let action = machine.connected(attempt: attempt)
        guard case .sendRequest = action else {
            // The client went away or was answered meanwhile; keep the connection.
            connection.release()
            return
        }
        self.connection = connection
        runInlined(action)
    }

    /// Sends the request so far on the exchange's new connection.
    func sendRequest(_ head: HTTPRequestHead, body: [ByteBuffer], end: ExchangeStateMachine.RequestEnd?) {
        guard let connection, let backend else { return }
        let responseTimeout = callTimeout.map { min($0, backend.runtime.responseTimeout) } ?? backend.runtime.responseTimeout
        connection.begin(request: head, sink: self, responseTimeout: responseTimeout)
        connection.write(forwardedHead)
        for part in body {
            connection.writeBody(part, chunked: requestChunked)
        }
        if let end {
            connection.writeEnd(ForwardingHeaders.forwardedTrailers(end.trailers), chunked: requestChunked)
        }
        serverWritten()
        resumeClientReads()
    }

    /// Something was written to the server connection: it is flushed once the loop has handled
    /// its current I/O events (`DeferredFlushes`), together with whatever else they bring —
    /// the rest of this client read, and other clients' requests to the same server.
    func serverWritten() {
        if let connection {
            loop.flushes.flushSoon(connection)
        }
    }

    func recordOutcome(_ outcome: ServerMetrics.Outcome) {
        guard let backend, let serverIndex else { return }
        record.recordOutcome(outcome, backend: backend, serverIndex: serverIndex, loop: loop)
    }

    func startCounting(_ server: BalancedServer) {
        stopCounting()
        countedServer = server
        server.requestStarted()
    }

    func stopCounting() {
        guard let server = countedServer else { return }
        server.requestFinished()
        countedServer = nil
        if server.limit != nil, let queue = backend?.runtime.queue, !queue.isEmpty {
            // A slot freed for the first request waiting.
            queue.slotFreed()
        }
    }

    // MARK: Server → client (BackendResponseSink)

    func backendResponseHead(_ head: HTTPResponseHead, from connection: any UpstreamConnection) {
        if let sticky = backend?.runtime.sticky, let serverIndex {
            var head = head
            sticky.stamp(&head, server: serverIndex, requested: stickyServer, isSecure: isSecure)
            runInlined(machine.responseHead(head))
            return
        }
        runInlined(machine.responseHead(head))
    }

    func backendResponseBody(_ body: ByteBuffer) {
        guard body.readableBytes > 0 else { return }
        runInlined(machine.responseBody(body))
    }

    func backendResponseEnd(_ trailers: HTTPHeaders?, from connection: any UpstreamConnection) {
        runInlined(machine.responseEnd(trailers))
    }

    func backendReadComplete() {
        guard let context else { return }
        writer.readComplete(context: context)
        flushSoon()
        if !writer.isClientWritable(context: context) {
            connection?.pauseReads(clientTimeout: clientIdle)
        }
    }

    func backendWritabilityChanged(isWritable: Bool) {
        if isWritable { resumeClientReads() }
    }

    func backendFailed(_ failure: BackendFailure, connection: any UpstreamConnection) {
        guard connection === self.connection, let backend else { return }
        self.connection = nil
        stopCounting()
        let (outcome, action) = machine.serverFailed(failure, requestsSent: connection.requestsSent) {
            backend.retryBudget.withdrawRetry(now: NIODeadline.now().uptimeNanoseconds)
        }
        if let outcome { recordOutcome(outcome) }
        run(action)
    }
}
