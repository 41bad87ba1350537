import FulcrumBalancing
import NIOCore
import NIOHTTP1

/// The measurements of one exchange, for the loop's traffic counters, the access log and the
/// server's live metrics. Bookkeeping only: no decision reads it.
struct ExchangeRecord {
    var start = NIODeadline.uptimeNanoseconds(0)
    /// When the current server was chosen.
    var upstreamStart = NIODeadline.uptimeNanoseconds(0)
    /// From choosing the server to its response head; -1 when no response head arrived.
    var upstreamNanoseconds: Int64 = -1
    var status: UInt = 0
    var responseBytes = 0
    /// What the shield decided, for the access log (`decision:reason`).
    var shield: String?

    /// Records how the current server did — the time from choosing it to its response head
    /// (or to the failure) — in its live metrics, for a latency-aware algorithm, and for
    /// passive outlier detection.
    mutating func recordOutcome(_ outcome: ServerMetrics.Outcome, backend: LoopBackend, serverIndex index: Int, loop: LoopContext) {
        let now = NIODeadline.now().uptimeNanoseconds
        let elapsed = Int64(now &- upstreamStart.uptimeNanoseconds)
        backend.metrics[index].record(outcome, responseNanoseconds: elapsed, now: now)
        let failed: Bool
        if case .response(let status) = outcome {
            upstreamNanoseconds = elapsed
            failed = status >= 500
        } else {
            failed = true
        }
        if backend.algorithm.observesResponses {
            backend.algorithm.observe(serverIndex: index, responseNanoseconds: elapsed, failed: failed, now: now)
        }
        if let detector = backend.runtime.outlierDetector {
            if !failed {
                detector.recordSuccess(serverIndex: index)
            } else if let verdict = detector.recordFailure(serverIndex: index, now: now) {
                loop.outlierVerdict(verdict, backend: backend.runtime, serverIndex: index)
            }
        }
    }

    /// Counts the exchange that just ended in the loop's traffic counters, and logs it.
    func exchangeEnded(
        _ summary: ExchangeStateMachine.Summary,
        client: ClientInfo,
        frontend: String,
        backend: LoopBackend?,
        serverIndex: Int?,
        clientVersion: HTTPVersion,
        loop: LoopContext
    ) {
        let duration = Int64(NIODeadline.now().uptimeNanoseconds &- start.uptimeNanoseconds)
        let counters: TrafficCounters.Cell
        if let backend, let serverIndex, backend.runtime.servers.indices.contains(serverIndex) {
            counters = backend.trafficCell(serverIndex: serverIndex, frontend: frontend, in: loop.traffic)
        } else {
            counters = loop.traffic.cell(for: TrafficCounters.Key(frontend: frontend, backend: backend?.runtime.name ?? "", server: ""))
        }
        loop.traffic.record(
            into: counters,
            status: status,
            bytesIn: summary.requestBodyBytes,
            bytesOut: responseBytes,
            nanoseconds: duration
        )
        guard let accessLog = loop.accessLog else { return }
        let server = backend.flatMap { backend in
            serverIndex.flatMap { backend.runtime.servers.indices.contains($0) ? backend.runtime.servers[$0].name : nil }
        }
        accessLog.append(
            AccessLogEntry(
                client: client.addressText,
                frontend: frontend,
                backend: backend?.runtime.name,
                server: server,
                request: summary.request,
                protocolVersion: clientVersion,
                status: status,
                bytesIn: summary.requestBodyBytes,
                bytesOut: responseBytes,
                durationNanoseconds: duration,
                upstreamNanoseconds: upstreamNanoseconds,
                shield: shield
            )
        )
    }
}
