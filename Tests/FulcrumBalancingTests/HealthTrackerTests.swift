import Testing

@testable import FulcrumBalancing

@Suite struct HealthTrackerTests {
    @Test("fall failures in a row take a server down, rise successes bring it back")
    func riseAndFall() {
        var tracker = HealthTracker(rise: 2, fall: 3)
        #expect(tracker.isUp)
        #expect(tracker.record(success: false) == nil)
        #expect(tracker.record(success: false) == nil)
        #expect(tracker.record(success: false) == .wentDown)
        #expect(!tracker.isUp)
        #expect(tracker.record(success: false) == nil)
        #expect(tracker.record(success: true) == nil)
        #expect(tracker.record(success: true) == .cameUp)
        #expect(tracker.isUp)
    }

    @Test("an interrupted streak starts over")
    func streaksReset() {
        var tracker = HealthTracker(rise: 2, fall: 2)
        #expect(tracker.record(success: false) == nil)
        #expect(tracker.record(success: true) == nil)
        #expect(tracker.record(success: false) == nil)
        #expect(tracker.isUp)
        #expect(tracker.record(success: false) == .wentDown)
        #expect(tracker.record(success: true) == nil)
        #expect(tracker.record(success: false) == nil)
        #expect(tracker.record(success: true) == nil)
        #expect(!tracker.isUp)
    }

    @Test("rise and fall of 1 switch on every contrary probe")
    func singleProbe() {
        var tracker = HealthTracker(rise: 1, fall: 1)
        #expect(tracker.record(success: false) == .wentDown)
        #expect(tracker.record(success: true) == .cameUp)
    }
}
