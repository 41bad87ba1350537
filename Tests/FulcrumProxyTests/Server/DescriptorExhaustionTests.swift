import Foundation
import FulcrumWorker
import NIOPosix
import Testing

/// The `fulcrum` executable under a low descriptor limit (`ulimit -n`), with more client
/// connections than it has descriptors: it must not spin, must count and log the failed
/// accepts, and must serve the clients that waited once descriptors are free again.
///
/// A separate process, because the limit is per process: lowered in the test runner, it would
/// starve every suite running beside this one.
@Suite("Descriptor exhaustion", .serialized)
struct DescriptorExhaustionTests {
    @Test("out of descriptors: accept backs off, is counted and logged, and recovers")
    func acceptBacksOff() async throws {
        // A cap far above the descriptors, so that `accept` itself runs out.
        try await withFulcrum(descriptorLimit: 48, globalExtra: "  max_connections: 100000") { fulcrum in
            let held = try await fulcrum.holdConnections(60)
            try await Task.sleep(for: .milliseconds(500))
            let cpu = try await fulcrum.cpuShare(over: .seconds(2))
            #expect(cpu < 0.2, "fulcrum used \(Int(cpu * 100))% of a core while out of descriptors")

            let waiting = try await HeldConnection.open(port: fulcrum.port)
            try await waiting.sendRequest()
            for connection in held { await connection.close() }
            #expect(try await waiting.waitForResponse(timeout: .seconds(5)), "the waiting client was not served")
            await waiting.close()

            let metrics = try await fulcrum.metrics()
            let errors = Self.value(of: #"fulcrum_accept_errors_total{frontend="web",reason="EMFILE"}"#, in: metrics)
            #expect((errors ?? 0) > 0, "no EMFILE counted:\n\(metrics)")
            // Logged, but at a limited rate: not once per failed accept.
            let logged = fulcrum.output.components(separatedBy: "cannot accept connections").count - 1
            #expect((1...3).contains(logged), "logged \(logged) times:\n\(fulcrum.output)")
        }
    }

    @Test("max_connections: auto keeps accept below the descriptor limit")
    func automaticCap() async throws {
        // 64 descriptors: auto is 24 connections.
        try await withFulcrum(descriptorLimit: 64, globalExtra: "") { fulcrum in
            let held = try await fulcrum.holdConnections(40)
            try await Task.sleep(for: .milliseconds(500))
            let cpu = try await fulcrum.cpuShare(over: .seconds(1))
            #expect(cpu < 0.2, "fulcrum used \(Int(cpu * 100))% of a core at its cap")
            // Room for the admin API: the cap left descriptors free.
            let metrics = try await fulcrum.metrics()
            let reached = Self.value(of: #"fulcrum_connection_limit_reached_total{frontend="web",limit="global"}"#, in: metrics)
            #expect((reached ?? 0) > 0, "no pause at the cap counted:\n\(metrics)")
            #expect(!metrics.contains("fulcrum_accept_errors_total"), "accept ran out of descriptors:\n\(metrics)")

            let waiting = try await HeldConnection.open(port: fulcrum.port)
            try await waiting.sendRequest()
            for connection in held { await connection.close() }
            #expect(try await waiting.waitForResponse(timeout: .seconds(5)), "the waiting client was not served")
            await waiting.close()
        }
    }

    /// The value of the sample named exactly `series` in Prometheus text.
    private static func value(of series: String, in text: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last!) }
    }
}
