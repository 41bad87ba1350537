import Testing

@testable import FulcrumBalancing

@Suite struct FastRandomTests {
    @Test func matchesReferenceOutputForSeedZero() {
        // SplitMix64(0) expansion followed by xoshiro256**, computed with an independent
        // implementation of the reference algorithms.
        var random = FastRandom(seed: 0)
        #expect(random.state.0 == 0xE220_A839_7B1D_CDAF)  // SplitMix64's well-known first value
        let values = (0..<4).map { _ in random.next() }
        #expect(values == [0x99EC_5F36_CB75_F2B4, 0xBF6E_1F78_4956_452A, 0x1A5F_849D_4933_E6E0, 0x6AA5_94F1_262D_2D2C])
    }

    @Test func matchesReferenceOutputForSeed42() {
        var random = FastRandom(seed: 42)
        let values = (0..<4).map { _ in random.next() }
        #expect(values == [0x1578_0B2E_0C2E_C716, 0x6104_D986_6D11_3A7E, 0xAE17_5332_39E4_99A1, 0xECB8_AD47_03B3_60A1])
    }

    @Test func sameSeedGivesSameSequence() {
        var a = FastRandom(seed: 12345)
        var b = FastRandom(seed: 12345)
        let first = (0..<1000).map { _ in a.next() }
        let second = (0..<1000).map { _ in b.next() }
        #expect(first == second)
    }

    @Test func differentSeedsGiveDifferentSequences() {
        var a = FastRandom(seed: 1)
        var b = FastRandom(seed: 2)
        #expect((0..<8).map { _ in a.next() } != (0..<8).map { _ in b.next() })
    }

    @Test func systemSeededGeneratorsDiffer() {
        // Two identical 4-value prefixes from independently seeded generators would mean
        // the system seeding is broken (probability ~2^-256 otherwise).
        var a = FastRandom()
        var b = FastRandom()
        #expect((0..<4).map { _ in a.next() } != (0..<4).map { _ in b.next() })
    }

    @Test func boundedValuesAreRoughlyUniform() {
        var random = FastRandom(seed: 7)
        var counts = [Int](repeating: 0, count: 10)
        for _ in 0..<100_000 { counts[Int(random.next(upperBound: 10 as UInt64))] += 1 }
        for count in counts { #expect((9_500...10_500).contains(count)) }
    }
}
