import GRPCCore
import Synchronization

/// grpc-swift's example echo service, with what the tests need on top: `get` of
/// `sleep N` answers after N ms, and `fail` with NOT_FOUND; `expand` of `slow …` writes a
/// word every 100 ms; calls whose client cancelled them (a reset stream) are counted.
struct EchoService: Echo_Echo.SimpleServiceProtocol {
    final class Counters: Sendable {
        /// Calls that saw their RPC cancelled (gRPC tells the handler; its task goes on).
        let cancelled = Atomic(0)
        /// Calls begun, of every kind.
        let calls = Atomic(0)
    }

    let counters = Counters()

    func get(request: Echo_EchoRequest, context: ServerContext) async throws -> Echo_EchoResponse {
        counters.calls.add(1, ordering: .relaxed)
        if request.text == "fail" {
            throw RPCError(code: .notFound, message: "nothing called fail")
        }
        if request.text.hasPrefix("sleep "), let milliseconds = Int(request.text.dropFirst(6)) {
            for _ in 0..<(milliseconds / 20) {
                try checkCancellation(context)
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        return .with { $0.text = request.text }
    }

    func expand(request: Echo_EchoRequest, response: RPCWriter<Echo_EchoResponse>, context: ServerContext) async throws {
        counters.calls.add(1, ordering: .relaxed)
        let slow = request.text.hasPrefix("slow ")
        for word in request.text.split(separator: " ") {
            try checkCancellation(context)
            try await response.write(.with { $0.text = String(word) })
            if slow { try await Task.sleep(for: .milliseconds(100)) }
        }
    }

    func collect(request: RPCAsyncSequence<Echo_EchoRequest, any Error>, context: ServerContext) async throws -> Echo_EchoResponse {
        counters.calls.add(1, ordering: .relaxed)
        let messages = try await request.reduce(into: []) { $0.append($1.text) }
        return .with { $0.text = messages.joined(separator: " ") }
    }

    func update(
        request: RPCAsyncSequence<Echo_EchoRequest, any Error>,
        response: RPCWriter<Echo_EchoResponse>,
        context: ServerContext
    ) async throws {
        counters.calls.add(1, ordering: .relaxed)
        for try await message in request {
            try await response.write(.with { $0.text = message.text })
        }
    }

    /// Counts, and ends, a call whose RPC was cancelled.
    private func checkCancellation(_ context: ServerContext) throws {
        if context.cancellation.isCancelled {
            counters.cancelled.add(1, ordering: .relaxed)
            throw CancellationError()
        }
    }
}
