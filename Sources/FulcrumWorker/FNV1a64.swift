import NIOCore

/// The 64-bit FNV-1a hash, used as a cheap, streaming checksum of request and response bodies.
///
/// FNV-1a is not a cryptographic hash. It is used here because it is trivially incremental, has no
/// dependencies and is easy to reproduce on both ends of a transfer: the worker checksums what it
/// receives on `/sink`, and tests (of the worker and of the proxy in front of it) checksum what they
/// send or receive and compare hex digests.
///
/// ```swift
/// var hash = FNV1a64()
/// hash.update("hello".utf8)
/// hash.hexDigest  // "a430d84680aabd0b"
/// ```
package struct FNV1a64: Sendable, Hashable {
    /// The FNV-1a 64-bit offset basis, i.e. the digest of the empty input.
    package static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    /// The FNV-1a 64-bit prime.
    package static let prime: UInt64 = 0x0000_0100_0000_01b3

    @usableFromInline
    internal var _digest: UInt64

    /// Creates a hash of the empty input.
    package init() {
        self._digest = Self.offsetBasis
    }

    /// The hash of every byte passed to `update` so far.
    package var digest: UInt64 {
        self._digest
    }

    /// ``digest`` as 16 lowercase, zero-padded hexadecimal digits, e.g. `"cbf29ce484222325"`.
    package var hexDigest: String {
        let hex = String(self._digest, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Feeds `bytes` into the hash.
    ///
    /// Contiguous collections (`[UInt8]`, `Data`, …) take the same pointer-based path as the
    /// `UnsafeRawBufferPointer` overload; other sequences are hashed byte by byte.
    @inlinable
    package mutating func update(_ bytes: some Sequence<UInt8>) {
        let handled: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            self.update(UnsafeRawBufferPointer(buffer))
        }
        if handled != nil {
            return
        }

        var digest = self._digest
        for byte in bytes {
            digest = (digest ^ UInt64(byte)) &* Self.prime
        }
        self._digest = digest
    }

    /// Feeds the bytes in `bytes` into the hash.
    package mutating func update(_ bytes: UnsafeRawBufferPointer) {
        // Keep the running value in a local so the loop works on a register rather than on `self`.
        var digest = self._digest
        for byte in bytes {
            digest = (digest ^ UInt64(byte)) &* Self.prime
        }
        self._digest = digest
    }

    /// Feeds the readable bytes of `buffer` into the hash, without copying them.
    ///
    /// The reader index of `buffer` is not moved.
    package mutating func update(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { self.update($0) }
    }
}
