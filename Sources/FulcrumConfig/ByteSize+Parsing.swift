/// Parses a size in bytes as written in the configuration: a whole number, optionally
/// followed by a unit, e.g. `65536`, `64k`, `64KB`, `64 KiB`, `1m`, `1MB`, `2g`.
///
/// Units are binary and case-insensitive: `k`/`kb`/`kib` = 1024, `m`/`mb`/`mib` = 1024²,
/// `g`/`gb`/`gib` = 1024³, `b` = 1. Request-size limits are about buffers, where
/// "64 KB" conventionally means 65 536 bytes, so `KB` is not 1000 here.
///
/// - Returns: The number of bytes, or `nil` when `text` is not a valid size or overflows.
package func parseByteSize(_ text: String) -> Int? {
    let digits = text.prefix(while: \.isASCIIDigit)
    guard !digits.isEmpty, let number = Int(digits) else { return nil }
    // One space between number and unit is tolerated: people write "64 KB".
    var unit = text.dropFirst(digits.count)
    if unit.first == " " {
        unit = unit.dropFirst()
        guard !unit.isEmpty else { return nil }
    }
    guard let multiplier = bytesPerUnit[unit.lowercased()] else { return nil }
    let (bytes, overflow) = number.multipliedReportingOverflow(by: multiplier)
    return overflow ? nil : bytes
}

private let bytesPerUnit: [String: Int] = [
    "": 1,
    "b": 1,
    "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
    "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
    "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
]

/// A size as the configuration writes it, the inverse of `parseByteSize`: a whole number in
/// the largest binary unit that states it exactly (`64KB`, `10MB`, `1GB`), else in bytes
/// (`1000B`, `0B`).
///
/// Always with a unit, so that the value reads as a size and is a string in JSON whatever
/// the number. `KB`, not `k`: the documentation's spelling, and `m` could be misread as minutes.
func formatByteSize(_ bytes: Int) -> String {
    let units = [("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)]
    for (unit, unitBytes) in units where bytes != 0 && bytes % unitBytes == 0 {
        return "\(bytes / unitBytes)\(unit)"
    }
    return "\(bytes)B"
}
