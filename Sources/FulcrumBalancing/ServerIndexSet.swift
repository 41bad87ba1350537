/// A small set of server indices: the servers already tried for one request.
///
/// Indices in `0..<64` live in a bit mask, so the common case never allocates; any other
/// index (larger, or a nonsensical negative one) goes to an overflow `Set`.
package struct ServerIndexSet: Sendable, Equatable {
    @usableFromInline var bits: UInt64 = 0
    @usableFromInline var overflow: Set<Int> = []

    @inlinable
    package init() {}

    /// The empty set.
    @inlinable
    package static var none: ServerIndexSet { ServerIndexSet() }

    @inlinable
    package func contains(_ index: Int) -> Bool {
        // The unsigned comparison sends negative indices to `overflow` instead of trapping
        // in the `UInt64(index)` conversion.
        UInt(bitPattern: index) < 64 ? bits & (1 << UInt64(index)) != 0 : overflow.contains(index)
    }

    @inlinable
    package mutating func insert(_ index: Int) {
        if UInt(bitPattern: index) < 64 { bits |= 1 << UInt64(index) } else { overflow.insert(index) }
    }

    @inlinable
    package var count: Int { bits.nonzeroBitCount + overflow.count }

    @inlinable
    package var isEmpty: Bool { bits == 0 && overflow.isEmpty }
}

extension ServerIndexSet: ExpressibleByArrayLiteral {
    @inlinable
    package init(arrayLiteral indices: Int...) {
        self.init()
        for index in indices { insert(index) }
    }
}
