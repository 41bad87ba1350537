import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing

@testable import FulcrumWorker

/// The capacity model: at most `capacity` `/work` requests are worked on at once, the rest queue.
///
/// These tests must hold on a loaded 2-core CI machine, where connecting and scheduling can take
/// a second or more. So wherever a test needs requests to be queued together, it fills the slots
/// with "holders" (`/work` requests that would take a minute, freed by closing their connection)
/// and waits for the queue it needs, instead of hoping that the requests arrive in time. Timing
/// bounds are lower bounds that hold by construction (a request can't finish before its delay, nor
/// before the ones ahead of it have freed a slot) and generous upper bounds.
@Suite("Worker capacity")
struct WorkerCapacityTests {
    // MARK: Queueing

    @Test func requestsBeyondTheCapacityCompleteInWaves() async throws {
        // Two event loops, so that the connections are spread over both: the limit is the worker's,
        // not a connection's or a loop's.
        let behaviour = WorkerBehaviour(delayMilliseconds: 200, capacity: 2)
        try await withWorker(behaviour: behaviour, numberOfThreads: 2) { worker, client in
            let holders = [try await holdSlot(of: worker), try await holdSlot(of: worker)]
            try await waitUntil { worker.workInProgress == (working: 2, waiting: 0) }
            let requests = (0..<6).map { _ in
                Task {
                    let response = try await client.send("/work", to: worker)
                    return (response.status, finished: ContinuousClock.now)
                }
            }
            try await waitUntil { worker.workInProgress == (working: 2, waiting: 6) }

            let opened = ContinuousClock.now
            for holder in holders {
                await holder.close()
            }
            var latencies: [Duration] = []
            for request in requests {
                let (status, finished) = try await request.value
                #expect(status == .ok)
                latencies.append(finished - opened)
            }
            latencies.sort()
            // Two at a time: the k-th to finish (from 0) can't be done before wave k / 2 + 1 is over.
            #expect(latencies[0] >= .milliseconds(200))
            #expect(latencies[2] >= .milliseconds(350))
            #expect(latencies[4] >= .milliseconds(550))
            // Three waves take ≈600 ms. The upper bound is the suite's usual allowance for a machine
            // so loaded that a 150 ms request can take seconds; a waiter left waiting fails it.
            #expect(latencies[5] >= .milliseconds(550))
            #expect(latencies[5] < .seconds(10), "\(latencies)")
            try await waitUntil { worker.workInProgress == (working: 0, waiting: 0) }
        }
    }

