import NIOCore
import NIOHTTP1

/// What `WorkerHTTPHandler` knows of a request: its endpoint, decided from its head alone, how its
/// body is consumed, and the handler's state between requests.
extension WorkerHTTPHandler {
    struct Request {
        var head: HTTPRequestHead
        var endpoint: Endpoint
    }

    /// What a request asks for, decided from its head alone.
    enum Endpoint {
        case health
        /// gRPC's health check (`grpc.health.v1.Health/Check`): SERVING while healthy.
        case grpcHealth
        case work(delayOverride: Int?)
        /// `trailers`: the response ends with trailers (`?trailers=1`).
        case echo(status: HTTPResponseStatus, trailers: Bool, setCookie: String?)
        case readControl
        case updateControl
        case sink
        case bytes(count: Int, seed: Int)
        case reject(HTTPResponseStatus, message: String, allow: String?)

        init(routing head: HTTPRequestHead) {
            let target = RequestTarget(head.uri)
            let method = head.method

            func methodNotAllowed(_ allow: String) -> Self {
                .reject(.methodNotAllowed, message: "\(method.rawValue) not allowed on \(target.path)\n", allow: allow)
            }

            do throws(InvalidQueryParameter) {
                switch target.path {
                case "/health":
                    self = (method == .GET || method == .HEAD) ? .health : methodNotAllowed("GET, HEAD")

                case "/grpc.health.v1.Health/Check":
                    self = method == .POST ? .grpcHealth : methodNotAllowed("POST")

                case "/work":
                    // Any method: load generators may well POST. A body is read and discarded.
                    self = .work(delayOverride: try target.intQueryValue("delay_ms", in: 0...3_600_000))

                case "/echo":
                    // 1xx are not final responses, so they can't be echoed.
                    let status = try target.intQueryValue("status", in: 200...599) ?? 200
                    let trailers = try target.intQueryValue("trailers", in: 0...1) == 1
                    // A session cookie of the worker's own, for cookie persistence tests.
                    let setCookie = target.queryValue("set_cookie").map(String.init)
                    let isNameCharacter = { (c: Character) in c.isASCII && (c.isLetter || c.isNumber || c == "_" || c == "-") }
                    if let setCookie, setCookie.isEmpty || !setCookie.allSatisfy(isNameCharacter) {
                        self = .reject(.badRequest, message: "set_cookie must be a cookie name (letters, digits, _ and -)\n", allow: nil)
                        return
                    }
                    self = .echo(status: HTTPResponseStatus(statusCode: status), trailers: trailers, setCookie: setCookie)

                case "/control":
                    switch method {
                    case .GET, .HEAD: self = .readControl
                    case .POST, .PUT: self = .updateControl
                    default: self = methodNotAllowed("GET, HEAD, POST, PUT")
                    }

                case "/sink":
                    self = (method == .POST || method == .PUT) ? .sink : methodNotAllowed("POST, PUT")

                case "/bytes":
                    guard method == .GET || method == .HEAD else {
                        self = methodNotAllowed("GET, HEAD")
                        return
                    }
                    guard let count = try target.intQueryValue("n", in: 0...Int.max) else {
                        self = .reject(.badRequest, message: "query parameter n is required\n", allow: nil)
                        return
                    }
                    let seed = try target.intQueryValue("seed", in: Int.min...Int.max) ?? 0
                    self = .bytes(count: count, seed: seed)

                default:
                    self = .reject(.notFound, message: "no such endpoint: \(target.path)\n", allow: nil)
                }
            } catch {
                self = .reject(.badRequest, message: "\(error.reason)\n", allow: nil)
            }
        }
    }

    /// What happens to the request body while it arrives.
    enum BodyConsumer {
        /// Dropped: endpoints that ignore their body.
        case discard
        /// Kept in memory, up to `limit` bytes.
        case collect(ByteBuffer, limit: Int)
        /// More than the limit arrived; the rest is dropped and the answer is `413`.
        case overflowed
        /// Counted and checksummed, never kept: `/sink` must cope with bodies of any size.
        case hash(FNV1a64, byteCount: Int)

        init(for endpoint: Endpoint) {
            switch endpoint {
            case .echo:
                self = .collect(ByteBuffer(), limit: WorkerHTTPHandler.maxEchoBodySize)
            case .updateControl:
                self = .collect(ByteBuffer(), limit: WorkerHTTPHandler.maxControlBodySize)
            case .sink:
                self = .hash(FNV1a64(), byteCount: 0)
            case .health, .grpcHealth, .work, .readControl, .bytes, .reject:
                self = .discard
            }
        }

        /// Whether the endpoint reads the body (and so whether `Expect: 100-continue` is worth answering).
        var usesBody: Bool {
            if case .discard = self { return false }
            return true
        }

        mutating func consume(_ part: ByteBuffer) {
            switch self {
            case .discard, .overflowed:
                break
            case .collect(var buffer, let limit):
                guard buffer.readableBytes + part.readableBytes <= limit else {
                    self = .overflowed
                    return
                }
                // Release our copy of the buffer before appending, so the append doesn't copy it.
                self = .discard
                if buffer.readableBytes == 0 {
                    buffer = part
                } else {
                    buffer.writeImmutableBuffer(part)
                }
                self = .collect(buffer, limit: limit)
            case .hash(var hash, let byteCount):
                hash.update(part)
                self = .hash(hash, byteCount: byteCount + part.readableBytes)
            }
        }
    }

    /// The progress of a `/bytes` response.
    struct ByteStream {
        var keepAlive: Bool
        var remaining: Int
        /// The first `min(count, streamChunkSize)` bytes of the pattern.
        var template: ByteBuffer

        /// The next body part; a slice of `template`, sharing its storage.
        mutating func nextChunk() -> ByteBuffer {
            let size = min(self.remaining, self.template.readableBytes)
            self.remaining -= size
            return self.template.getSlice(at: self.template.readerIndex, length: size)!
        }
    }

    enum State {
        case idle
        case receiving(Request, BodyConsumer)
        /// A `/work` request waiting for a slot of the worker's capacity.
        case queued(Request, WorkAdmission.Ticket)
        /// A `/work` request holding a slot; the timer answers it.
        case working(Request, Scheduled<Void>)
        case streaming(ByteStream)
        /// The connection is closing (or closed): everything that still arrives is ignored.
        case closing

        var isStreaming: Bool {
            if case .streaming = self { return true }
            return false
        }
    }
}
