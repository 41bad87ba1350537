import Testing

@testable import FulcrumBalancing

@Suite struct BalancedServerTests {
    @Test func defaults() {
        let server = BalancedServer(name: "a")
        #expect(server.name == "a")
        #expect(server.weight == 1)
        #expect(server.inFlight == 0)
        #expect(server.isAvailable)
    }

    @Test func inFlightCountsStartedMinusFinished() {
        let server = BalancedServer(name: "a")
        server.requestStarted()
        server.requestStarted()
        server.requestStarted()
        #expect(server.inFlight == 3)
        server.requestFinished()
        #expect(server.inFlight == 2)
        server.requestFinished()
        server.requestFinished()
        #expect(server.inFlight == 0)
    }

    @Test func inFlightIsSharedAcrossConcurrentTasks() async {
        let server = BalancedServer(name: "a")
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    for _ in 0..<10_000 { server.requestStarted() }
                    for _ in 0..<5_000 { server.requestFinished() }
                }
            }
        }
        #expect(server.inFlight == 20_000)
    }

    @Test func weightIsClamped() {
        #expect(BalancedServer(name: "a", weight: -3).weight == 0)
        #expect(BalancedServer(name: "a", weight: 0).weight == 0)
        #expect(BalancedServer(name: "a", weight: 256).weight == 256)
        #expect(BalancedServer(name: "a", weight: .max).weight == BalancedServer.maximumWeight)

        let server = BalancedServer(name: "a", weight: 5)
        server.setWeight(7)
        #expect(server.weight == 7)
        server.setWeight(-1)
        #expect(server.weight == 0)
        server.setWeight(.max)
        #expect(server.weight == BalancedServer.maximumWeight)
    }

    @Test func availability() {
        let server = BalancedServer(name: "a")
        server.setHealthy(false)
        #expect(!server.isAvailable)
        server.setHealthy(true)
        #expect(server.isAvailable)
    }
}
