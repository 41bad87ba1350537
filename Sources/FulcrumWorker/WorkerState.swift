import NIOCore
import Synchronization

/// The state one ``WorkerServer`` shares with the handlers of all its connections.
///
/// Connections live on different event loops, so everything mutable here is behind a `Mutex` or an
/// `Atomic`. None of it is on a hot path that would warrant anything cleverer.
final class WorkerState: Sendable {
    let name: String

    private let _behaviour: Mutex<WorkerBehaviour>
    private let connections = Mutex(ConnectionRegistry())
    /// The `/work` slots of ``WorkerBehaviour/capacity``. Its capacity is only ever changed together
    /// with the behaviour, under the behaviour's lock (see ``setBehaviour(_:)``).
    let admission: WorkAdmission

    /// Responses begun (heads written), all endpoints and status codes.
    let requestsServed = Atomic<Int>(0)
    /// TCP connections accepted, including ones closed straight away during shutdown.
    let connectionsAccepted = Atomic<Int>(0)
    /// Body bytes handed to the channel by `/bytes`. Lets tests check that the stream obeys
    /// backpressure instead of queueing the whole response.
    let streamedBodyBytes = Atomic<Int>(0)

    init(name: String, behaviour: WorkerBehaviour) {
        self.name = name
        self._behaviour = Mutex(behaviour)
        self.admission = WorkAdmission(capacity: behaviour.capacity)
    }

    var behaviour: WorkerBehaviour {
        self._behaviour.withLock { $0 }
    }

    func setBehaviour(_ behaviour: WorkerBehaviour) {
        self._behaviour.withLock {
            $0 = behaviour
            // Under the same lock, so that two concurrent updates can't leave the admission with the
            // capacity of the one that lost. (The admission never takes the behaviour's lock.)
            self.admission.setCapacity(behaviour.capacity)
        }
    }

    /// Applies a partial update atomically, so that concurrent `POST /control` requests touching
    /// different fields don't undo each other.
    ///
    /// - Returns: the new behaviour, or the reason the update was rejected (nothing is changed then).
    func applyUpdate(_ update: WorkerBehaviour.Update) -> Result<WorkerBehaviour, InvalidBehaviour> {
        self._behaviour.withLock { behaviour in
            var updated = behaviour
            updated.apply(update)
            if let problem = updated.validationProblem {
                return .failure(InvalidBehaviour(reason: problem))
            }
            behaviour = updated
            self.admission.setCapacity(updated.capacity)
            return .success(updated)
        }
    }

    // MARK: Connection tracking

    /// Remembers `channel` so that ``beginShutdown()`` can close it.
    ///
    /// - Returns: `false` if the worker is shutting down; the caller must close the channel.
    func register(_ channel: any Channel) -> Bool {
        let registered = self.connections.withLock { registry in
            guard !registry.isShuttingDown else { return false }
            registry.open[ObjectIdentifier(channel)] = channel
            return true
        }
        if registered {
            channel.closeFuture.whenComplete { _ in
                self.connections.withLock { _ = $0.open.removeValue(forKey: ObjectIdentifier(channel)) }
            }
        }
        return registered
    }

    /// Stops registering new connections and returns those currently open.
    ///
    /// Both happen under one lock, so a connection is either in the returned list or refused by
    /// ``register(_:)``: none can slip through while the worker shuts down.
    func beginShutdown() -> [any Channel] {
        self.connections.withLock { registry in
            registry.isShuttingDown = true
            return Array(registry.open.values)
        }
    }

    private struct ConnectionRegistry {
        var isShuttingDown = false
        var open: [ObjectIdentifier: any Channel] = [:]
    }
}

/// A `POST /control` update that would leave the behaviour invalid.
struct InvalidBehaviour: Error {
    var reason: String
}
