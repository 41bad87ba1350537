import NIOCore
import NIOHTTP1

/// `health_check: { grpc: true }`: the probe is gRPC's health-checking protocol,
/// `grpc.health.v1.Health/Check` for the server as a whole (an empty service name), on a
/// stream of the probe's HTTP/2 connection. The server passes when the call ends with
/// `grpc-status: 0` and the answer says SERVING (as Envoy's gRPC health checker decides).
///
/// The two messages are tiny and fixed, so they are written and read here by hand rather than
/// with SwiftProtobuf and generated code: the request is an empty `HealthCheckRequest`, and of
/// the response only field 1, `status`, a varint, is read.
final class GRPCHealthProbe: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    /// What the probe asks: `POST /grpc.health.v1.Health/Check`.
    static func request(authority: String) -> HTTPRequestHead {
        HTTPRequestHead(
            version: .http1_1,
            method: .POST,
            uri: "/grpc.health.v1.Health/Check",
            headers: [
                "host": authority, "content-type": "application/grpc", "te": "trailers",
                "user-agent": "fulcrum-health-check",
            ]
        )
    }

    /// `HealthCheckResponse.ServingStatus.SERVING`.
    static let serving: UInt64 = 1

    private let authority: String
    private let result: EventLoopPromise<HTTPResponseStatus>
    private var headers: HTTPHeaders?
    private var body = ByteBuffer()

    init(authority: String, result: EventLoopPromise<HTTPResponseStatus>) {
        self.authority = authority
        self.result = result
    }

    func channelActive(context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(Self.request(authority: authority))), promise: nil)
        // One length-prefixed message: not compressed, 0 bytes (an empty HealthCheckRequest).
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: [0, 0, 0, 0, 0])))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard head.status == .ok else {
                result.fail(GRPCHealthProbeFailure.httpStatus(head.status.code))
                return
            }
            headers = head.headers
        case .body(var part):
            body.writeBuffer(&part)
        case .end(let trailers):
            // A Trailers-Only answer carries its status in the head.
            let status = trailers?.first(name: "grpc-status") ?? headers?.first(name: "grpc-status")
            guard status == "0" else {
                result.fail(GRPCHealthProbeFailure.grpcStatus(status ?? "none"))
                return
            }
            let serving = Self.servingStatus(in: body)
            if serving == Self.serving {
                result.succeed(.ok)
            } else {
                result.fail(GRPCHealthProbeFailure.notServing(serving))
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        result.fail(ChannelError.eof)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        result.fail(error)
        context.close(promise: nil)
    }

    /// The `status` of the one `HealthCheckResponse` in `body` (gRPC's length-prefixed
    /// message: a flag byte, a 4-byte length, the protobuf bytes); nil when there is none.
    static func servingStatus(in body: ByteBuffer) -> UInt64? {
        var body = body
        guard let compressed = body.readInteger(as: UInt8.self), compressed == 0,
            let length = body.readInteger(as: UInt32.self), var message = body.readSlice(length: Int(length))
        else { return nil }
        // Fields: a key (field number << 3 | wire type), then the value. Only varints and
        // length-delimited values can appear; others are skipped by their type.
        var status: UInt64 = 0  // proto3: an absent field is its default, UNKNOWN
        while message.readableBytes > 0 {
            guard let key = readVarint(&message) else { return nil }
            switch key & 7 {
            case 0:
                guard let value = readVarint(&message) else { return nil }
                if key >> 3 == 1 { status = value }
            case 2:
                guard let length = readVarint(&message), message.readSlice(length: Int(length)) != nil else { return nil }
            default:
                return nil
            }
        }
        return status
    }

    private static func readVarint(_ buffer: inout ByteBuffer) -> UInt64? {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 64, by: 7) {
            guard let byte = buffer.readInteger(as: UInt8.self) else { return nil }
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
        }
        return nil
    }
}

/// Why a gRPC health probe failed, as the log says it.
enum GRPCHealthProbeFailure: Error, CustomStringConvertible {
    case httpStatus(UInt)
    case grpcStatus(String)
    case notServing(UInt64?)

    var description: String {
        switch self {
        case .httpStatus(let code): "HTTP status \(code)"
        case .grpcStatus(let status): "grpc-status \(status)"
        case .notServing(let status?): "health status \(status), not SERVING"
        case .notServing(nil): "no HealthCheckResponse"
        }
    }
}
