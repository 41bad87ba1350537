/// The network a client address belongs to, as the shield binds its cookies and challenges to:
/// the /24 of an IPv4 address, the /64 of an IPv6 address.
///
/// Binding to the prefix rather than the address keeps a clearance valid while a client moves
/// between addresses its network hands out (carrier-grade NAT pools, IPv6 privacy addresses
/// rotate inside one /64) yet useless from another network.
///
/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.7`, what a dual-stack socket reports for an
/// IPv4 peer) counts as the IPv4 address. Text that is not an address literal (a Unix socket
/// path, `unknown`) is kept whole as an *opaque* prefix, so the binding still holds for
/// exactly that text.
///
/// Parsing does not allocate: the proxy may compute a prefix per request (from a forwarded
/// header) as well as once per connection (from the peer address). It is written here rather
/// than taken from FulcrumConfig's `parseIPAddress`, which builds arrays and is meant for
/// configuration time; this target depends on nothing but swift-crypto.
package struct ClientPrefix: Hashable, Sendable, CustomStringConvertible {
    enum Storage: Hashable, Sendable {
        /// The address with its last 8 bits cleared.
        case ipv4(UInt32)
        /// The first 64 bits of the address.
        case ipv6(UInt64)
        case opaque(String)
    }

    let storage: Storage

    /// The prefix of an address literal: `192.0.2.7`, `2001:db8::1`, `[2001:db8::1]`,
    /// `fe80::1%eth0` (the zone is ignored). No port.
    package init(address: String) {
        var text = Substring(address)
        if text.first == "[", text.last == "]" {
            text = text.dropFirst().dropLast()
        }
        if let percent = text.utf8.firstIndex(of: UInt8(ascii: "%")) {
            text = text[..<percent]
        }
        let parsed: Storage?
        if text.utf8.contains(UInt8(ascii: ":")) {
            parsed = Self.parseIPv6(text.utf8).map { value in
                // ::ffff:0:0/96 holds IPv4 addresses.
                value >> 32 == 0xffff ? .ipv4(UInt32(truncatingIfNeeded: value) & 0xffff_ff00) : .ipv6(UInt64(value >> 64))
            }
        } else {
            parsed = Self.parseIPv4(text.utf8).map { .ipv4($0 & 0xffff_ff00) }
        }
        storage = parsed ?? .opaque(address)
    }

    /// The prefix of an address given as its network-order bytes (4 or 16 of them, as a socket
    /// address holds them); any other count is kept as opaque bytes.
    package init(addressBytes bytes: some Collection<UInt8>) {
        switch bytes.count {
        case 4:
            let value = bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            storage = .ipv4(value & 0xffff_ff00)
        case 16:
            let value = bytes.reduce(UInt128(0)) { $0 << 8 | UInt128($1) }
            storage =
                value >> 32 == 0xffff
                ? .ipv4(UInt32(truncatingIfNeeded: value) & 0xffff_ff00)
                : .ipv6(UInt64(value >> 64))
        default:
            storage = .opaque(bytes.map { String($0, radix: 16) }.joined(separator: ":"))
        }
    }

    /// `192.0.2.0/24`, `2001:db8:0:1::/64`, or the opaque text as given.
    package var description: String {
        switch storage {
        case .ipv4(let value):
            return "\(value >> 24).\(value >> 16 & 0xff).\(value >> 8 & 0xff).0/24"
        case .ipv6(let value):
            let groups = (0..<4).map { String(value >> (48 - 16 * UInt64($0)) & 0xffff, radix: 16) }
            // The last four groups are zero by construction, so `::` always ends the text.
            var used = groups
            while used.last == "0" { used.removeLast() }
            return used.joined(separator: ":") + "::/64"
        case .opaque(let text):
            return text
        }
    }

    /// Whether the address was not an IP address literal.
    package var isOpaque: Bool {
        if case .opaque = storage { return true }
        return false
    }

    /// The prefix as MAC input: a family byte, then 8 big-endian bytes (or the opaque text's
    /// UTF-8). Family bytes differ, so no IPv4 prefix can be read as an IPv6 one.
    func appendBinding(to bytes: inout [UInt8]) {
        switch storage {
        case .ipv4(let value):
            bytes.append(4)
            appendBigEndian(UInt64(value), to: &bytes)
        case .ipv6(let value):
            bytes.append(6)
            appendBigEndian(value, to: &bytes)
        case .opaque(let text):
            bytes.append(0)
            appendBigEndian(UInt64(text.utf8.count), to: &bytes)
            bytes.append(contentsOf: text.utf8)
        }
    }

    /// Strict dotted quad: four parts of 1–3 digits, no leading zeros (`010` is 8 to some tools
    /// and 10 to others), each at most 255.
    static func parseIPv4<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> UInt32? {
        var value: UInt32 = 0
        var parts = 0
        var part: UInt32 = 0
        var digits = 0
        var leadingZero = false
        for byte in bytes {
            if byte == UInt8(ascii: ".") {
                guard digits > 0, parts < 3 else { return nil }
                value = value << 8 | part
                parts += 1
                part = 0
                digits = 0
                leadingZero = false
                continue
            }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), !leadingZero, digits < 3 else { return nil }
            if digits == 0, byte == UInt8(ascii: "0") { leadingZero = true }
            part = part * 10 + UInt32(byte - UInt8(ascii: "0"))
            digits += 1
            guard part <= 255 else { return nil }
        }
        guard digits > 0, parts == 3 else { return nil }
        return value << 8 | part
    }

    /// RFC 4291 text: up to eight groups of 1–4 hex digits, at most one `::` standing for one
    /// or more zero groups, optionally a dotted IPv4 address as the last 32 bits.
    static func parseIPv6(_ bytes: Substring.UTF8View) -> UInt128? {
        // Groups before `::` go to `head`, groups after it to `tail`; the gap is the zeros.
        var head: UInt128 = 0
        var headCount = 0
        var tail: UInt128 = 0
        var tailCount = 0
        var compressed = false

        func append(_ group: UInt128) -> Bool {
            guard headCount + tailCount < 8 else { return false }
            if compressed {
                tail = tail << 16 | group
                tailCount += 1
            } else {
                head = head << 16 | group
                headCount += 1
            }
            return true
        }

        var index = bytes.startIndex
        let end = bytes.endIndex
        if bytes.starts(with: [UInt8(ascii: ":"), UInt8(ascii: ":")]) {
            compressed = true
            index = bytes.index(index, offsetBy: 2)
        } else if bytes.first == UInt8(ascii: ":") {
            return nil
        }
        while index != end {
            let groupStart = index
            var group: UInt128 = 0
            var digits = 0
            while index != end, let nibble = hexValue(bytes[index]) {
                guard digits < 4 else { return nil }
                group = group << 4 | UInt128(nibble)
                digits += 1
                index = bytes.index(after: index)
            }
            if index != end, bytes[index] == UInt8(ascii: ".") {
                // An embedded IPv4 address is the rest of the text.
                guard let ipv4 = parseIPv4(bytes[groupStart..<end]),
                    append(UInt128(ipv4 >> 16)), append(UInt128(ipv4 & 0xffff))
                else { return nil }
                index = end
                break
            }
            guard digits > 0, append(group) else { return nil }
            if index == end { break }
            guard bytes[index] == UInt8(ascii: ":") else { return nil }
            index = bytes.index(after: index)
            if index != end, bytes[index] == UInt8(ascii: ":") {
                guard !compressed else { return nil }
                compressed = true
                index = bytes.index(after: index)
            } else if index == end {
                return nil  // a lone trailing ":"
            }
        }
        let groups = headCount + tailCount
        guard compressed ? groups <= 7 : groups == 8 else { return nil }
        return (headCount == 0 ? 0 : head << (16 * (8 - headCount))) | tail
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

func appendBigEndian(_ value: UInt64, to bytes: inout [UInt8]) {
    for shift in stride(from: 56, through: 0, by: -8) {
        bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
    }
}
