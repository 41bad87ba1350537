import Foundation
import NIOCore
import Testing

@testable import FulcrumWorker

@Suite("FNV-1a 64")
struct FNV1a64Tests {
    @Test(arguments: [
        ("", "cbf29ce484222325"),
        ("a", "af63dc4c8601ec8c"),
        ("foobar", "85944171f73967e8"),
        ("hello", "a430d84680aabd0b"),
    ])
    func matchesReferenceVectors(input: String, hex: String) {
        var hash = FNV1a64()
        hash.update(Array(input.utf8))
        #expect(hash.hexDigest == hex)
        #expect(hash.digest == UInt64(hex, radix: 16))
    }

    @Test func allInputPathsAgreeAndAreIncremental() {
        let bytes = pseudoRandomBytes(count: 100_003, seed: 5)

        var fromArray = FNV1a64()
        fromArray.update(bytes)

        var fromSequence = FNV1a64()  // not contiguous: takes the byte-by-byte path
        fromSequence.update(bytes.lazy.map { $0 })

        var fromBuffer = FNV1a64()
        var buffer = ByteBuffer(bytes: bytes)
        buffer.moveReaderIndex(forwardBy: 3)
        fromBuffer.update(bytes[..<3])
        fromBuffer.update(buffer)
        #expect(buffer.readerIndex == 3, "hashing must not consume the buffer")

        #expect(fromSequence == fromArray)
        #expect(fromBuffer == fromArray)
    }

    @Test func hexDigestIsZeroPadded() {
        // Find an input whose digest has a leading zero nibble.
        var hash = FNV1a64()
        var index = 0
        while hash.digest >> 60 != 0 {
            hash = FNV1a64()
            hash.update(String(index).utf8)
            index += 1
        }
        #expect(hash.hexDigest.count == 16)
        #expect(hash.hexDigest.hasPrefix("0"))
    }
}

@Suite("WorkerBehaviour")
struct WorkerBehaviourTests {
    @Test func encodesWithSnakeCaseKeys() throws {
        let behaviour = WorkerBehaviour(
            delayMilliseconds: 1,
            jitterMilliseconds: 2,
            errorRate: 0.5,
            healthy: false,
            capacity: 3
        )
        let object = try #require(
            try JSONSerialization.jsonObject(with: JSONEncoder().encode(behaviour)) as? [String: Any]
        )
        #expect(Set(object.keys) == ["delay_ms", "jitter_ms", "error_rate", "healthy", "capacity"])
        #expect(object["capacity"] as? Int == 3)
        #expect(try JSONDecoder().decode(WorkerBehaviour.self, from: JSONEncoder().encode(behaviour)) == behaviour)
    }

    @Test func missingKeysDecodeToDefaults() throws {
        let decoded = try JSONDecoder().decode(WorkerBehaviour.self, from: Data(#"{"jitter_ms": 4}"#.utf8))
        #expect(decoded == WorkerBehaviour(jitterMilliseconds: 4))
    }

    @Test func sampledDelaysStayWithinTheJitterWindow() {
        let behaviour = WorkerBehaviour(delayMilliseconds: 10, jitterMilliseconds: 4)
        let samples = (0..<2_000).map { _ in behaviour.sampleDelayMilliseconds() }
        #expect(samples.allSatisfy { (6...14).contains($0) })
        // Uniform over 9 values: 2,000 samples hit both ends.
        #expect(samples.contains(6) && samples.contains(14))

        let clamped = WorkerBehaviour(delayMilliseconds: 2, jitterMilliseconds: 10)
        #expect((0..<500).allSatisfy { _ in clamped.sampleDelayMilliseconds() >= 0 })
    }

    @Test func failureIsDecidedByTheErrorRate() {
        #expect((0..<1_000).allSatisfy { _ in WorkerBehaviour(errorRate: 1).sampleFailure() })
        #expect((0..<1_000).allSatisfy { _ in !WorkerBehaviour(errorRate: 0).sampleFailure() })
        let failures = (0..<10_000).count { _ in WorkerBehaviour(errorRate: 0.3).sampleFailure() }
        #expect((2_500...3_500).contains(failures))
    }
}

@Suite("Request targets and the /bytes pattern")
struct RequestTargetTests {
    @Test func splitsPathAndQuery() throws {
        let target = RequestTarget("/bytes?n=10&seed=-3&flag&n=99#fragment")
        #expect(target.path == "/bytes")
        #expect(target.queryValue("n") == "10")
        #expect(target.queryValue("flag") == "")
        #expect(target.queryValue("missing") == nil)
        #expect(try target.intQueryValue("seed", in: Int.min...Int.max) == -3)
        #expect(throws: InvalidQueryParameter.self) { try target.intQueryValue("seed", in: 0...10) }
    }

    @Test func acceptsAbsoluteForm() {
        #expect(RequestTarget("http://worker:8080/work?delay_ms=1").path == "/work")
        #expect(RequestTarget("http://worker:8080").path == "/")
        #expect(RequestTarget("/plain").queryItems.isEmpty)
    }

    @Test func patternIsTheDocumentedFormula() {
        #expect(WorkerServer.patternByte(index: 0, seed: 7) == 7)
        #expect(WorkerServer.patternByte(index: 1, seed: 7) == 38)
        #expect(WorkerServer.patternByte(index: 9, seed: 250) == UInt8((9 * 31 + 250) % 256))
        #expect(WorkerServer.patternByte(index: 1, seed: -1) == 30)
        // The streaming code relies on the period being 256 and on chunks starting at a period boundary.
        #expect(WorkerHTTPHandler.streamChunkSize % 256 == 0)
        #expect(
            (0..<1024).allSatisfy {
                WorkerServer.patternByte(index: $0, seed: 5) == WorkerServer.patternByte(index: $0 + 256, seed: 5)
            }
        )
    }
}
