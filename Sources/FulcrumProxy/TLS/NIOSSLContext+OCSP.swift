// swift-nio-ssl 2.37 has no OCSP stapling API: no `TLSConfiguration` field, no callback, and
// its `SSL_CTX` (`NIOSSLContext.sslContext`) is fileprivate. BoringSSL under it has what is
// needed (`SSL_CTX_set_ocsp_response`), and its module is visible to targets that depend on
// NIOSSL, though the product does not export it. So the context is found by reflection and
// given the response before the context serves any connection; should a later NIOSSL rename
// the field, stapling reports itself unavailable instead of breaking anything.
internal import CNIOBoringSSL
import NIOSSL

extension NIOSSLContext {
    /// Makes every connection of this context staple `der` when the client asks for it
    /// (`status_request`). Call before the context serves a connection. False when this NIOSSL
    /// does not let Fulcrum reach its `SSL_CTX`, or BoringSSL refused the bytes.
    func stapleOCSPResponse(_ der: [UInt8]) -> Bool {
        guard let sslContext = boringSSLContext else { return false }
        return der.withUnsafeBufferPointer { bytes in
            SSL_CTX_set_ocsp_response(sslContext, bytes.baseAddress, bytes.count) == 1
        }
    }

    private var boringSSLContext: OpaquePointer? {
        Mirror(reflecting: self).children.first { $0.label == "sslContext" }?.value as? OpaquePointer
    }
}
