import FulcrumConfig
import FulcrumProxy
import NIOCore
import NIOEmbedded
import NIOHTTP1

// libFuzzer target: bytes as a client sends them, through the proxy's request path without
// sockets. The bytes go through the HTTP/1 decoder of a client connection (llhttp, with the
// frontend's limits), and every request head it yields takes `RequestHeadPath`: RFC 9112's
// rules, the preflight, the ACLs and rules of the fixed configuration below, and the head the
// server receives (or the answer the client gets).
//
// Beyond crashes, it checks what must hold for any input: the forwarded head reads back, with
// the same decoder, as exactly one request with the target, `Host` and body framing Fulcrum
// routed and framed it by (no smuggling, no header injected); an answer's head is one
// well-formed head. Built and run by Fuzz/run.sh (docs/fuzzing.md).

/// Every kind of ACL, every rule action and redirect placeholder; a second frontend redirects
/// everything to HTTPS.
private let configuration = """
    frontends:
      - name: edge
        listen: "127.0.0.1:18080"
        limits: { max_header_size: 8k, max_body_size: 1MB }
        acls:
          api: { path_prefix: [/api/, /v2/] }
          exact: { path: /login }
          static: { path_regex: '\\.(css|js|png)$' }
          shop: { host: [shop.example.com, "*.shop.example.com", "[::1]"] }
          posts: { method: [POST, PUT, PURGE] }
          beta: { header: { name: X-Beta, equals: "1" } }
          bearer: { header: { name: Authorization, prefix: "Bearer " } }
          mobile: { header: { name: User-Agent, contains: Mobile } }
          anonymous: { header: { name: Cookie, exists: false } }
          office: { src: ["203.0.113.0/24", "2001:db8::/32"] }
          old: { path_prefix: /old/ }
          trap: { path_prefix: /wp-admin }
        rules:
          - { set_header: { name: X-Env, value: prod } }
          - { del_header: X-Internal }
          - { set_header: { name: X-Beta-User, value: "yes" }, if: beta }
          - { redirect: { to: "https://{host}/new{path}{query}", code: 308 }, if: old }
          - { redirect: { to: "https://example.com{uri}", code: 301 }, if: exact, unless: bearer }
          - { tarpit: 1s, if: trap }
          - { deny: 403, if: posts, unless: office }
          - { use_backend: api, if: [api, beta] }
          - { use_backend: api, if: api, unless: anonymous }
          - { deny: 429, if: [mobile, static] }
          - { use_backend: shop, if: shop }
        default_backend: web
      - name: plain
        listen: "127.0.0.1:18081"
        redirect_to_https: 8443
        default_backend: web
    backends:
      - name: web
        servers: [{ name: web1, address: "127.0.0.1:9" }]
      - name: api
        servers: [{ name: api1, address: "127.0.0.1:9" }]
      - name: shop
        servers: [{ name: shop1, address: "[::1]:9" }]
    """

private let paths: [RequestHeadPath] = {
    do {
        let snapshot = try RuntimeSnapshot(config: ConfigLoader.load(yaml: configuration))
        let peers = [
            try SocketAddress(ipAddress: "203.0.113.7", port: 40000),
            try SocketAddress(ipAddress: "2001:db8::7", port: 40000),
        ]
        return [
            RequestHeadPath(snapshot: snapshot, frontend: "edge", peer: peers[0], isSecure: false)!,
            RequestHeadPath(snapshot: snapshot, frontend: "edge", peer: peers[1], isSecure: true)!,
            RequestHeadPath(snapshot: snapshot, frontend: "plain", peer: peers[0], isSecure: false)!,
        ]
    } catch {
        fatalError("the fuzz target's configuration does not load: \(error)")
    }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequestHead(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: size))
    // The decoder is the same for every path here (the frontends' limits differ, so each
    // path decodes with its own).
    for path in paths {
        for head in decodedHeads(input, decoder: path.makeRequestDecoder()) {
            check(path.process(head), for: head)
        }
    }
    checkRequestLineScanner(input, decoder: paths[0].makeRequestDecoder())
    return 0
}

/// The request heads a client connection's decoder reads from `input` before it stops (at the
/// end of the input, at an upgrade, or at an error).
private func decodedHeads(_ input: ByteBuffer, decoder: HTTPRequestDecoder) -> [HTTPRequestHead] {
    decodedParts(input, decoder: decoder).heads.compactMap { part in
        if case .head(let head) = part { head } else { nil }
    }
}

private func decodedParts<Decoder: ByteToMessageDecoder>(
    _ input: ByteBuffer,
    decoder: Decoder
) -> (heads: [Decoder.InboundOut], failed: Bool) {
    let channel = EmbeddedChannel()
    defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
    do {
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(decoder))
    } catch {
        fatalError("cannot add the decoder: \(error)")
    }
    var failed = false
    do {
        try channel.writeInbound(input)
    } catch {
        failed = true
    }
    var parts: [Decoder.InboundOut] = []
    while let part = try? channel.readInbound(as: Decoder.InboundOut.self) {
        parts.append(part)
    }
    return (parts, failed)
}

// MARK: What must hold