    @Test func capacityZeroIsUnlimited() async throws {
        try await withWorker(behaviour: WorkerBehaviour(delayMilliseconds: 3000, capacity: 0)) { worker, client in
            var holders: [RawConnection] = []
            for _ in 0..<6 {
                holders.append(try await holdSlot(of: worker))
            }
            try await waitUntil { worker.workInProgress == (working: 6, waiting: 0) }
            for holder in holders {
                await holder.close()
            }

            let start = ContinuousClock.now
            let latencies = try await withThrowingTaskGroup(of: Duration.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        let response = try await client.send("/work", to: worker)
                        #expect(response.status == .ok)
                        return ContinuousClock.now - start
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(latencies.allSatisfy { $0 >= .milliseconds(3000) })
            // Any limit would make one of them wait a whole delay more. (A long delay, so that the
            // margin covers connecting on a loaded machine.)
            #expect(latencies.allSatisfy { $0 < .milliseconds(6000) }, "\(latencies)")
        }
    }

    @Test func raisingTheCapacityStartsWaitingRequestsAtOnce() async throws {
        try await withWorker(behaviour: WorkerBehaviour(delayMilliseconds: 200, capacity: 1)) { worker, client in
            let holder = try await holdSlot(of: worker)
            try await waitUntil { worker.workInProgress == (working: 1, waiting: 0) }
            let requests = (0..<4).map { _ in
                Task { try await client.send("/work", to: worker) }
            }
            try await waitUntil { worker.workInProgress == (working: 1, waiting: 4) }

            let raised = ContinuousClock.now
            let control = try await client.postControl(#"{"capacity": 5}"#, to: worker)
            #expect(control.status == .ok)
            // Started before `POST /control` answered, not when some request frees a slot. (Not
            // `working == 5`: on a loaded machine they may be done before we look.)
            #expect(worker.workInProgress.waiting == 0)

            for request in requests {
                #expect(try await request.value.status == .ok)
            }
            // At capacity 1 they would still be waiting for the holder's minute.
            #expect(ContinuousClock.now - raised < .seconds(10))
            // (A slot is given back just after its response is written.)
            try await waitUntil { worker.workInProgress == (working: 1, waiting: 0) }
            await holder.close()
        }
    }

    @Test func loweringTheCapacityLetsRunningRequestsFinishAndStartsNoneUntilBelowIt() async throws {
        try await withWorker(behaviour: WorkerBehaviour(delayMilliseconds: 0, capacity: 3)) { worker, client in
            var holders: [RawConnection] = []
            for _ in 0..<3 {
                holders.append(try await holdSlot(of: worker))
            }
            try await waitUntil { worker.workInProgress == (working: 3, waiting: 0) }
            let queued = Task { try await client.send("/work", to: worker) }
            try await waitUntil { worker.workInProgress == (working: 3, waiting: 1) }

            worker.update(WorkerBehaviour(delayMilliseconds: 0, capacity: 1))
            #expect(worker.workInProgress == (working: 3, waiting: 1), "running requests are not taken away")

            await holders[0].close()
            try await waitUntil { worker.workInProgress.working + worker.workInProgress.waiting < 4 }
            #expect(worker.workInProgress == (working: 2, waiting: 1), "2 working is not below a capacity of 1")
            await holders[1].close()
            try await waitUntil { worker.workInProgress.working + worker.workInProgress.waiting < 3 }
            #expect(worker.workInProgress.waiting == 1, "1 working is not below a capacity of 1")

            await holders[2].close()
            #expect(try await queued.value.status == .ok)
            try await waitUntil { worker.workInProgress == (working: 0, waiting: 0) }
        }
    }

    @Test func queuedRequestsTakeTheDelayInForceWhenTheyStart() async throws {
        let behaviour = WorkerBehaviour(delayMilliseconds: 300, capacity: 1)
        try await withWorker(name: "q", behaviour: behaviour) { worker, client in
            let holder = try await holdSlot(of: worker)
            try await waitUntil { worker.workInProgress == (working: 1, waiting: 0) }
            let queued = Task { try await client.send("/work", to: worker) }
            try await waitUntil { worker.workInProgress == (working: 1, waiting: 1) }

            let control = try await client.postControl(#"{"delay_ms": 20}"#, to: worker)
            #expect(control.status == .ok)
            await holder.close()

            // Drawn when its work started, after the change; not when it arrived.
            #expect(try await queued.value.text == "work done by q in 20 ms\n")
        }
    }

    @Test func onlyWorkIsSubjectToTheCapacity() async throws {
        try await withWorker(behaviour: WorkerBehaviour(delayMilliseconds: 0, capacity: 1)) { worker, client in
            let holder = try await holdSlot(of: worker)
            try await waitUntil { worker.workInProgress == (working: 1, waiting: 0) }

            // Each would wait for the holder's minute if it queued.
            #expect(try await client.send(.GET, "/health", to: worker, timeout: .seconds(10)).status == .ok)
            #expect(try await client.send(.GET, "/control", to: worker, timeout: .seconds(10)).status == .ok)
            #expect(try await client.send(.POST, "/echo", to: worker, timeout: .seconds(10)).status == .ok)
            #expect(try await client.send(.GET, "/bytes?n=10", to: worker, timeout: .seconds(10)).status == .ok)
            #expect(worker.workInProgress == (working: 1, waiting: 0))

            await holder.close()
        }
    }

    // MARK: Connections that go away

    @Test func aClientThatDisconnectsWhileQueuedLeavesTheQueue() async throws {
        try await withWorker(behaviour: WorkerBehaviour(delayMilliseconds: 0, capacity: 1)) { worker, client in
            let holder = try await holdSlot(of: worker)
            try await waitUntil { worker.workInProgress == (working: 1, waiting: 0) }

            let quitter = try await RawConnection.connect(to: worker, group: MultiThreadedEventLoopGroup.singleton)
            try await quitter.send("GET /work HTTP/1.1\r\nHost: w\r\n\r\n")
            try await waitUntil { worker.workInProgress == (working: 1, waiting: 1) }
            await quitter.close()

            // Taken out of the queue straight away, not granted a slot once the holder is done.
            try await waitUntil { worker.workInProgress.waiting == 0 }
            #expect(worker.workInProgress == (working: 1, waiting: 0))

            await holder.close()
            try await waitUntil { worker.workInProgress == (working: 0, waiting: 0) }
            // The slot is free: capacity 1 still serves.
            #expect(try await client.send(.GET, "/work", to: worker, timeout: .seconds(10)).status == .ok)
        }
    }

    @Test func aClientThatDisconnectsWhileWorkedOnFreesItsSlot() async throws {
        try await withWorker(behaviour: WorkerBehaviour(delayMilliseconds: 0, capacity: 1)) { worker, client in
            let holder = try await holdSlot(of: worker)
            try await waitUntil { worker.workInProgress == (working: 1, waiting: 0) }
            await holder.close()

            // Long before its minute is up.
            try await waitUntil { worker.workInProgress == (working: 0, waiting: 0) }
            #expect(try await client.send(.GET, "/work", to: worker, timeout: .seconds(10)).status == .ok)
        }
    }

    @Test func manyClientsDisconnectingInAndOutOfTheQueueLeakNoSlot() async throws {
        // Closes connections at every stage (queued, just granted, working) across two loops; whatever
        // the interleaving, every slot must come back.
        let behaviour = WorkerBehaviour(delayMilliseconds: 5, capacity: 2)
        try await withWorker(behaviour: behaviour, numberOfThreads: 2) { worker, client in
            let group = MultiThreadedEventLoopGroup.singleton
            for round in 0..<10 {
                var connections: [RawConnection] = []
                for _ in 0..<8 {
                    let connection = try await RawConnection.connect(to: worker, group: group)
                    try await connection.send("GET /work HTTP/1.1\r\nHost: w\r\n\r\n")
                    connections.append(connection)
                }
                try await Task.sleep(for: .milliseconds(round * 2))
                for connection in connections {
                    await connection.close()
                }
            }
            try await waitUntil { worker.workInProgress == (working: 0, waiting: 0) }
            for _ in 0..<3 {
                #expect(try await client.send(.GET, "/work", to: worker, timeout: .seconds(10)).status == .ok)
            }
        }
    }

    // MARK: Control

    @Test func postControlSetsTheCapacityAndKeepsTheRest() async throws {
        try await withWorker(behaviour: WorkerBehaviour(delayMilliseconds: 42, errorRate: 0.25)) { worker, client in
            let control = try await client.postControl(#"{"capacity": 3}"#, to: worker)
            #expect(control.status == .ok)
            let expected = WorkerBehaviour(delayMilliseconds: 42, errorRate: 0.25, capacity: 3)
            #expect(try JSONDecoder().decode(WorkerBehaviour.self, from: Data(control.body.readableBytesView)) == expected)
            #expect(worker.behaviour == expected)
            #expect(try await client.send("/control", to: worker).jsonObject()["capacity"] as? Int == 3)

            // And the other way round: another field changes, the capacity stays.
            _ = try await client.postControl(#"{"delay_ms": 7}"#, to: worker)
            #expect(worker.behaviour.capacity == 3)
        }
    }

    @Test func postControlRejectsANegativeCapacity() async throws {
        let behaviour = WorkerBehaviour(delayMilliseconds: 5, capacity: 2)
        try await withWorker(behaviour: behaviour) { worker, client in
            let response = try await client.postControl(#"{"capacity": -1}"#, to: worker)
            #expect(response.status == .badRequest)
            #expect(response.text.contains("capacity must not be negative"))
            #expect(worker.behaviour == behaviour)
        }
    }

    @Test func capacityRoundTripsThroughJSON() throws {
        let behaviour = WorkerBehaviour(delayMilliseconds: 3, capacity: 4)
        let decoded = try JSONDecoder().decode(WorkerBehaviour.self, from: JSONEncoder().encode(behaviour))
        #expect(decoded == behaviour)
        let partial = try JSONDecoder().decode(WorkerBehaviour.self, from: Data(#"{"capacity": 4}"#.utf8))
        #expect(partial == WorkerBehaviour(capacity: 4))
        #expect(WorkerBehaviour().capacity == 0)
        #expect(WorkerBehaviour(capacity: -1).validationProblem == "capacity must not be negative")
        #expect(WorkerBehaviour(capacity: 0).validationProblem == nil)
    }
}

@Suite("WorkAdmission")
struct WorkAdmissionTests {
    @Test func admitsUpToTheCapacityThenQueuesInOrder() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let admission = WorkAdmission(capacity: 2)
        let started = StartLog()

        #expect(admission.acquire(on: loop, whenAdmitted: started.record(0)) == .admitted)
        #expect(admission.acquire(on: loop, whenAdmitted: started.record(1)) == .admitted)
        for index in 2..<5 {
            #expect(admission.acquire(on: loop, whenAdmitted: started.record(index)) != .admitted)
        }
        #expect(admission.counts == (working: 2, waiting: 3))

        admission.release()
        try await loop.flush()
        #expect(started.indices == [2])
        #expect(admission.counts == (working: 2, waiting: 2))

        admission.release()
        admission.release()
        try await loop.flush()
        #expect(started.indices == [2, 3, 4])
        #expect(admission.counts == (working: 2, waiting: 0))
    }

    @Test func raisingStartsWaitersAndLoweringStartsNoneUntilBelowTheLimit() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let admission = WorkAdmission(capacity: 1)
        let started = StartLog()
        #expect(admission.acquire(on: loop, whenAdmitted: started.record(0)) == .admitted)
        for index in 1..<6 {
            _ = admission.acquire(on: loop, whenAdmitted: started.record(index))
        }

        admission.setCapacity(3)
        try await loop.flush()
        #expect(started.indices == [1, 2])
        #expect(admission.counts == (working: 3, waiting: 3))

        admission.setCapacity(1)
        admission.release()
        admission.release()
        try await loop.flush()
        #expect(started.indices == [1, 2], "two of three finished, but one is still working")
        admission.release()
        try await loop.flush()
        #expect(started.indices == [1, 2, 3])
        #expect(admission.counts == (working: 1, waiting: 2))

        admission.setCapacity(0)
        try await loop.flush()
        #expect(started.indices == [1, 2, 3, 4, 5])
        #expect(admission.counts == (working: 3, waiting: 0))
    }

    @Test func cancelRemovesOnlyAWaiterStillWaiting() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let admission = WorkAdmission(capacity: 1)
        let started = StartLog()
        #expect(admission.acquire(on: loop, whenAdmitted: started.record(0)) == .admitted)
        guard case .queued(let cancelled) = admission.acquire(on: loop, whenAdmitted: started.record(1)),
            case .queued(let granted) = admission.acquire(on: loop, whenAdmitted: started.record(2))
        else {
            Issue.record("expected both to queue")
            return
        }

        #expect(admission.cancel(cancelled))
        #expect(!admission.cancel(cancelled))
        #expect(admission.counts == (working: 1, waiting: 1))

        admission.release()
        // Granted: too late to cancel; its callback now owns the slot.
        #expect(!admission.cancel(granted))
        try await loop.flush()
        #expect(started.indices == [2])
        #expect(admission.counts == (working: 1, waiting: 0))
    }

    @Test func resumesEachWaiterOnItsOwnEventLoop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = [group.next(), group.next()]
        let admission = WorkAdmission(capacity: 1)
        let resumedOnOwnLoop = StartLog()
        #expect(admission.acquire(on: loops[0], whenAdmitted: {}) == .admitted)
        for (index, loop) in loops.enumerated() {
            _ = admission.acquire(on: loop) {
                if loop.inEventLoop { resumedOnOwnLoop.record(index)() }
            }
        }
        admission.setCapacity(0)
        for loop in loops { try await loop.flush() }
        #expect(Set(resumedOnOwnLoop.indices) == [0, 1])
        try await group.shutdownGracefully()
    }
}

// MARK: - Helpers

/// Records which waiters were started, in order.
private final class StartLog: Sendable {
    private let started = Mutex<[Int]>([])

    var indices: [Int] { self.started.withLock { $0 } }

    func record(_ index: Int) -> @Sendable () -> Void {
        { self.started.withLock { $0.append(index) } }
    }
}

extension EventLoop {
    /// Returns once the tasks `execute`d on this loop before the call have run.
    fileprivate func flush() async throws {
        try await self.submit {}.get()
    }
}

/// Occupies one slot of `worker`'s capacity (or queues for one) until the returned connection is
/// closed: a `/work` request that would take a minute.
private func holdSlot(of worker: WorkerServer) async throws -> RawConnection {
    let connection = try await RawConnection.connect(to: worker, group: MultiThreadedEventLoopGroup.singleton)
    try await connection.send("GET /work?delay_ms=60000 HTTP/1.1\r\nHost: w\r\n\r\n")
    return connection
}

/// Polls `condition` until it holds; records an issue and throws if it doesn't within `timeout`.
private func waitUntil(
    timeout: Duration = .seconds(15),
    sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("condition not met within \(timeout)", sourceLocation: sourceLocation)
            throw CancellationError()
        }
        try await Task.sleep(for: .milliseconds(5))
    }
}

extension HTTPClient {
    /// `POST /control` with `json` as the body.
    fileprivate func postControl(_ json: String, to worker: WorkerServer) async throws -> CollectedResponse {
        try await self.send(.POST, "/control", to: worker, body: .bytes(ByteBuffer(string: json)))
    }

    /// `send(_:_:to:)` with a shorter deadline, for requests that would hang if they queued.
    fileprivate func send(
        _ method: HTTPMethod,
        _ path: String,
        to worker: WorkerServer,
        timeout: TimeAmount
    ) async throws -> CollectedResponse {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(worker.port)\(path)")
        request.method = method
        let response = try await self.execute(request, timeout: timeout)
        let body = try await response.body.collect(upTo: 1 << 20)
        return CollectedResponse(status: response.status, headers: response.headers, body: body)
    }
}
