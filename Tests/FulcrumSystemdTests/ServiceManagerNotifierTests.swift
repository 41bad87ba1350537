import FulcrumSystemd
import FulcrumTestSupport
import Logging
import ServiceLifecycle
import Testing

@Suite("sd_notify: the notifier and its service, against a datagram socket")
struct ServiceManagerNotifierTests {
    @Test("NOTIFY_SOCKET unset, empty or not a Unix socket: no notifier")
    func environment() {
        #expect(ServiceManagerNotifier(environment: [:]) == nil)
        #expect(ServiceManagerNotifier(environment: ["NOTIFY_SOCKET": ""]) == nil)
        #expect(ServiceManagerNotifier(environment: ["NOTIFY_SOCKET": "vsock:2:1234"]) == nil)
        #expect(ServiceManagerNotifier(environment: ["NOTIFY_SOCKET": "/run/systemd/notify"])?.socketPath == "/run/systemd/notify")
        #expect(ServiceManagerNotifier(environment: ["NOTIFY_SOCKET": "@abstract"])?.socketPath == "@abstract")
    }

    @Test("The states' lines, one datagram per call")
    func datagrams() async throws {
        let socket = try NotifySocket()
        let notifier = try #require(ServiceManagerNotifier(environment: ["NOTIFY_SOCKET": socket.path]))

        #expect(notifier.notify(.ready, .status("serving\nnow")))
        #expect(try await socket.receive() == "READY=1\nSTATUS=serving now")
        #expect(notifier.notify(.reloading))
        let reloading = try #require(try await socket.receive()).split(separator: "\n")
        #expect(reloading.first == "RELOADING=1")
        let microseconds = try #require(reloading.last.flatMap { UInt64($0.dropFirst("MONOTONIC_USEC=".count)) })
        #expect(reloading.last?.hasPrefix("MONOTONIC_USEC=") == true && microseconds > 0)
        #expect(notifier.notify(.stopping))
        #expect(try await socket.receive() == "STOPPING=1")
    }

    @Test("No one listening: the send fails quietly")
    func nobodyListening() {
        let notifier = ServiceManagerNotifier(environment: ["NOTIFY_SOCKET": "/nonexistent/fulcrum-notify"])
        #expect(notifier?.notify(.ready) == false)
    }

    @Test("The service: READY=1 when it runs, STOPPING=1 when graceful shutdown begins")
    func service() async throws {
        let socket = try NotifySocket()
        let notifier = try #require(ServiceManagerNotifier(environment: ["NOTIFY_SOCKET": socket.path]))
        let group = ServiceGroup(
            services: [ServiceManagerNotifierService(notifier: notifier, status: "serving 1 frontend(s)")],
            logger: Logger(label: "test")
        )
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            // Generous: two cores shared with every other suite.
            #expect(try await socket.receive(timeout: .seconds(60)) == "READY=1\nSTATUS=serving 1 frontend(s)")
            // Nothing more until the shutdown.
            #expect(try await socket.receive(timeout: .milliseconds(200)) == nil)
            await group.triggerGracefulShutdown()
            #expect(try await socket.receive(timeout: .seconds(60)) == "STOPPING=1\nSTATUS=stopping: draining connections")
            try await tasks.waitForAll()
        }
    }
}
