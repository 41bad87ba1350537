import NIOConcurrencyHelpers

/// Runs async operations one at a time, in the order they arrive.
///
/// Reloads read the running configuration, build on it and publish the result; two at once
/// would let one overwrite the other's change. (An actor would not do: it is re-entered at
/// every `await` inside the operation.)
package final class SerialAsyncGate: Sendable {
    private struct State {
        var isBusy = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = NIOLockedValueBox(State())

    package init() {}

    package func run<Result: Sendable>(_ operation: () async throws -> Result) async throws -> Result {
        await acquire()
        defer { release() }
        return try await operation()
    }

    private func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let acquired = state.withLockedValue { state -> Bool in
                guard state.isBusy else {
                    state.isBusy = true
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if acquired { continuation.resume() }
        }
    }

    private func release() {
        // Ownership passes straight to the next waiter, so no newcomer can overtake it.
        let next = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiters.isEmpty else {
                state.isBusy = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}