private func check(_ outcome: RequestHeadPath.Outcome, for request: HTTPRequestHead) {
    switch outcome {
    case .forwarded(let head, let host, let contentLength, let isChunked):
        checkForwarded(head, host: host, contentLength: contentLength, isChunked: isChunked, request: request)
    case .answered(let status, let head):
        checkWellFormed(head, what: "the answer \(status) to \(request)")
        let prefix = "HTTP/1.1 \(status) "
        guard head.getString(at: head.readerIndex, length: prefix.utf8.count) == prefix else {
            failure("the answer to \(request) does not start with \(prefix)", head)
        }
    }
}

private func checkForwarded(_ bytes: ByteBuffer, host: String?, contentLength: Int?, isChunked: Bool, request: HTTPRequestHead) {
    checkWellFormed(bytes, what: "the forwarded head of \(request)")
    var limits = NIOHTTPDecoderLimitConfiguration()
    limits.maxHeaderListSize = 1 << 20
    limits.maxHeaderFieldSize = 1 << 20
    let decoded = decodedParts(bytes, decoder: HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes, limitConfiguration: limits))
    let heads = decoded.heads.compactMap { part -> HTTPRequestHead? in
        if case .head(let head) = part { head } else { nil }
    }
    guard !decoded.failed, heads.count == 1, let forwarded = heads.first else {
        failure("the forwarded head of \(request) does not read back as one request: \(heads)", bytes)
    }
    let hosts = forwarded.headers["host"]
    guard hosts.count <= 1, hosts.first == host else {
        failure("the server reads Host \(hosts), Fulcrum routed by \(host ?? "none")", bytes)
    }
    guard forwarded.uri.hasPrefix("/") || forwarded.uri == "*" else {
        failure("the forwarded target \(forwarded.uri) is not in origin form", bytes)
    }
    // The body must be framed the same way on both sides of the proxy.
    let forwardedChunked = !forwarded.headers["transfer-encoding"].isEmpty
    guard forwardedChunked == isChunked else {
        failure("chunked for Fulcrum: \(isChunked), for the server: \(forwardedChunked)", bytes)
    }
    if !isChunked {
        let lengths = forwarded.headers["content-length"].map { Int($0) }
        guard lengths.count <= 1, lengths.first ?? contentLength == contentLength else {
            failure("Content-Length for Fulcrum: \(String(describing: contentLength)), for the server: \(lengths)", bytes)
        }
    }
}

/// The raw-byte scan of request lines (`RequestLineScanner`) must frame requests as the decoder
/// does, or it would check a body byte as a request line (a false 400) or miss a request line:
/// where both read the input to its end, they count the same heads. Its verdict must not depend
/// on how the bytes are split into reads.
private func checkRequestLineScanner(_ input: ByteBuffer, decoder: HTTPRequestDecoder) {
    var whole = RequestLineScanner()
    let verdict = input.withUnsafeReadableBytes { whole.scan($0) }
    var split = RequestLineScanner()
    let cut = input.readableBytes == 0 ? 0 : Int(input.getInteger(at: input.readerIndex, as: UInt8.self)!) % input.readableBytes
    var splitVerdict = input.getSlice(at: input.readerIndex, length: cut)!.withUnsafeReadableBytes { split.scan($0) }
    if splitVerdict == .valid {
        let rest = input.getSlice(at: input.readerIndex + cut, length: input.readableBytes - cut)!
        splitVerdict = rest.withUnsafeReadableBytes { split.scan($0) }
        if case .doubleSpace(let offset) = splitVerdict { splitVerdict = .doubleSpace(at: cut + offset) }
    }
    guard verdict == splitVerdict else {
        failure("the request line scan says \(verdict) in one read, \(splitVerdict) split at \(cut)", input)
    }
    guard verdict == .valid, !whole.isStopped else { return }
    let decoded = decodedParts(input, decoder: decoder)
    let heads = decoded.heads.filter { if case .head = $0 { true } else { false } }.count
    guard decoded.failed || heads == whole.headsScanned else {
        failure("the decoder read \(heads) request heads, the request line scan \(whole.headsScanned)", input)
    }
}

/// A head written by Fulcrum: lines ended by CRLF, no bare CR or LF, no NUL, and the empty
/// line only at the end.
private func checkWellFormed(_ head: ByteBuffer, what: String) {
    let bytes = Array(head.readableBytesView)
    guard bytes.count >= 4, bytes.suffix(4) == [13, 10, 13, 10] else {
        failure("\(what) does not end with an empty line", head)
    }
    var index = 0
    while index < bytes.count - 4 {
        switch bytes[index] {
        case 0: failure("\(what) has a NUL byte", head)
        case 10: failure("\(what) has a bare LF", head)
        case 13:
            guard bytes[index + 1] == 10 else { failure("\(what) has a bare CR", head) }
            guard bytes[index + 2] != 13 else { failure("\(what) has an empty line before its end", head) }
            index += 2
            continue
        default: break
        }
        index += 1
    }
}

private func failure(_ message: String, _ bytes: ByteBuffer) -> Never {
    fatalError("\(message)\n---\n\(String(decoding: bytes.readableBytesView, as: UTF8.self))\n---")
}
