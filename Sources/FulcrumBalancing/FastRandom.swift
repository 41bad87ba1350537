/// A fast, non-cryptographic random number generator (xoshiro256**).
///
/// `SystemRandomNumberGenerator` costs a `getrandom` system call per number on Linux, which
/// is too much for a per-request decision; this one is a handful of instructions. Seeded
/// from the system generator by default, or from a fixed seed for deterministic tests.
package struct FastRandom: RandomNumberGenerator, Sendable {
    @usableFromInline var state: (UInt64, UInt64, UInt64, UInt64)

    /// Seeds from the system's random source.
    package init() {
        var system = SystemRandomNumberGenerator()
        self.init(seed: system.next())
    }

    /// Seeds deterministically (SplitMix64 expansion of `seed`).
    package init(seed: UInt64) {
        var splitMix = seed
        func nextSplitMix() -> UInt64 {
            splitMix &+= 0x9E37_79B9_7F4A_7C15
            var z = splitMix
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (nextSplitMix(), nextSplitMix(), nextSplitMix(), nextSplitMix())
    }

    @inlinable
    package mutating func next() -> UInt64 {
        _next()
    }

    // Inlinable (with its state) so that callers in other modules get the handful of
    // instructions inline rather than a call per number.
    @inlinable
    mutating func _next() -> UInt64 {
        let result = rotateLeft(state.1 &* 5, by: 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotateLeft(state.3, by: 45)
        return result
    }

    @inlinable
    func rotateLeft(_ x: UInt64, by k: UInt64) -> UInt64 {
        (x << k) | (x >> (64 - k))
    }
}
