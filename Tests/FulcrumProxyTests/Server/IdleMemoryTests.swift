import Foundation
import Testing

/// What an idle keep-alive connection costs the `fulcrum` process in resident memory, so that
/// a blow-up (a buffer kept per connection that grew, a leak per request, parking that stopped
/// working) fails CI. Idle connections are parked after `park_after` (1 s by default), and then
/// cost about 1 KiB (`bench/run.sh --idle` measures it against HAProxy and nginx); one left in
/// its channel costs about 10. The bound is between the two, above the noise of a debug build.
@Suite("Memory per idle connection", .serialized)
struct IdleMemoryTests {
    private static let connections = 2_000
    private static let boundKiB = 4.0

    @Test("2,000 idle keep-alive connections, each after one request and parked, cost under 4 KiB each")
    func idleConnections() async throws {
        // The runner holds the client ends; the proxy gets a limit of its own.
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let needed = rlim_t(2 * Self.connections + 1_000)
        guard limit.rlim_max >= needed else {
            print("IdleMemoryTests: skipped, the hard descriptor limit \(limit.rlim_max) is under \(needed)")
            return
        }
        if limit.rlim_cur < needed {
            limit.rlim_cur = needed
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }

        try await withFulcrum(descriptorLimit: Int(needed), globalExtra: "") { fulcrum in
            let before = try fulcrum.residentKiB()
            var held: [HeldConnection] = []
            for _ in 0..<Self.connections {
                let connection = try await HeldConnection.open(port: fulcrum.port)
                try await connection.sendRequest()
                held.append(connection)
            }
            try await waitUntil(timeout: .seconds(30)) {
                held.allSatisfy { $0.text.hasPrefix("HTTP/1.1 200") }
            }
            // Every connection idle past park_after (1 s), and the lot's thread caught up.
            try await Task.sleep(for: .milliseconds(1_500))
            let idle = try fulcrum.residentKiB()
            #expect(held.allSatisfy { !$0.closedByServer }, "the proxy closed idle connections")
            let perConnection = Double(idle - before) / Double(Self.connections)
            print("IdleMemoryTests: \(String(format: "%.2f", perConnection)) KiB per idle connection (RSS \(before) → \(idle) KiB)")
            #expect(perConnection < Self.boundKiB, "\(perConnection) KiB per idle connection")
            for connection in held { await connection.close() }
        }
    }
}
