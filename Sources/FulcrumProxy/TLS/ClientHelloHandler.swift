import NIOCore
import NIOSSL

/// The first handler of a TLS frontend's connection: reads the client's hello, asks
/// `chooseContext` which TLS context answers it, and puts a TLS server handler with that
/// context in its own place, handing it the bytes read so far.
///
/// NIOTLS's `SNIHandler` does this by the server name alone, and its parser is internal. An
/// ACME TLS-ALPN-01 check (RFC 8737) is told apart by the protocol it offers, so this reads
/// the hello with `ClientHello`, the reader TCP frontends route by, which reads the offered
/// protocols too. As with `SNIHandler`, the hello must come in the connection's first record;
/// bytes that are not a hello are answered with the default context, whose handshake then
/// fails. `chooseContext` returning nil closes the connection: nothing can answer it.
final class ClientHelloHandler: ByteToMessageDecoder {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    var cumulationBuffer: ByteBuffer?
    private let chooseContext: (ClientHello?) -> NIOSSLContext?
    /// Whether the TLS handler is in place: what arrives from now on is its.
    private var handedOver = false
    private var decided = false

    init(chooseContext: @escaping (ClientHello?) -> NIOSSLContext?) {
        self.chooseContext = chooseContext
    }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        // Decided: the bytes wait in the buffer until this handler leaves.
        guard !decided else { return .needMoreData }
        let hello: ClientHello?
        switch ClientHello.read(buffer) {
        case .incomplete: return .needMoreData
        case .notHello: hello = nil
        case .hello(let read): hello = read
        }
        decided = true
        guard let sslContext = chooseContext(hello) else {
            context.close(promise: nil)
            return .needMoreData
        }
        let pipeline = context.pipeline.syncOperations
        try pipeline.addHandler(NIOSSLServerHandler(context: sslContext), position: .after(context.handler))
        handedOver = true
        // Leaving hands the buffered bytes to the TLS handler (`decodeLast`).
        pipeline.removeHandler(context: context, promise: nil)
        return .needMoreData
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        if handedOver {
            context.fireChannelRead(wrapInboundOut(buffer))
        }
        // Otherwise the connection ended, or is closed, before a TLS handler took over: its
        // bytes are for nobody (the handlers after this one speak HTTP, not TLS).
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .needMoreData
    }
}
