/// Parses a duration as written in the configuration: a number followed by a unit,
/// e.g. `250ms`, `2s`, `1.5s`, `1m`, `1h`, `100us`, or several such parts in a row,
/// largest first or not (`1m30s`).
///
/// Units: `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`. A number without a unit, a sign,
/// spaces or an unknown unit make the whole text invalid. Fractions are exact down to
/// the nanosecond (`1.5s` is 1 500 000 000 ns, `0.1s` exactly 100 ms); finer digits
/// are dropped.
///
/// - Returns: The duration, or `nil` when `text` is not a valid duration or overflows.
package func parseDuration(_ text: String) -> Duration? {
    var rest = Substring(text)
    guard !rest.isEmpty else { return nil }
    var totalNanoseconds = 0
    while !rest.isEmpty {
        let integerDigits = rest.prefix(while: \.isASCIIDigit)
        rest = rest.dropFirst(integerDigits.count)
        var fractionDigits = Substring()
        if rest.first == "." {
            rest = rest.dropFirst()
            fractionDigits = rest.prefix(while: \.isASCIIDigit)
            rest = rest.dropFirst(fractionDigits.count)
        }
        guard !integerDigits.isEmpty || !fractionDigits.isEmpty else { return nil }

        let unit = rest.prefix { !$0.isASCIIDigit && $0 != "." }
        rest = rest.dropFirst(unit.count)
        guard let unitNanoseconds = nanosecondsPerUnit[unit] else { return nil }

        guard let part = nanoseconds(integerDigits, fractionDigits, unitNanoseconds) else { return nil }
        let (sum, overflow) = totalNanoseconds.addingReportingOverflow(part)
        guard !overflow else { return nil }
        totalNanoseconds = sum
    }
    return .nanoseconds(totalNanoseconds)
}

private let nanosecondsPerUnit: [Substring: Int] = [
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3_600 * 1_000_000_000,
]

/// `integer.fraction × unit` in whole nanoseconds, computed with integers so that `0.1s`
/// is exactly 100 ms (a `Double` would not be).
private func nanoseconds(_ integerDigits: Substring, _ fractionDigits: Substring, _ unit: Int) -> Int? {
    var total = 0
    for digit in integerDigits {
        let (shifted, overflow1) = total.multipliedReportingOverflow(by: 10)
        let (sum, overflow2) = shifted.addingReportingOverflow(digit.asciiDigitValue)
        guard !overflow1, !overflow2 else { return nil }
        total = sum
    }
    let (scaled, overflow) = total.multipliedReportingOverflow(by: unit)
    guard !overflow else { return nil }
    total = scaled

    // Each fraction digit is worth a tenth of the previous one. The units are multiples of
    // large powers of ten, so this is exact for any fraction a person writes; digits worth
    // less than a nanosecond end the loop.
    var digitWeight = unit
    for digit in fractionDigits {
        digitWeight /= 10
        guard digitWeight > 0 else { break }
        let (sum, overflow) = total.addingReportingOverflow(digit.asciiDigitValue * digitWeight)
        guard !overflow else { return nil }
        total = sum
    }
    return total
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isWholeNumber }

    /// The value of an ASCII digit; only call it when `isASCIIDigit` holds.
    var asciiDigitValue: Int { Int(asciiValue! - UInt8(ascii: "0")) }
}

/// A duration as the configuration writes it, the inverse of `parseDuration`: a whole
/// number in the largest unit that states it exactly (`1h`, `90s`, `1500ms`, `0s`).
///
/// One unit rather than `1m30s`-style compounds, because a single number is what a reader
/// (or a script reading the JSON) compares most easily. Digits finer than a nanosecond,
/// which the configuration cannot express, are dropped.
package func formatDuration(_ duration: Duration) -> String {
    let (seconds, attoseconds) = duration.components
    // Whole seconds need no nanosecond count, which could overflow for very long durations.
    if attoseconds == 0 {
        for (unit, unitSeconds) in [("h", Int64(3_600)), ("m", 60)] where seconds != 0 && seconds % unitSeconds == 0 {
            return "\(seconds / unitSeconds)\(unit)"
        }
        return "\(seconds)s"
    }
    let (scaled, overflow1) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
    let (nanoseconds, overflow2) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
    guard !overflow1, !overflow2 else { return "\(seconds)s" }
    for (unit, unitNanoseconds) in [("ms", Int64(1_000_000)), ("us", 1_000)] where nanoseconds % unitNanoseconds == 0 {
        return "\(nanoseconds / unitNanoseconds)\(unit)"
    }
    return "\(nanoseconds)ns"
}
