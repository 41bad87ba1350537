import NIOCore

/// Decodes RESP2 replies, one value per `decode`, with bounds: a server (or anything answering
/// on its port) cannot make Fulcrum buffer without limit or recurse without end.
package struct RESPDecoder: NIOSingleStepByteToMessageDecoder {
    package typealias InboundOut = RESPValue

    /// The longest bulk string accepted (replies here are a few numbers).
    package static let maxBulkLength = 1 << 20
    /// The most elements in an array, and the deepest nesting.
    package static let maxArrayCount = 1024
    package static let maxDepth = 8
    /// The longest line (a simple string, an error, a length).
    package static let maxLineLength = 64 * 1024

    package init() {}

    package mutating func decode(buffer: inout ByteBuffer) throws -> RESPValue? {
        var copy = buffer
        guard let value = try Self.parse(&copy, depth: 0) else {
            guard buffer.readableBytes <= Self.maxBulkLength + Self.maxLineLength else {
                throw RESPProtocolError("a reply longer than Fulcrum accepts")
            }
            return nil
        }
        buffer = copy
        return value
    }

    package mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> RESPValue? {
        try decode(buffer: &buffer)
    }

    /// One value from the front of `buffer`, or nil (and `buffer` in any state) when it is
    /// not all there yet.
    private static func parse(_ buffer: inout ByteBuffer, depth: Int) throws -> RESPValue? {
        guard let type = buffer.readInteger(as: UInt8.self), let line = try readLine(&buffer) else { return nil }
        switch type {
        case UInt8(ascii: "+"):
            return .simpleString(line)
        case UInt8(ascii: "-"):
            return .error(line)
        case UInt8(ascii: ":"):
            guard let value = Int(line) else { throw RESPProtocolError("an integer reply that is not one: \(line.prefix(40))") }
            return .integer(value)
        case UInt8(ascii: "$"):
            guard let length = Int(line), length >= -1, length <= maxBulkLength else {
                throw RESPProtocolError("a bulk string's length out of range: \(line.prefix(40))")
            }
            guard length >= 0 else { return .bulkString(nil) }
            guard buffer.readableBytes >= length + 2, let bytes = buffer.readBytes(length: length) else { return nil }
            guard buffer.readInteger(as: UInt16.self) == 0x0D0A else { throw RESPProtocolError("a bulk string not ended by CRLF") }
            return .bulkString(bytes)
        case UInt8(ascii: "*"):
            guard let count = Int(line), count >= -1, count <= maxArrayCount else {
                throw RESPProtocolError("an array's length out of range: \(line.prefix(40))")
            }
            guard count >= 0 else { return .array(nil) }
            guard depth < maxDepth else { throw RESPProtocolError("arrays nested deeper than \(maxDepth)") }
            var elements: [RESPValue] = []
            elements.reserveCapacity(count)
            for _ in 0..<count {
                guard let element = try parse(&buffer, depth: depth + 1) else { return nil }
                elements.append(element)
            }
            return .array(elements)
        default:
            throw RESPProtocolError("a reply of unknown type \(type)")
        }
    }

    /// The text up to CRLF, which is consumed; nil when no CRLF has arrived yet.
    private static func readLine(_ buffer: inout ByteBuffer) throws -> String? {
        guard let end = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\r")) else {
            guard buffer.readableBytes <= maxLineLength else { throw RESPProtocolError("a line longer than \(maxLineLength) bytes") }
            return nil
        }
        let length = end - buffer.readerIndex
        guard buffer.readableBytes >= length + 2 else { return nil }
        let line = buffer.readString(length: length)!
        guard buffer.readInteger(as: UInt16.self) == 0x0D0A else { throw RESPProtocolError("a CR not followed by LF") }
        return line
    }
}

/// The server's bytes are not RESP: the connection is closed.
package struct RESPProtocolError: Error, CustomStringConvertible {
    package let description: String
    init(_ description: String) { self.description = "Redis protocol error: \(description)" }
}

extension ByteBuffer {
    /// Writes `arguments` as a command: an array of bulk strings.
    package mutating func writeRESPCommand(_ arguments: [String]) {
        writeInteger(UInt8(ascii: "*"))
        writeDecimal(arguments.count)
        for argument in arguments {
            writeInteger(UInt8(ascii: "$"))
            writeDecimal(argument.utf8.count)
            writeString(argument)
            writeInteger(UInt16(0x0D0A))
        }
    }

    /// `value` in decimal, then CRLF (the lengths of RESP).
    private mutating func writeDecimal(_ value: Int) {
        // A small string: no allocation.
        writeString(String(value))
        writeInteger(UInt16(0x0D0A))
    }
}
