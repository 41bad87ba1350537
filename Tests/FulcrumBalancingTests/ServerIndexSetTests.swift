import Testing

@testable import FulcrumBalancing

@Suite struct ServerIndexSetTests {
    @Test func emptySet() {
        let set = ServerIndexSet.none
        #expect(set.isEmpty)
        #expect(set.count == 0)
        #expect(!set.contains(0))
        #expect(!set.contains(63))
        #expect(!set.contains(64))
    }

    @Test func smallIndicesUseTheBitMask() {
        var set = ServerIndexSet()
        set.insert(0)
        set.insert(5)
        set.insert(63)
        set.insert(5)
        #expect(set.contains(0) && set.contains(5) && set.contains(63))
        #expect(!set.contains(1) && !set.contains(62))
        #expect(set.count == 3)
        #expect(!set.isEmpty)
        #expect(set.overflow.isEmpty)
    }

    @Test func indicesFrom64UpUseTheOverflowSet() {
        var set = ServerIndexSet()
        set.insert(64)
        set.insert(65)
        set.insert(1000)
        set.insert(64)
        #expect(set.contains(64) && set.contains(65) && set.contains(1000))
        #expect(!set.contains(0) && !set.contains(63) && !set.contains(66))
        #expect(set.bits == 0)
        #expect(set.count == 3)
        #expect(!set.isEmpty)
    }

    @Test func mixedIndices() {
        var set: ServerIndexSet = [1, 63, 64, 127, 128]
        #expect(set.count == 5)
        for index in [1, 63, 64, 127, 128] { #expect(set.contains(index)) }
        for index in [0, 2, 62, 65, 126, 129] { #expect(!set.contains(index)) }
        set.insert(2)
        #expect(set.count == 6)
    }

    @Test func negativeIndicesDoNotTrap() {
        var set = ServerIndexSet()
        #expect(!set.contains(-1))
        set.insert(-1)
        #expect(set.contains(-1))
        #expect(!set.contains(63))
        #expect(set.count == 1)
    }

    @Test func equality() {
        var a = ServerIndexSet()
        a.insert(3)
        a.insert(70)
        #expect(a == [70, 3])
        #expect(a != [3])
        #expect(a != [3, 71])
    }
}
