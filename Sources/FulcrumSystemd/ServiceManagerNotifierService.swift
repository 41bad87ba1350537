import ServiceLifecycle

/// Tells the service manager that Fulcrum serves (`READY=1`) as soon as it runs, and that it
/// stops (`STOPPING=1`) when graceful shutdown begins.
///
/// Add it once the frontends listen (`ProxyServer.start` binds them before the service group
/// runs), and last: the group shuts services down in reverse order, so this one hears of the
/// shutdown first and the manager knows before the drain starts.
package struct ServiceManagerNotifierService: Service {
    private let notifier: ServiceManagerNotifier
    private let status: String

    package init(notifier: ServiceManagerNotifier, status: String) {
        self.notifier = notifier
        self.status = status
    }

    package func run() async throws {
        notifier.notify(.ready, .status(status))
        // Returns when graceful shutdown begins (or the task is cancelled).
        try? await gracefulShutdown()
        notifier.notify(.stopping, .status("stopping: draining connections"))
    }
}
