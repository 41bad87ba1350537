import FulcrumBalancing
import NIOCore
import NIOHTTP1

/// Screening and routing a request: the handler asks `RequestAdmission` and the
/// `ShieldScreener`, and hands their decision to the state machine.
extension ProxyHandler {
    // MARK: Screening and routing

    func admit(_ head: HTTPRequestHead) {
        connectionGuard?.requestHeadReceived()
        record = ExchangeRecord()
        // A new exchange has waited in no queue.
        queueTimer?.cancel()
        queueTimer = nil
        queueDeadline = nil
        queueEnteredAt = nil
        // For the duration histogram and the access log.
        record.start = .now()
        if loop.snapshot !== snapshot {
            snapshot = loop.snapshot
            if let successor = snapshot.renamedFrontends[frontendName] {
                // A reload renamed this connection's frontend, keeping its address.
                frontendName = successor
            }
            selectFrontend()
        }
        if let forwarding = frontend?.forwarding {
            client = forwarding.client(of: head, peer: peer)
            clientMayBeNamed = true
        } else if clientMayBeNamed {
            // A reload took the frontend's trusted proxies away.
            client = peer
            clientMayBeNamed = false
        }
        var head = head
        var scan = ForwardingHeaders.scanRequest(head.headers)
        let check = RequestAdmission.checkHead(&head, scan: &scan, frontend: frontend)
        if check.rewritten { machine.targetRewritten(head) }
        let framing = check.framing
        requestChunked = framing.isChunked
        var route: (index: Int, edits: [HeaderEdit])?
        let decision: RequestDecision
        if let refusal = check.refusal {
            decision = .respond(refusal)
        } else if let screened = screen(head) {
            decision = screened
        } else {
            decision = self.route(head, into: &route)
        }
        let action = machine.admitted(decision, framing: framing, maxBodyBytes: frontend?.maxBodyBytes)
        if case .pickServer = action, let route {
            prepareForward(head, scan: &scan, backendIndex: route.index, headerEdits: route.edits)
        }
        runInlined(action)
    }

    /// Screens again once the crawler check or the shared limit that held the request is done.
    func rescreen(_ head: HTTPRequestHead) {
        guard let screener else { return }
        var random = SystemRandomNumberGenerator()
        let screen: ShieldScreener.Screen
        if let answer = sharedLimitAnswer {
            sharedLimitAnswer = nil
            let crawlers = loop.crawlerVerifier
            screen = screener.screen(
                head,
                client: client,
                clock: .now,
                crawlerStatus: { crawlers.cached($0) },
                store: loop.sharedLimits?.onError,
                resumingWith: answer,
                random: &random
            )
        } else {
            screen = screener.screenAfterCrawlerCheck(
                head,
                client: client,
                hostname: crawlerHostname,
                clock: .now,
                store: loop.sharedLimits?.onError,
                random: &random
            )
        }
        note(screen, for: head)
        var route: (index: Int, edits: [HeaderEdit])?
        let decision = screen.verdict.decision ?? self.route(head, into: &route)
        let action = machine.rescreened(decision)
        if case .pickServer = action, let route {
            var scan = ForwardingHeaders.scanRequest(head.headers)
            prepareForward(head, scan: &scan, backendIndex: route.index, headerEdits: route.edits)
        }
        run(action)
    }

    /// The shield's screen; nil when it passes the request on to the rules.
    func screen(_ head: HTTPRequestHead) -> RequestDecision? {
        guard let screener else { return nil }
        var random = SystemRandomNumberGenerator()
        let crawlers = loop.crawlerVerifier
        let screen = screener.screen(
            head,
            client: client,
            clock: .now,
            crawlerStatus: { crawlers.cached($0) },
            store: loop.sharedLimits?.onError,
            random: &random
        )
        note(screen, for: head)
        return screen.verdict.decision
    }

    func route(_ head: HTTPRequestHead, into route: inout (index: Int, edits: [HeaderEdit])?) -> RequestDecision {
        guard let frontend else { return .respond(LocalResponse(.serviceUnavailable, "This listener's frontend was removed.")) }
        switch RequestAdmission.route(head, frontend: frontend, client: client) {
        case .backend(let index, let edits):
            route = (index, edits)
            let runtime = loop.backends[index].runtime
            return .forward(retries: runtime.retries, serverCount: runtime.servers.count)
        case .decided(let decision):
            return decision
        }
    }

    func note(_ screen: ShieldScreener.Screen, for head: HTTPRequestHead) {
        if let note = screen.note {
            record.shield = "\(note.decision):\(note.reason)"
            loop.traffic.shieldDecision(ShieldDecision(frontend: frontendName, decision: note.decision, reason: note.reason))
        }
        if let line = screen.logLine {
            loop.logger.info(
                "\(line)",
                metadata: ["frontend": "\(frontendName)", "client": "\(client.addressText)", "uri": "\(head.uri)"]
            )
        }
    }

    /// Serializes the head the server receives and makes `backendIndex` the exchange's backend.
    /// (`scan` is inout only to be updated in place: a copy of it measured.)
    func prepareForward(_ head: HTTPRequestHead, scan: inout ForwardingHeaders.Scan, backendIndex: Int, headerEdits: [HeaderEdit]) {
        scan.framing.isWebSocket = machine.isWebSocketUpgrade
        let backend = loop.backends[backendIndex]
        self.backend = backend
        requestHashKey = backend.algorithm.usesHashKey ? RequestHashKey.of(head, key: backend.runtime.hashKey, client: client) : nil
        forwardedHead.clear()
        stickyServer = ForwardingHeaders.writeRequestHead(
            head,
            headerEdits: headerEdits,
            scan: scan,
            client: peer,
            forwarding: frontend?.forwarding.map { ForwardingHeaders.Forwarding(policy: $0, client: client) },
            sticky: backend.runtime.sticky,
            into: &forwardedHead
        )
        callTimeout = scan.grpcTimeout.flatMap(GRPCDeadline.parse)
        backend.retryBudget.recordRequest()
    }

    /// Holds the request while the store decides on shared rate limit `index` (within the
    /// store's timeout: its answer, or its failure, always comes).
    func checkSharedLimit(_ index: Int, key: String, attempt: Int) {
        guard let store = loop.sharedLimits, let limit = screener?.shield.sharedLimit(at: index) else {
            sharedLimitAnswer = .init(limitIndex: index, key: key, outcome: .failed(.unavailable))
            run(machine.sharedLimitChecked(attempt: attempt))
            return
        }
        store.check(limit, key: key) { [self] outcome in
            sharedLimitAnswer = .init(limitIndex: index, key: key, outcome: outcome)
            run(machine.sharedLimitChecked(attempt: attempt))
        }
    }

    /// Holds the request while the address is looked up (at most `crawlerCheckTimeout`).
    func lookUpCrawler(_ address: [UInt8], attempt: Int, context: ChannelHandlerContext) {
        let timeout = context.eventLoop.assumeIsolated().scheduleTask(in: ExchangeStateMachine.crawlerCheckTimeout) { [self] in
            crawlerHostname = nil
            run(machine.crawlerChecked(attempt: attempt))
        }
        loop.crawlerVerifier.lookUp(address, on: context.eventLoop).assumeIsolated().whenSuccess { [self] hostname in
            timeout.cancel()
            crawlerHostname = hostname
            run(machine.crawlerChecked(attempt: attempt))
        }
    }
}
