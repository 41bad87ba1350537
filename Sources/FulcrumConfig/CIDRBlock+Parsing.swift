extension CIDRBlock {
    /// Parses `10.0.0.0/8`, `2001:db8::/32`, or a bare address, which means a single host
    /// (`/32` for IPv4, `/128` for IPv6).
    ///
    /// Host bits set in the address are cleared (`10.1.2.3/8` is `10.0.0.0/8`), as routers
    /// and firewalls do, so that `network` always holds the network address.
    ///
    /// - Returns: `nil` when the address or the prefix length is not valid.
    package init?(parsing text: String) {
        let pieces = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = parseIPAddress(String(pieces[0])) else { return nil }
        let maximumPrefix = address.count * 8
        var prefixLength = maximumPrefix
        if pieces.count == 2 {
            let digits = pieces[1]
            guard (1...3).contains(digits.count),
                digits.allSatisfy(\.isASCIIDigit),
                let length = Int(digits),
                length <= maximumPrefix
            else { return nil }
            prefixLength = length
        }
        self.init(network: Self.clearingHostBits(of: address, prefixLength: prefixLength), prefixLength: prefixLength)
    }

    private static func clearingHostBits(of address: [UInt8], prefixLength: Int) -> [UInt8] {
        var bytes = address
        for index in bytes.indices {
            let networkBits = min(8, max(0, prefixLength - index * 8))
            let mask: UInt8 = networkBits == 0 ? 0 : ~(0xff >> UInt8(networkBits))
            bytes[index] &= mask
        }
        return bytes
    }
}

/// A CIDR block as the configuration writes it, the inverse of `CIDRBlock(parsing:)`:
/// `10.0.0.0/8`, or for IPv6 the RFC 5952 form (`2001:db8::/32`, `::1/128`).
///
/// `description` writes IPv6 without `::` (`0:0:0:0:0:0:0:1/128`), which reads back the same
/// but is not how anyone writes it in a file.
func formatCIDRBlock(_ block: CIDRBlock) -> String {
    guard block.network.count == 16 else { return block.description }
    let groups = stride(from: 0, to: 16, by: 2).map { UInt16(block.network[$0]) << 8 | UInt16(block.network[$0 + 1]) }
    // RFC 5952: `::` replaces the longest run of two or more zero groups, the first one on a tie.
    var best: Range<Int>?
    var index = 0
    while index < groups.count {
        guard groups[index] == 0 else {
            index += 1
            continue
        }
        let start = index
        while index < groups.count, groups[index] == 0 { index += 1 }
        if index - start >= 2, index - start > (best?.count ?? 0) {
            best = start..<index
        }
    }
    let hex = groups.map { String($0, radix: 16) }
    let address =
        if let best {
            hex[..<best.lowerBound].joined(separator: ":") + "::" + hex[best.upperBound...].joined(separator: ":")
        } else {
            hex.joined(separator: ":")
        }
    return "\(address)/\(block.prefixLength)"
}
