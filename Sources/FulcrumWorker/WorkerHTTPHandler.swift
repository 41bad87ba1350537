import NIOCore
import NIOHTTP1

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Serves the worker's endpoints on one HTTP/1.x connection.
///
/// The handler sits behind `configureHTTPServerPipeline(withPipeliningAssistance: true)`, whose
/// `HTTPServerPipelineHandler` holds pipelined requests back until the response to the current one
/// has ended. So this handler only ever deals with one request at a time, as a small state machine:
///
/// ```
/// idle ─head─▶ receiving ─end─┬─────────────────────────────────────▶ respond ─┬─▶ idle     (keep-alive)
///              (the body is   ├─▶ (queued ─slot─▶) working ─timer───▶ respond ─┤
///              discarded,     └─▶ streaming ─last chunk written──────▶ end ─────┴─▶ closing  (otherwise)
///              buffered or hashed)
/// ```
///
/// Nothing here blocks the event loop: `/work` waits for a slot of the worker's capacity with a
/// callback from ``WorkAdmission`` and then for its delay with `scheduleTask`, `/sink` hashes each
/// body part as it arrives and `/bytes` writes a chunk only while the channel is writable.
final class WorkerHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// The largest body `/echo` buffers. Larger bodies are drained and answered with `413`.
    static let maxEchoBodySize = 16 * 1024 * 1024
    /// The largest body `POST /control` accepts; a behaviour is a few dozen bytes.
    static let maxControlBodySize = 64 * 1024
    /// The size of the body parts `/bytes` writes. A multiple of the pattern's period (256), so that
    /// every chunk starts at pattern phase 0 and can be a slice of the same template buffer.
    static let streamChunkSize = 64 * 1024

    private let worker: WorkerState
    private var state: State = .idle
    /// Set while `pumpStream` runs, to turn re-entrant calls into no-ops (see there).
    private var isPumpingStream = false

    init(worker: WorkerState) {
        self.worker = worker
    }

    // MARK: - ChannelInboundHandler

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.receiveHead(head, context: context)
        case .body(let part):
            self.receiveBodyPart(part)
        case .end(let trailers):
            self.receiveEnd(trailers: trailers, context: context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .streaming = self.state {
            self.pumpStream(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.stop()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.stop()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Decoding errors have already been answered with a 400 by `HTTPServerProtocolErrorHandler`;
        // anything else (e.g. a connection reset) leaves the connection unusable.
        self.stop()
        context.close(promise: nil)
    }

    /// Cancels a pending `/work` timer or place in the queue, and ignores whatever else arrives on
    /// this connection.
    private func stop() {
        switch self.state {
        case .working(_, let timer):
            // Also breaks the reference cycle handler → state → timer → closure → handler.
            timer.cancel()
            self.worker.admission.release()
        case .queued(_, let ticket):
            // If a slot was granted already, `workAdmitted` is on its way and gives it back.
            self.worker.admission.cancel(ticket)
        case .idle, .receiving, .streaming, .closing:
            break
        }
        self.state = .closing
    }

    // MARK: - Receiving requests

    private func receiveHead(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        switch self.state {
        case .idle:
            break
        case .closing:
            // A request pipelined behind one that closes the connection: deliberately ignored.
            return
        case .receiving, .queued, .working, .streaming:
            assertionFailure("HTTPServerPipelineHandler delivered a request head while one is in progress")
            return
        }

        let request = Request(head: head, endpoint: Endpoint(routing: head))
        let body = BodyConsumer(for: request.endpoint)
        if body.usesBody, head.version == .http1_1,
            head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" })
        {
            // Saves clients like curl waiting a second before they upload anyway.
            let interim = HTTPResponseHead(version: head.version, status: .continue)
            context.writeAndFlush(self.wrapOutboundOut(.head(interim)), promise: nil)
        }
        self.state = .receiving(request, body)
    }

    private func receiveBodyPart(_ part: ByteBuffer) {
        guard case .receiving(let request, var body) = self.state else {
            return
        }
        // Drop the state's reference first, so that appending to a buffered body doesn't copy it.
        self.state = .idle
        body.consume(part)
        self.state = .receiving(request, body)
    }

    private func receiveEnd(trailers: HTTPHeaders?, context: ChannelHandlerContext) {
        guard case .receiving(let request, let body) = self.state else {
            return
        }

        switch (request.endpoint, body) {
        case (_, .overflowed):
            self.respond(request, status: .payloadTooLarge, text: "request body too large\n", context: context)

        case (.grpcHealth, _):
            self.respondToGRPCHealthCheck(request, context: context)

        case (.health, _):
            if self.worker.behaviour.healthy {
                self.respond(request, status: .ok, text: "ok", context: context)
            } else {
                self.respond(request, status: .serviceUnavailable, text: "unhealthy", context: context)
            }

        case (.work(let delayOverride), _):
            self.startWork(request, delayOverride: delayOverride, context: context)

        case (.echo(let status, let withTrailers, let setCookie), .collect(let buffer, _)):
            let payload = EchoPayload(
                worker: self.worker.name,
                method: request.head.method.rawValue,
                path: request.head.uri,
                version: request.head.version.description,
                headers: request.head.headers.map { [$0.name, $0.value] },
                body: String(decoding: buffer.readableBytesView, as: UTF8.self),
                bodyBytes: buffer.readableBytes,
                trailers: (trailers ?? [:]).map { [$0.name, $0.value] }
            )
            var cookie = HTTPHeaders()
            if let setCookie {
                cookie.add(name: "Set-Cookie", value: "\(setCookie)=\(self.worker.name)-session; Path=/; HttpOnly")
            }
            if withTrailers {
                self.respondWithTrailers(request, status: status, json: payload, context: context)
            } else {
                self.respond(request, status: status, json: payload, extraHeaders: cookie, context: context)
            }

        case (.readControl, _):
            self.respond(request, status: .ok, json: self.worker.behaviour, context: context)

        case (.updateControl, .collect(let buffer, _)):
            self.updateBehaviour(request, body: buffer, context: context)

        case (.sink, .hash(let hash, let byteCount)):
            let payload = SinkPayload(bytes: byteCount, checksum: hash.hexDigest)
            self.respond(request, status: .ok, json: payload, context: context)

        case (.bytes(let count, let seed), _):
            self.startStream(request, count: count, seed: seed, context: context)

        case (.reject(let status, let message, let allow), _):
            var headers = HTTPHeaders()
            if let allow {
                headers.add(name: "Allow", value: allow)
            }
            self.respond(request, status: status, text: message, extraHeaders: headers, context: context)

        case (.echo, _), (.updateControl, _), (.sink, _):
            preconditionFailure("BodyConsumer(for:) doesn't match the endpoint \(request.endpoint)")
        }
    }

    // MARK: - Endpoints that answer later

    /// Waits for a slot of the worker's capacity, then works.
    private func startWork(_ request: Request, delayOverride: Int?, context: ChannelHandlerContext) {
        // The admission calls back from whichever thread frees the slot, via `execute` on our loop.
        let loopBound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        let admission = self.worker.admission.acquire(on: context.eventLoop) {
            loopBound.value.handler.workAdmitted(context: loopBound.value.context)
        }
        switch admission {
        case .admitted:
            self.work(request, delayOverride: delayOverride, context: context)
        case .queued(let ticket):
            self.state = .queued(request, ticket)
        }
    }

    /// A queued `/work` request got its slot.
    private func workAdmitted(context: ChannelHandlerContext) {
        guard case .queued(let request, _) = self.state, case .work(let delayOverride) = request.endpoint else {
            // The connection closed after the slot was granted but before we got here.
            self.worker.admission.release()
            return
        }
        self.work(request, delayOverride: delayOverride, context: context)
    }

    /// Works on a `/work` request that holds a slot, and answers it once its delay is over.
    private func work(_ request: Request, delayOverride: Int?, context: ChannelHandlerContext) {
        // Sample delay and failure before the timer, so that a failing request is as slow as a
        // successful one; but only now, not on arrival, so that a behaviour change applies to requests
        // still queued.
        let behaviour = self.worker.behaviour
        let delay = delayOverride ?? behaviour.sampleDelayMilliseconds()
        let fails = behaviour.sampleFailure()

        let timer = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(delay))) {
            guard case .working = self.state else {
                return
            }
            // Only once the answer has moved the state on from `.working`: should writing it close
            // the connection, `stop()` must not give the slot back a second time.
            defer { self.worker.admission.release() }
            if fails {
                let text = "work failed on \(self.worker.name) after \(delay) ms\n"
                self.respond(request, status: .internalServerError, text: text, context: context)
            } else {
                let text = "work done by \(self.worker.name) in \(delay) ms\n"
                self.respond(request, status: .ok, text: text, context: context)
            }
        }
        self.state = .working(request, timer)
    }

    private func startStream(_ request: Request, count: Int, seed: Int, context: ChannelHandlerContext) {
        let head = self.responseHead(
            for: request,
            status: .ok,
            contentType: "application/octet-stream",
            contentLength: count
        )
        self.writeHead(head, context: context)
        guard count > 0, request.head.method != .HEAD else {
            self.writeEnd(keepAlive: request.head.isKeepAlive, context: context)
            return
        }

        // The pattern repeats every 256 bytes and chunks start at multiples of 256, so one template
        // chunk serves the whole response: each body part is a zero-copy slice of it.
        let templateSize = min(count, Self.streamChunkSize)
        var template = context.channel.allocator.buffer(capacity: templateSize)
        template.writeWithUnsafeMutableBytes(minimumWritableBytes: templateSize) { pointer in
            for index in 0..<templateSize {
                pointer[index] = WorkerServer.patternByte(index: index, seed: seed)
            }
            return templateSize
        }

        self.state = .streaming(ByteStream(keepAlive: request.head.isKeepAlive, remaining: count, template: template))
        self.pumpStream(context: context)
    }

    /// Writes `/bytes` chunks for as long as the channel is writable.
    ///
    /// Once the channel's outbound buffer passes its high watermark `isWritable` turns `false` and we
    /// stop; `channelWritabilityChanged` calls back in when the peer has read enough. So at most about
    /// a watermark's worth of the response is ever queued, however large it is.
    private func pumpStream(context: ChannelHandlerContext) {
        // `flush()` can fire `channelWritabilityChanged` synchronously, and writing the final `.end`
        // makes `HTTPServerPipelineHandler` deliver the next pipelined request, which may start
        // another stream. Both would call back in here; instead the outer call keeps pumping for them.
        guard !self.isPumpingStream else {
            return
        }
        self.isPumpingStream = true
        defer { self.isPumpingStream = false }

        repeat {
            while context.channel.isWritable, case .streaming(var stream) = self.state {
                let chunk = stream.nextChunk()
                self.state = .streaming(stream)
                self.worker.streamedBodyBytes.add(chunk.readableBytes, ordering: .relaxed)
                context.write(self.wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
                if stream.remaining == 0 {
                    self.writeEnd(keepAlive: stream.keepAlive, context: context)
                }
            }
            context.flush()
        } while context.channel.isWritable && self.state.isStreaming
    }

    private func updateBehaviour(_ request: Request, body: ByteBuffer, context: ChannelHandlerContext) {
        let update: WorkerBehaviour.Update
        do {
            update = try JSONDecoder().decode(WorkerBehaviour.Update.self, from: Data(body.readableBytesView))
        } catch {
            self.respond(request, status: .badRequest, text: "invalid behaviour JSON: \(error)\n", context: context)
            return
        }

        switch self.worker.applyUpdate(update) {
        case .success(let behaviour):
            self.respond(request, status: .ok, json: behaviour, context: context)
        case .failure(let invalid):
            self.respond(request, status: .badRequest, text: "invalid behaviour: \(invalid.reason)\n", context: context)
        }
    }

    // MARK: - Writing responses

    private func respond(
        _ request: Request,
        status: HTTPResponseStatus,
        json value: some Encodable,
        extraHeaders: HTTPHeaders = [:],
        context: ChannelHandlerContext
    ) {
        do {
            let body = try context.channel.allocator.jsonBuffer(value)
            self.respond(request, status: status, body: body, contentType: "application/json", extraHeaders: extraHeaders, context: context)
        } catch {
            // Our payloads are plain structs of strings and numbers; this is not expected to happen.
            self.respond(request, status: .internalServerError, text: "cannot encode JSON: \(error)\n", context: context)
        }
    }

    private func respond(
        _ request: Request,
        status: HTTPResponseStatus,
        text: String,
        extraHeaders: HTTPHeaders = [:],
        context: ChannelHandlerContext
    ) {
        let body = context.channel.allocator.buffer(string: text)
        self.respond(
            request,
            status: status,
            body: body,
            contentType: "text/plain; charset=utf-8",
            extraHeaders: extraHeaders,
            context: context
        )
    }

    /// Writes a complete response whose body is already in memory.
    private func respond(
        _ request: Request,
        status: HTTPResponseStatus,
        body: ByteBuffer,
        contentType: String,
        extraHeaders: HTTPHeaders = [:],
        context: ChannelHandlerContext
    ) {
        var head = self.responseHead(
            for: request,
            status: status,
            contentType: contentType,
            contentLength: body.readableBytes
        )
        head.headers.add(contentsOf: extraHeaders)
        self.writeHead(head, context: context)
        // HEAD responses and 204/304 carry no body; the encoder would reject (or mis-frame) one.
        if request.head.method != .HEAD, status.mayHaveResponseBody {
            context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        self.writeEnd(keepAlive: request.head.isKeepAlive, context: context)
    }

    /// A `grpc.health.v1.Health/Check` answer: one `HealthCheckResponse` whose `status` is
    /// SERVING (1) while the behaviour is healthy, NOT_SERVING (2) otherwise, then the
    /// `grpc-status: 0` trailer. (The request's message, which names a service, is not read:
    /// the worker is one service.)
    private func respondToGRPCHealthCheck(_ request: Request, context: ChannelHandlerContext) {
        let status: UInt8 = self.worker.behaviour.healthy ? 1 : 2
        var head = self.responseHead(for: request, status: .ok, contentType: "application/grpc", contentLength: 0)
        head.headers.remove(name: "Content-Length")
        self.writeHead(head, context: context)
        // A length-prefixed message: uncompressed, 2 bytes: field 1 (varint) = status.
        let message = ByteBuffer(bytes: [0, 0, 0, 0, 2, 0x08, status])
        context.write(self.wrapOutboundOut(.body(.byteBuffer(message))), promise: nil)
        self.state = .idle
        context.writeAndFlush(self.wrapOutboundOut(.end(["grpc-status": "0"])), promise: nil)
    }

    /// An `/echo?trailers=1` response: no length (chunked over HTTP/1.1), and trailers at the
    /// end, `x-echo-trailer: done` and `x-body-bytes` (the body's length).
    private func respondWithTrailers(
        _ request: Request,
        status: HTTPResponseStatus,
        json value: some Encodable,
        context: ChannelHandlerContext
    ) {
        guard let body = try? context.channel.allocator.jsonBuffer(value) else {
            self.respond(request, status: .internalServerError, text: "cannot encode JSON\n", context: context)
            return
        }
        var head = self.responseHead(for: request, status: status, contentType: "application/json", contentLength: 0)
        head.headers.remove(name: "Content-Length")
        self.writeHead(head, context: context)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let trailers: HTTPHeaders = ["x-echo-trailer": "done", "x-body-bytes": "\(body.readableBytes)"]
        self.state = request.head.isKeepAlive ? .idle : .closing
        let written = context.writeAndFlush(self.wrapOutboundOut(.end(trailers)))
        if !request.head.isKeepAlive {
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    private func responseHead(
        for request: Request,
        status: HTTPResponseStatus,
        contentType: String,
        contentLength: Int
    ) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        headers.add(name: "X-Worker", value: self.worker.name)
        headers.add(name: "Content-Type", value: contentType)
        // We always know the length up front, so we never need chunked framing. (A 204 or 304 must
        // not announce a length.)
        if status.mayHaveResponseBody {
            headers.add(name: "Content-Length", value: String(contentLength))
        }
        // Make the connection's fate explicit where it differs from the version's default.
        let version = request.head.version
        let keepAlive = request.head.isKeepAlive
        let isHTTP10 = version.major == 1 && version.minor == 0
        if keepAlive, isHTTP10 {
            headers.add(name: "Connection", value: "keep-alive")
        } else if !keepAlive, !isHTTP10 {
            headers.add(name: "Connection", value: "close")
        }
        return HTTPResponseHead(version: version, status: status, headers: headers)
    }

    private func writeHead(_ head: HTTPResponseHead, context: ChannelHandlerContext) {
        self.worker.requestsServed.add(1, ordering: .relaxed)
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
    }

    /// Ends the current response and, without keep-alive, closes the connection once it is sent.
    private func writeEnd(keepAlive: Bool, context: ChannelHandlerContext) {
        // Leave the request's state *before* writing `.end`: `HTTPServerPipelineHandler` reacts to it
        // by delivering the next pipelined request, re-entrantly, into this handler.
        self.state = keepAlive ? .idle : .closing
        let written = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
        if !keepAlive {
            written.assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }
}
