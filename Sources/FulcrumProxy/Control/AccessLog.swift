import Dispatch
import FulcrumConfig
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(Glibc)
private let systemWrite = Glibc.write
#elseif canImport(Musl)
private let systemWrite = Musl.write
#elseif canImport(Darwin)
private let systemWrite = Darwin.write
#endif

/// One finished request, or `mode: tcp` connection, as the access log records it.
struct AccessLogEntry {
    var client: String
    var frontend: String
    var backend: String?
    var server: String?
    var request: HTTPRequestHead?
    /// The client's HTTP version; nil for a `mode: tcp` connection (logged as `tcp`).
    var protocolVersion: HTTPVersion?
    var status: UInt
    var bytesIn: Int
    var bytesOut: Int
    var durationNanoseconds: Int64
    /// Time to the response head from the server; -1 when no server answered.
    var upstreamNanoseconds: Int64
    /// What the shield decided about the request (`limited:per_ip`, `challenged:empty_user_agent`),
    /// when it did anything.
    var shield: String? = nil
}

/// Writes access-log batches to standard output on a queue of its own, so that an event loop
/// never blocks on the terminal, a pipe or a slow disk.
package final class AccessLogWriter: Sendable {
    private let queue = DispatchQueue(label: "fulcrum.access-log")
    private let sink: (@Sendable (ByteBuffer) -> Void)?

    /// Lines go to standard output.
    package init() {
        sink = nil
    }

    /// Lines (batches of whole lines) go to `sink`, called on the writer's queue.
    package init(sink: @escaping @Sendable (ByteBuffer) -> Void) {
        self.sink = sink
    }

    func write(_ buffer: ByteBuffer) {
        queue.async { [sink] in
            if let sink {
                sink(buffer)
                return
            }
            buffer.withUnsafeReadableBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = systemWrite(STDOUT_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                    if written < 0 && errno == EINTR { continue }
                    if written <= 0 { return }  // stdout closed: drop the log rather than block
                    offset += written
                }
            }
        }
    }
}

/// An event loop's access-log lines, collected and handed to the writer in batches (when the
/// batch is large, or 100 ms after its first line) rather than one write per request.
final class AccessLogBuffer {
    private let writer: AccessLogWriter
    private let eventLoop: any EventLoop
    private let format: AccessLogFormat
    private var buffer: ByteBuffer
    private var flushScheduled = false
    private var cachedSecond = 0
    private var cachedCombinedTime = ""
    private var cachedISOTime = ""

    init(writer: AccessLogWriter, format: AccessLogFormat, eventLoop: any EventLoop) {
        self.writer = writer
        self.format = format
        self.eventLoop = eventLoop
        self.buffer = ByteBufferAllocator().buffer(capacity: 16 * 1024)
    }

    func append(_ entry: AccessLogEntry) {
        switch format {
        case .off: return
        case .combined: appendCombined(entry)
        case .json: appendJSON(entry)
        }
        if buffer.readableBytes >= 32 * 1024 {
            flush()
        } else if !flushScheduled {
            flushScheduled = true
            eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(100)) { [self] in
                flushScheduled = false
                flush()
            }
        }
    }

    func flush() {
        guard buffer.readableBytes > 0 else { return }
        writer.write(buffer)
        buffer = ByteBufferAllocator().buffer(capacity: 16 * 1024)
    }

    /// `client - - [time] "METHOD uri HTTP/x" status bytes "referer" "agent" frontend backend/server duration_ms upstream_ms`,
    /// then `shield=DECISION:REASON` when the shield decided something. (A `mode: tcp`
    /// connection: `"TCP" 0 bytes_out "-" "-" …`, upstream_ms its connect time.)
    private func appendCombined(_ entry: AccessLogEntry) {
        refreshTime()
        let request = entry.request
        let version = entry.protocolVersion.map { "\($0)" }
        // A `mode: tcp` connection has no request line: "TCP" stands in for it.
        let requestLine = request.map { "\($0.method.rawValue) \($0.uri) \(version ?? "-")" } ?? (version == nil ? "TCP" : "-")
        let referer = request?.headers.first(name: "referer") ?? "-"
        let agent = request?.headers.first(name: "user-agent") ?? "-"
        let route = entry.backend.map { "\($0)/\(entry.server ?? "-")" } ?? "-"
        buffer.writeString(
            "\(entry.client) - - [\(cachedCombinedTime)] \"\(Self.quoted(requestLine))\" \(entry.status) \(entry.bytesOut) "
                + "\"\(Self.quoted(referer))\" \"\(Self.quoted(agent))\" \(entry.frontend) \(route) "
                + "\(Self.milliseconds(entry.durationNanoseconds))ms \(Self.upstream(entry.upstreamNanoseconds))"
                + (entry.shield.map { " shield=\($0)" } ?? "") + "\n"
        )
    }

    private func appendJSON(_ entry: AccessLogEntry) {
        refreshTime()
        let request = entry.request
        var line = "{\"time\":\"\(cachedISOTime)\",\"client\":\"\(Self.quoted(entry.client))\""
        line += ",\"frontend\":\"\(Self.quoted(entry.frontend))\""
        line += ",\"backend\":" + (entry.backend.map { "\"\(Self.quoted($0))\"" } ?? "null")
        line += ",\"server\":" + (entry.server.map { "\"\(Self.quoted($0))\"" } ?? "null")
        line += ",\"method\":" + (request.map { "\"\(Self.quoted($0.method.rawValue))\"" } ?? "null")
        line += ",\"uri\":" + (request.map { "\"\(Self.quoted($0.uri))\"" } ?? "null")
        line += ",\"protocol\":\"\(entry.protocolVersion.map { "\($0)" } ?? "tcp")\",\"status\":\(entry.status)"
        line += ",\"bytes_in\":\(entry.bytesIn),\"bytes_out\":\(entry.bytesOut)"
        line += ",\"duration_ms\":\(Self.milliseconds(entry.durationNanoseconds))"
        line += ",\"upstream_ms\":" + (entry.upstreamNanoseconds >= 0 ? Self.milliseconds(entry.upstreamNanoseconds) : "null")
        line += ",\"user_agent\":" + (request?.headers.first(name: "user-agent").map { "\"\(Self.quoted($0))\"" } ?? "null")
        if let shield = entry.shield { line += ",\"shield\":\"\(Self.quoted(shield))\"" }
        line += "}\n"
        buffer.writeString(line)
    }

    private func refreshTime() {
        var now = time(nil)
        guard Int(now) != cachedSecond else { return }
        cachedSecond = Int(now)
        var parts = tm()
        gmtime_r(&now, &parts)
        cachedCombinedTime = Self.format("%d/%b/%Y:%H:%M:%S +0000", &parts)
        cachedISOTime = Self.format("%Y-%m-%dT%H:%M:%SZ", &parts)
    }

    private static func format(_ pattern: String, _ parts: inout tm) -> String {
        var output = [CChar](repeating: 0, count: 64)
        let count = strftime(&output, output.count, pattern, &parts)
        return String(decoding: output[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func milliseconds(_ nanoseconds: Int64) -> String {
        let tenths = nanoseconds / 100_000
        return "\(tenths / 10).\(tenths % 10)"
    }

    private static func upstream(_ nanoseconds: Int64) -> String {
        nanoseconds >= 0 ? "\(milliseconds(nanoseconds))ms" : "-"
    }

    /// Escapes quotes, backslashes and control characters for both formats.
    private static func quoted(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 < 0x20 }) else {
            return text
        }
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += "\\u00" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
