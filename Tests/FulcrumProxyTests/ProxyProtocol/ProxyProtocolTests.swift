import FulcrumWorker
import NIOCore
import NIOPosix
import Testing

@testable import FulcrumProxy

/// PROXY protocol on a frontend (`accept_proxy`), through a real proxy and workers: the
/// address a trusted header names is the client's for `X-Forwarded-For` and `src` ACLs; a
/// trusted source that sends no header, or a broken one, is closed; anyone else's header is
/// not read. (HAProxy and nginx as the real peers: `ProxyProtocolPeerTests`.)
@Suite("PROXY protocol from trusted sources")
struct ProxyProtocolTests {
    /// Requests from 203.0.113.0/24 go to the second worker: a `src` ACL sees the header's
    /// address.
    /// (`header_read` also bounds the wait for the header.)
    static func config(_ ports: [Int], trusting sources: String = "127.0.0.0/8", headerRead: String = "10s") -> String {
        """
        global:
          workers: 1
          log: { level: warning, access: off }
        frontends:
          - name: test
            listen: ["127.0.0.1:8080"]
            timeouts: { header_read: \(headerRead) }
            accept_proxy: { from: [\(sources)] }
            acls:
              documentation: { src: 203.0.113.0/24 }
            rules:
              - { if: documentation, use_backend: documentation }
            default_backend: app
        backends:
          - name: app
            servers: [{ name: w1, address: "127.0.0.1:\(ports[0])" }]
          - name: documentation
            servers: [{ name: w2, address: "127.0.0.1:\(ports[1])" }]
        """
    }

    static let request = "GET /echo HTTP/1.1\r\nHost: proxied.test\r\nConnection: close\r\n\r\n"

    @Test("a v1 header names the client: X-Forwarded-For and src ACLs see it")
    func version1() async throws {
        try await withProxy(workers: [.init(), .init()], yaml: { Self.config($0) }) { harness in
            let (response, _) = try await RawClient.exchange(
                port: harness.port,
                chunks: ["PROXY TCP4 203.0.113.9 198.51.100.2 56324 80\r\n" + Self.request]
            )
            #expect(response.hasPrefix("HTTP/1.1 200"))
            #expect(response.contains("X-Worker: w2"))
            #expect(response.contains("\"x-forwarded-for\",\"203.0.113.9\""))
        }
    }

    @Test("a v2 header, in pieces and with the request in the same read as its end")
    func version2() async throws {
        try await withProxy(workers: [.init(), .init()], yaml: { Self.config($0) }) { harness in
            var header = ProxyProtocolHeader(
                source: try SocketAddress(ipAddress: "198.51.100.77", port: 40000),
                destination: try SocketAddress(ipAddress: "192.0.2.1", port: 443)
            ).encoded(.v2)
            let connection = try await HeldConnection.open(port: harness.port)
            try await connection.send(bytes: header.readSlice(length: 7)!)
            try await Task.sleep(for: .milliseconds(50))
            header.writeString(Self.request)
            try await connection.send(bytes: header)
            try await waitUntil(timeout: .seconds(5)) { connection.closedByServer }
            #expect(connection.text.hasPrefix("HTTP/1.1 200"))
            #expect(connection.text.contains("X-Worker: w1"))
            #expect(connection.text.contains("\"x-forwarded-for\",\"198.51.100.77\""))
        }
    }

    @Test("v2 LOCAL (a health check of the proxy in front) keeps the connection's own address")
    func version2Local() async throws {
        try await withProxy(workers: [.init(), .init()], yaml: { Self.config($0) }) { harness in
            let local = String(buffer: ProxyProtocolHeader().encoded(.v2))
            let (response, _) = try await RawClient.exchange(port: harness.port, chunks: [local + Self.request])
            #expect(response.contains("\"x-forwarded-for\",\"127.0.0.1\""))
        }
    }

    @Test("a trusted source that sends no header, or a broken one, is closed with no answer")
    func missingOrBroken() async throws {
        let logs = LogCapture()
        // header_read is long enough that a loaded machine (CI runs every suite at once) still
        // reads the first two clients' bytes within it.
        try await withProxy(workers: [.init(), .init()], logs: logs, yaml: { Self.config($0, headerRead: "4s") }) { harness in
            // HTTP where the header should be.
            let (plain, plainClosed) = try await RawClient.exchange(port: harness.port, chunks: [Self.request])
            #expect(plain.isEmpty && plainClosed)
            // A header that breaks its rules.
            let (broken, brokenClosed) = try await RawClient.exchange(
                port: harness.port,
                chunks: ["PROXY TCP4 203.0.113.9 198.51.100.2 056324 80\r\n" + Self.request]
            )
            #expect(broken.isEmpty && brokenClosed)
            // Nothing at all: closed once `header_read` (4 s) passes, not at the default 10 s.
            let started = ContinuousClock.now
            let (silent, silentClosed) = try await RawClient.exchange(port: harness.port, chunks: [], timeout: .seconds(9))
            #expect(silent.isEmpty && silentClosed)
            #expect(ContinuousClock.now - started < .seconds(9))
            // The proxy goes on serving.
            let (after, _) = try await RawClient.exchange(
                port: harness.port,
                chunks: ["PROXY TCP4 192.0.2.5 198.51.100.2 1000 80\r\n" + Self.request]
            )
            #expect(after.hasPrefix("HTTP/1.1 200"))
        }
        #expect(logs.messages.contains { $0.contains("not a PROXY protocol header") })
        #expect(logs.messages.contains { $0.contains("no PROXY protocol header within") })
    }

    @Test("from a source not in `from`, a header is not read: it is a malformed request")
    func untrustedSource() async throws {
        try await withProxy(workers: [.init(), .init()], yaml: { Self.config($0, trusting: "10.0.0.0/8") }) { harness in
            let (response, _) = try await RawClient.exchange(
                port: harness.port,
                chunks: ["PROXY TCP4 203.0.113.9 198.51.100.2 56324 80\r\n" + Self.request]
            )
            #expect(response.hasPrefix("HTTP/1.1 400"))
            #expect(!response.contains("203.0.113.9"))
            // Without a header, the same source is served as itself.
            let (plain, _) = try await RawClient.exchange(port: harness.port, chunks: [Self.request])
            #expect(plain.contains("\"x-forwarded-for\",\"127.0.0.1\""))
        }
    }

    @Test("a parked connection keeps the client its header named")
    func parkingKeepsTheClient() async throws {
        let yaml = { (ports: [Int]) in
            Self.config(ports, headerRead: "10s, park_after: 100ms")
        }
        try await withProxy(workers: [.init(), .init()], yaml: yaml) { harness in
            let connection = try await HeldConnection.open(port: harness.port)
            let request = "GET /echo HTTP/1.1\r\nHost: proxied.test\r\n\r\n"
            try await connection.send(raw: "PROXY TCP4 203.0.113.9 198.51.100.2 56324 80\r\n" + request)
            for round in 1...2 {
                try await waitUntil(timeout: .seconds(5)) { connection.text.components(separatedBy: "HTTP/1.1 200").count - 1 == round }
                try await waitUntil(timeout: .seconds(5)) { try await harness.proxy.traffic().parkedConnections["test"] == 1 }
                if round == 1 { try await connection.send(raw: request) }
            }
            #expect(connection.text.components(separatedBy: "\"x-forwarded-for\",\"203.0.113.9\"").count - 1 == 2)
            #expect(connection.text.components(separatedBy: "X-Worker: w2").count - 1 == 2)
            await connection.close()
        }
    }
}
