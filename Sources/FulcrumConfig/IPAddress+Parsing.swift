/// Parses an IP address literal into its network-order bytes: 4 for IPv4 (`10.1.2.3`),
/// 16 for IPv6 (`2001:db8::1`, `::ffff:10.1.2.3`). IPv6 is written without brackets and
/// without a zone (`%eth0`).
///
/// These are the bytes `CIDRBlock.contains(_:)` takes, so a caller holding a client
/// address as text can test it against the `src` blocks of an ACL.
package func parseIPAddress(_ text: String) -> [UInt8]? {
    let text = Substring(text)
    return text.contains(":") ? parseIPv6(text) : parseIPv4(text)
}

/// Dotted-quad IPv4. Each part is 0…255 written without leading zeros, because
/// `010` means 8 to some tools (octal) and 10 to others.
func parseIPv4(_ text: Substring) -> [UInt8]? {
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 4 else { return nil }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(4)
    for part in parts {
        guard (1...3).contains(part.count),
            part.allSatisfy(\.isASCIIDigit),
            part == "0" || part.first != "0",
            let value = UInt8(part)
        else { return nil }
        bytes.append(value)
    }
    return bytes
}

/// IPv6 in any RFC 4291 text form: eight groups of 1–4 hex digits, at most one `::`
/// standing for one or more zero groups, and optionally a dotted IPv4 address as the
/// last 32 bits (`::ffff:192.0.2.1`).
func parseIPv6(_ text: Substring) -> [UInt8]? {
    var groups = text.split(separator: ":", omittingEmptySubsequences: false)
    // Splitting "::1" gives ["", "", "1"] and "1::" gives ["1", "", ""]: drop the extra
    // empty piece at either end, so that the one `::` leaves exactly one empty group.
    if text.hasPrefix("::") { groups.removeFirst() }
    if text.hasSuffix("::") { groups.removeLast() }
    let compressions = groups.filter(\.isEmpty).count
    guard compressions <= 1 else { return nil }
    // A lone ":" at either end ("1:", ":1") also leaves an empty group; only "::" may.
    guard compressions == 0 || text.contains("::") else { return nil }

    var head: [UInt16] = []
    var tail: [UInt16] = []
    var seenCompression = false
    for (index, group) in groups.enumerated() {
        if group.isEmpty {
            seenCompression = true
            continue
        }
        var values: [UInt16]
        if group.contains(".") {
            // An embedded IPv4 address may only be the last group.
            guard index == groups.count - 1, let ipv4 = parseIPv4(group) else { return nil }
            values = [UInt16(ipv4[0]) << 8 | UInt16(ipv4[1]), UInt16(ipv4[2]) << 8 | UInt16(ipv4[3])]
        } else {
            guard (1...4).contains(group.count),
                group.allSatisfy({ $0.isASCII && $0.isHexDigit }),
                let value = UInt16(group, radix: 16)
            else { return nil }
            values = [value]
        }
        if seenCompression {
            tail += values
        } else {
            head += values
        }
    }

    let explicitGroups = head.count + tail.count
    if seenCompression {
        guard explicitGroups <= 7 else { return nil }
    } else {
        guard explicitGroups == 8 else { return nil }
    }
    let all = head + Array(repeating: 0, count: 8 - explicitGroups) + tail
    return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
}
