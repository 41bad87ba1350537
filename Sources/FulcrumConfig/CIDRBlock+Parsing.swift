extension CIDRBlock {
    /// Parses `10.0.0.0/8`, `2001:db8::/32`, or a bare address, which means a single host
    /// (`/32` for IPv4, `/128` for IPv6).
    ///
    /// Host bits set in the address are cleared (`10.1.2.3/8` is `10.0.0.0/8`), as routers
    /// and firewalls do, so that `network` always holds the network address.
    ///
    /// - Returns: `nil` when the address or the prefix length is not valid.
    public init?(parsing text: String) {
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
