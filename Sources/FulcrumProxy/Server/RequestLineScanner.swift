#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Finds each request line in the raw bytes of an HTTP/1.1 client connection, and checks that
/// its parts are separated by single spaces (RFC 9112 §3).
///
/// NIO's decoder (llhttp) skips a run of spaces there, as HAProxy and nginx do, and the raw line
/// is gone once it has decoded the head. So this runs on the bytes before the decoder. To know
/// where each request line starts, it frames requests as the decoder does: a head, then a body
/// of `Content-Length` bytes, a chunked body, or none (a request never has a body that runs to
/// the close).
///
/// It only ever objects to spacing. Anything else it does not expect (a framing the decoder or
/// `RequestRules` will refuse, an upgrade, CONNECT, the HTTP/2 preface) ends the scan for the
/// connection: the decoder rules on those, and the bytes after them are not HTTP/1.1 requests
/// any more, or the connection closes after its 400.
package struct RequestLineScanner {
    package enum Verdict: Equatable {
        case valid
        /// A request line has a second space in a row at this offset of the bytes scanned.
        /// The bytes before it may go on to the decoder (they hold whole earlier requests, and
        /// the start of this line); the rest must not.
        case doubleSpace(at: Int)
    }

    private enum State {
        /// Before a request line: empty lines are skipped (RFC 9112 §2.2).
        case betweenRequests
        case requestLine
        /// The first byte of a field line, or the empty line that ends the head.
        case fieldLineStart
        /// A field name that may still be one of ``Field``'s.
        case fieldName
        /// The value of a field that frames the body or announces an upgrade.
        case fieldValue(Field)
        /// The rest of a line that does not matter here.
        case skippingLine(then: LineEnd)
        case body(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case trailerLineStart
        /// After a framing or protocol this does not follow; the decoder rules on it.
        case stopped
    }

    /// Where a skipped line leads.
    private enum LineEnd {
        case fieldLineStart
        case chunkSize
        case chunkData(size: Int)
        case trailerLineStart
    }

    /// The fields whose values matter to framing.
    private enum Field: Int {
        case contentLength, transferEncoding, connection, upgrade

        static let count = 4

        /// (Static strings, not arrays: per byte, a static array costs a lazy-initialization
        /// check, a retain and bounds checks.)
        var lowercaseName: StaticString {
            switch self {
            case .contentLength: "content-length"
            case .transferEncoding: "transfer-encoding"
            case .connection: "connection"
            case .upgrade: "upgrade"
            }
        }
    }

    private static let chunked: StaticString = "chunked"
    private static let upgradeToken: StaticString = "upgrade"

    private var state = State.betweenRequests

    /// Request heads scanned to their end (for the fuzz target, which compares it with the
    /// decoder's count).
    package private(set) var headsScanned = 0
    /// Whether the scan ended for the connection; nothing after is checked.
    package var isStopped: Bool {
        if case .stopped = state { true } else { false }
    }

    package init() {}

    // The request line under way.
    private var previousWasSpace = false
    private var lineHasContent = false
    private var methodEnded = false
    /// The method's first 8 bytes, packed, to tell CONNECT and PRI.
    private var method: UInt64 = 0

    // The field name under way.
    private var nameLength = 0
    private var candidates: UInt8 = 0

    // A field value under way.
    private var number = 0
    private var sawDigit = false
    private var digitsEnded = false
    /// `Transfer-Encoding`: how much of `chunked` the current list element matched, or -1.
    private var elementMatch = 0
    private var elementEnded = false
    /// `Connection`: how much of `upgrade` the value's latest bytes matched.
    private var upgradeMatch = 0

    // What the head so far says about the body and the protocol.
    private var contentLength: Int?
    private var isChunked: Bool?
    private var hasUpgradeField = false
    private var connectionUpgrade = false

    /// Scans the next bytes of the connection.
    package mutating func scan(_ bytes: UnsafeRawBufferPointer) -> Verdict {
        // Lines that do not matter are skipped with `memchr`, and so are the spans between a
        // request line's spaces: only the method, the names of fields that start like a
        // framing field, and those fields' values are read byte by byte.
        var index = 0
        let count = bytes.count
        while index < count {
            switch state {
            case .stopped:
                return .valid
            case .betweenRequests:
                let byte = bytes[index]
                if byte == .carriageReturn || byte == .lineFeed {
                    index += 1
                } else {
                    startRequestLine()
                }
            case .requestLine:
                let lineEnd = Self.lineFeed(in: bytes, from: index)
                if let flagged = requestLineSpan(bytes, from: index, to: lineEnd ?? count) {
                    return .doubleSpace(at: flagged)
                }
                guard let lineEnd else { return .valid }
                index = lineEnd + 1
                state = .fieldLineStart
            case .fieldLineStart:
                // Field lines that do not matter, one after the other in a tight loop: most are.
                let byte = bytes[index]
                if !Self.mayNameFramingField(byte), byte != .carriageReturn, byte != .lineFeed,
                    let lineFeed = Self.lineFeed(in: bytes, from: index + 1)
                {
                    index = lineFeed + 1
                    continue
                }
                index += 1
                switch byte {
                case .carriageReturn: break
                case .lineFeed: endHead()
                default: startFieldName(byte)
                }
            case .fieldName:
                fieldNameByte(bytes[index])
                index += 1
            case .fieldValue(let field):
                fieldValueByte(bytes[index], of: field)
                index += 1
            case .skippingLine(let then):
                guard let lineFeed = Self.lineFeed(in: bytes, from: index) else { return .valid }
                index = lineFeed + 1
                switch then {
                case .fieldLineStart: state = .fieldLineStart
                case .chunkSize: startChunkSize()
                case .chunkData(let size): state = size == 0 ? .trailerLineStart : .chunkData(remaining: size)
                case .trailerLineStart: state = .trailerLineStart
                }
            case .body(let remaining):
                let taken = min(remaining, count - index)
                index += taken
                state = taken == remaining ? .betweenRequests : .body(remaining: remaining - taken)
            case .chunkSize:
                chunkSizeByte(bytes[index])
                index += 1
            case .chunkData(let remaining):
                let taken = min(remaining, count - index)
                index += taken
                // The CRLF after the data ends that line.
                state = taken == remaining ? .skippingLine(then: .chunkSize) : .chunkData(remaining: remaining - taken)
            case .trailerLineStart:
                let byte = bytes[index]
                index += 1
                switch byte {
                case .carriageReturn: break
                case .lineFeed: state = .betweenRequests
                default: state = .skippingLine(then: .trailerLineStart)
                }
            }
        }
        return .valid
    }

    // MARK: The request line

    private mutating func startRequestLine() {
        state = .requestLine
        previousWasSpace = false
        lineHasContent = false
        methodEnded = false
        method = 0
        contentLength = nil
        isChunked = nil
        hasUpgradeField = false
        connectionUpgrade = false
    }

    /// The request line's bytes in `start..<end` (its line feed is not among them): the offset
    /// of a second space in a row, if there is one.
    private mutating func requestLineSpan(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Int? {
        var index = start
        while index < end {
            let byte = bytes[index]
            if byte == .space {
                // Leading spaces are the decoder's to refuse; they come before any content.
                if previousWasSpace, lineHasContent { return index }
                previousWasSpace = true
                if lineHasContent { methodEnded = true }
                index += 1
            } else if !methodEnded {
                previousWasSpace = false
                lineHasContent = true
                if method >> 56 == 0 { method = method << 8 | UInt64(byte) }
                index += 1
            } else {
                // Within the target or the version: on to the next space.
                previousWasSpace = false
                index = Self.firstIndex(of: .space, in: bytes, from: index + 1, to: end) ?? end
            }
        }
        return nil
    }

    /// `CONNECT` and `PRI`, packed as `method` packs them (literals, so no lazy globals).
    private static let connect: UInt64 = 0x434F_4E4E_4543_54
    private static let prior: UInt64 = 0x50_5249

    // MARK: Fields

    /// The first byte of a field line: only names that start like one of ``Field``'s are read
    /// on; the rest of the line is skipped.
    private mutating func startFieldName(_ byte: UInt8) {
        switch Self.lowercased(byte) {
        case UInt8(ascii: "c"): candidates = 1 << Field.contentLength.rawValue | 1 << Field.connection.rawValue
        case UInt8(ascii: "t"): candidates = 1 << Field.transferEncoding.rawValue
        case UInt8(ascii: "u"): candidates = 1 << Field.upgrade.rawValue
        default:
            // (A line feed here is the decoder's to refuse: a field line of one byte.)
            state = .skippingLine(then: .fieldLineStart)
            return
        }
        nameLength = 1
        state = .fieldName
    }

    private mutating func fieldNameByte(_ byte: UInt8) {
        if byte == .colon {
            for raw in 0..<Field.count where candidates & (1 << raw) != 0 {
                let field = Field(rawValue: raw)!
                if field.lowercaseName.utf8CodeUnitCount == nameLength { return startValue(of: field) }
            }
            state = .skippingLine(then: .fieldLineStart)
            return
        }
        let lowered = Self.lowercased(byte)
        for raw in 0..<Field.count where candidates & (1 << raw) != 0 {
            let name = Field(rawValue: raw)!.lowercaseName
            if nameLength >= name.utf8CodeUnitCount || name.utf8Start[nameLength] != lowered {
                candidates &= ~(1 << raw)
            }
        }
        nameLength += 1
        if candidates == 0 {
            // A line without a colon is the decoder's to refuse.
            state = byte == .lineFeed ? .fieldLineStart : .skippingLine(then: .fieldLineStart)
        }
    }

    private mutating func startValue(of field: Field) {
        switch field {
        case .contentLength:
            // More than one `Content-Length` line is the decoder's to refuse.
            guard contentLength == nil else { return stop() }
            number = 0
            sawDigit = false
            digitsEnded = false
        case .transferEncoding:
            elementMatch = 0
            elementEnded = false
        case .connection:
            upgradeMatch = 0
        case .upgrade:
            hasUpgradeField = true
            state = .skippingLine(then: .fieldLineStart)
            return
        }
        state = .fieldValue(field)
    }

    private mutating func fieldValueByte(_ byte: UInt8, of field: Field) {
        if byte == .lineFeed {
            endValue(of: field)
            state = .fieldLineStart
            return
        }
        if byte == .carriageReturn { return }
        switch field {
        case .contentLength:
            if byte == .space || byte == .tab {
                digitsEnded = sawDigit
            } else if let digit = Self.decimalDigit(byte), !digitsEnded {
                let (times10, overflowed) = number.multipliedReportingOverflow(by: 10)
                guard !overflowed, times10 <= Int.max - digit else { return stop() }
                number = times10 + digit
                sawDigit = true
            } else {
                stop()
            }
        case .transferEncoding:
            // Whether the last list element, trimmed, is `chunked`.
            if byte == .comma {
                elementMatch = 0
                elementEnded = false
            } else if byte == .space || byte == .tab {
                elementEnded = elementMatch != 0
            } else if elementEnded || elementMatch < 0 || elementMatch >= Self.chunked.utf8CodeUnitCount
                || Self.chunked.utf8Start[elementMatch] != Self.lowercased(byte)
            {
                elementMatch = -1
            } else {
                elementMatch += 1
            }
        case .connection:
            // A token `upgrade` anywhere in the value (a longer token with it inside errs on
            // the side of stopping the scan).
            guard upgradeMatch < Self.upgradeToken.utf8CodeUnitCount else { return }
            if Self.lowercased(byte) == Self.upgradeToken.utf8Start[upgradeMatch] {
                upgradeMatch += 1
            } else {
                upgradeMatch = Self.lowercased(byte) == Self.upgradeToken.utf8Start[0] ? 1 : 0
            }
        case .upgrade:
            break
        }
    }

    private mutating func endValue(of field: Field) {
        switch field {
        case .contentLength:
            guard sawDigit else { return stop() }
            contentLength = number
        case .transferEncoding:
            isChunked = elementMatch == Self.chunked.utf8CodeUnitCount
        case .connection:
            if upgradeMatch == Self.upgradeToken.utf8CodeUnitCount { connectionUpgrade = true }
        case .upgrade:
            break
        }
    }

    /// The empty line after the fields: the body, if any, follows.
    private mutating func endHead() {
        headsScanned += 1
        if method == Self.connect || method == Self.prior || hasUpgradeField && connectionUpgrade {
            // The bytes after it belong to a tunnel or to HTTP/2.
            return stop()
        }
        switch (isChunked, contentLength) {
        case (nil, nil), (nil, 0):
            state = .betweenRequests
        case (nil, let length?):
            state = .body(remaining: length)
        case (true, nil):
            startChunkSize()
        default:
            // Both framings, or a coding list that does not end in chunked: refused by
            // `RequestRules` or the decoder.
            stop()
        }
    }

    // MARK: Chunks

    private mutating func startChunkSize() {
        state = .chunkSize
        number = 0
        sawDigit = false
    }

    private mutating func chunkSizeByte(_ byte: UInt8) {
        if let digit = Self.hexDigit(byte) {
            guard number >> 59 == 0 else { return stop() }
            number = number << 4 | digit
            sawDigit = true
        } else if !sawDigit {
            stop()
        } else if byte == .lineFeed {
            state = number == 0 ? .trailerLineStart : .chunkData(remaining: number)
        } else {
            // An extension, or whitespace the decoder rules on: the line ends the size.
            state = .skippingLine(then: .chunkData(size: number))
        }
    }

    private mutating func stop() {
        state = .stopped
    }

    // MARK: Bytes

    private static func lineFeed(in bytes: UnsafeRawBufferPointer, from index: Int) -> Int? {
        firstIndex(of: .lineFeed, in: bytes, from: index, to: bytes.count)
    }

    private static func firstIndex(of byte: UInt8, in bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Int? {
        guard start < end, let base = bytes.baseAddress, let found = memchr(base + start, Int32(byte), end - start) else {
            return nil
        }
        return UnsafeRawPointer(found) - base
    }

    /// Whether a field name starting with `byte` may be one of ``Field``'s.
    private static func mayNameFramingField(_ byte: UInt8) -> Bool {
        switch lowercased(byte) {
        case UInt8(ascii: "c"), UInt8(ascii: "t"), UInt8(ascii: "u"): true
        default: false
        }
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
    }

    private static func decimalDigit(_ byte: UInt8) -> Int? {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) ? Int(byte &- UInt8(ascii: "0")) : nil
    }

    private static func hexDigit(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte &- UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte &- UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte &- UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}

extension UInt8 {
    fileprivate static let space = UInt8(ascii: " ")
    fileprivate static let tab = UInt8(ascii: "\t")
    fileprivate static let carriageReturn = UInt8(ascii: "\r")
    fileprivate static let lineFeed = UInt8(ascii: "\n")
    fileprivate static let colon = UInt8(ascii: ":")
    fileprivate static let comma = UInt8(ascii: ",")
}
