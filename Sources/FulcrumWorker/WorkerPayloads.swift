import NIOCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The JSON body of an `/echo` response.
struct EchoPayload: Encodable {
    var worker: String
    var method: String
    /// The full request-target, query included, exactly as received.
    var path: String
    var version: String
    /// `[name, value]` pairs in the order received, repeated headers kept.
    var headers: [[String]]
    /// The request body decoded as UTF-8 (invalid sequences replaced by U+FFFD).
    var body: String
    var bodyBytes: Int
    /// The request's trailers, `[name, value]` pairs (empty without any).
    var trailers: [[String]]

    enum CodingKeys: String, CodingKey {
        case worker, method, path, version, headers, body, trailers
        case bodyBytes = "body_bytes"
    }
}

/// The JSON body of a `/sink` response.
struct SinkPayload: Encodable {
    var bytes: Int
    /// ``FNV1a64/hexDigest`` of the request body.
    var checksum: String
}

extension ByteBufferAllocator {
    /// Encodes `value` as a single line of JSON (keys sorted, so output is stable) into a new buffer.
    func jsonBuffer(_ value: some Encodable) throws -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        var buffer = self.buffer(capacity: data.count + 1)
        buffer.writeBytes(data)
        buffer.writeStaticString("\n")
        return buffer
    }
}
