import NIOCore
import NIOHTTP1
import Testing

@testable import FulcrumProxy

/// The pure parts of gRPC support: which requests are gRPC calls, the status Fulcrum's own
/// answers carry, `grpc-message`'s encoding, and `grpc-timeout`.
@Suite("gRPC: statuses and deadlines")
struct GRPCTests {
    @Test("gRPC calls are application/grpc and its +proto and +json forms, not gRPC-Web")
    func recognizesCalls() {
        func head(_ contentType: String?) -> HTTPRequestHead {
            var head = HTTPRequestHead(version: .http2, method: .POST, uri: "/pkg.Service/Method")
            if let contentType { head.headers.add(name: "Content-Type", value: contentType) }
            return head
        }
        #expect(GRPCLocalResponse.isGRPC(head("application/grpc")))
        #expect(GRPCLocalResponse.isGRPC(head("application/grpc+proto")))
        #expect(GRPCLocalResponse.isGRPC(head("Application/GRPC+json")))
        #expect(!GRPCLocalResponse.isGRPC(head("application/grpc-web+proto")))
        #expect(!GRPCLocalResponse.isGRPC(head("application/json")))
        #expect(!GRPCLocalResponse.isGRPC(head(nil)))
    }

    @Test(
        "statuses follow gRPC's HTTP mapping, but a timeout is DEADLINE_EXCEEDED",
        arguments: [
            (HTTPResponseStatus.badRequest, 13), (.unauthorized, 16), (.forbidden, 7), (.notFound, 12),
            (.tooManyRequests, 14), (.badGateway, 14), (.serviceUnavailable, 14), (.gatewayTimeout, 4),
            (.payloadTooLarge, 2),
        ]
    )
    func statuses(status: HTTPResponseStatus, code: Int) {
        let request = HTTPRequestHead(version: .http2, method: .POST, uri: "/pkg.Service/Method", headers: ["content-type": "application/grpc"])
        let head = GRPCLocalResponse.head(for: LocalResponse(status, "why"), request: request)
        #expect(head.status == .ok)
        #expect(head.headers["grpc-status"] == ["\(code)"])
        #expect(head.headers["grpc-message"] == ["why"])
        #expect(head.headers["content-type"] == ["application/grpc"])
        // HTTP/2 ends the stream with the HEADERS frame; HTTP/1.1 needs a length.
        #expect(head.headers["content-length"].isEmpty)
        let overHTTP1 = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/m", headers: ["content-type": "application/grpc"])
        #expect(GRPCLocalResponse.head(for: LocalResponse(status, "why"), request: overHTTP1).headers["content-length"] == ["0"])
    }

    @Test("grpc-message is percent-encoded outside printable ASCII, and % itself")
    func messageEncoding() {
        #expect(GRPCLocalResponse.percentEncoded("plain text: ok") == "plain text: ok")
        #expect(GRPCLocalResponse.percentEncoded("100% done") == "100%25 done")
        #expect(GRPCLocalResponse.percentEncoded("line\nbreak é") == "line%0Abreak %C3%A9")
    }

    @Test(
        "grpc-timeout: up to 8 digits and a unit; anything else is no deadline",
        arguments: [
            ("1H", TimeAmount.hours(1)), ("2M", .minutes(2)), ("30S", .seconds(30)), ("250m", .milliseconds(250)),
            ("100u", .microseconds(100)), ("99999999n", .nanoseconds(99_999_999)),
        ]
    )
    func deadlines(text: String, expected: TimeAmount) {
        #expect(GRPCDeadline.parse(text) == expected)
    }

    @Test("malformed grpc-timeout values are ignored", arguments: ["", "S", "10", "123456789S", "10s ", "-1S", "1.5S", "10x"])
    func malformedDeadlines(text: String) {
        #expect(GRPCDeadline.parse(text) == nil)
    }

    @Test("a HealthCheckResponse's status is read from its length-prefixed message")
    func healthResponses() {
        #expect(GRPCHealthProbe.servingStatus(in: ByteBuffer(bytes: [0, 0, 0, 0, 2, 0x08, 1])) == 1)
        #expect(GRPCHealthProbe.servingStatus(in: ByteBuffer(bytes: [0, 0, 0, 0, 2, 0x08, 2])) == 2)
        // proto3 leaves out a field at its default: an empty message is UNKNOWN (0).
        #expect(GRPCHealthProbe.servingStatus(in: ByteBuffer(bytes: [0, 0, 0, 0, 0])) == 0)
        // An unknown length-delimited field before the status is skipped.
        #expect(GRPCHealthProbe.servingStatus(in: ByteBuffer(bytes: [0, 0, 0, 0, 6, 0x12, 2, 0x61, 0x62, 0x08, 1])) == 1)
        // Compressed, cut short, or no message at all.
        #expect(GRPCHealthProbe.servingStatus(in: ByteBuffer(bytes: [1, 0, 0, 0, 2, 0x08, 1])) == nil)
        #expect(GRPCHealthProbe.servingStatus(in: ByteBuffer(bytes: [0, 0, 0, 0, 3, 0x08, 1])) == nil)
        #expect(GRPCHealthProbe.servingStatus(in: ByteBuffer()) == nil)
    }
}
