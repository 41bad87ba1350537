import NIOCore

/// The DNS wire format (RFC 1035) for what service discovery asks: A, AAAA and SRV (RFC 2782)
/// questions, and the records in their answers. Names in answers may be compressed; pointers
/// are followed a bounded number of times, so a hostile answer cannot loop.
package enum DNSMessage {
    /// A record type Fulcrum asks for.
    package enum RecordType: UInt16, Sendable {
        case a = 1
        case cname = 5
        case aaaa = 28
        case srv = 33
    }

    /// One resource record of an answer.
    package struct Record: Sendable, Equatable {
        package enum Data: Sendable, Equatable {
            /// An IPv4 (4 bytes) or IPv6 (16 bytes) address.
            case address([UInt8])
            case service(priority: UInt16, weight: UInt16, port: UInt16, target: String)
            /// A type Fulcrum does not read (a CNAME on the way, for one).
            case other
        }

        package var name: String
        package var type: UInt16
        package var ttl: UInt32
        package var data: Data
    }

    /// What an answer said.
    package struct Response: Sendable, Equatable {
        package var id: UInt16
        /// 0: no error; 3: the name does not exist.
        package var responseCode: UInt8
        package var answers: [Record]
        /// The additional section (a server often sends the SRV targets' addresses there).
        package var additional: [Record]
    }

    /// Why a message could not be read.
    package struct ParseError: Error, CustomStringConvertible {
        package let description: String
        init(_ description: String) { self.description = "DNS: \(description)" }
    }

    /// A query for `name`'s records of `type`, recursion desired.
    package static func query(id: UInt16, name: String, type: RecordType) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(id)
        buffer.writeInteger(UInt16(0x0100))  // a standard query, recursion desired
        buffer.writeInteger(UInt16(1))  // one question
        buffer.writeInteger(UInt16(0))
        buffer.writeInteger(UInt16(0))
        buffer.writeInteger(UInt16(0))
        for label in name.split(separator: ".") {
            let bytes = Array(label.utf8.prefix(63))
            buffer.writeInteger(UInt8(bytes.count))
            buffer.writeBytes(bytes)
        }
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(type.rawValue)
        buffer.writeInteger(UInt16(1))  // class IN
        return buffer
    }

    /// Reads a response.
    package static func response(_ message: ByteBuffer) throws -> Response {
        var reader = message
        guard let id = reader.readInteger(as: UInt16.self), let flags = reader.readInteger(as: UInt16.self),
            let questions = reader.readInteger(as: UInt16.self), let answers = reader.readInteger(as: UInt16.self),
            let authorities = reader.readInteger(as: UInt16.self), let additional = reader.readInteger(as: UInt16.self)
        else { throw ParseError("a message shorter than its header") }
        guard flags & 0x8000 != 0 else { throw ParseError("a query, not a response") }
        for _ in 0..<questions {
            _ = try readName(&reader, in: message)
            guard reader.readInteger(as: UInt32.self) != nil else { throw ParseError("a question cut short") }
        }
        var answerRecords: [Record] = []
        for _ in 0..<answers { answerRecords.append(try readRecord(&reader, in: message)) }
        for _ in 0..<authorities { _ = try readRecord(&reader, in: message) }
        var additionalRecords: [Record] = []
        for _ in 0..<additional {
            // An OPT record (EDNS) or anything unreadable at the end changes nothing asked.
            guard let record = try? readRecord(&reader, in: message) else { break }
            additionalRecords.append(record)
        }
        return Response(id: id, responseCode: UInt8(flags & 0x000F), answers: answerRecords, additional: additionalRecords)
    }

    private static func readRecord(_ reader: inout ByteBuffer, in message: ByteBuffer) throws -> Record {
        let name = try readName(&reader, in: message)
        guard let type = reader.readInteger(as: UInt16.self), reader.readInteger(as: UInt16.self) != nil,
            let ttl = reader.readInteger(as: UInt32.self), let length = reader.readInteger(as: UInt16.self),
            var data = reader.readSlice(length: Int(length))
        else { throw ParseError("a record cut short") }
        switch (type, Int(length)) {
        case (RecordType.a.rawValue, 4), (RecordType.aaaa.rawValue, 16):
            return Record(name: name, type: type, ttl: ttl, data: .address(data.readBytes(length: Int(length))!))
        case (RecordType.srv.rawValue, 7...):
            let priority = data.readInteger(as: UInt16.self)!
            let weight = data.readInteger(as: UInt16.self)!
            let port = data.readInteger(as: UInt16.self)!
            // RFC 2782 says the target is not compressed; a pointer is followed all the same.
            let targetName = try readName(&data, in: message)
            return Record(name: name, type: type, ttl: ttl, data: .service(priority: priority, weight: weight, port: port, target: targetName))
        default:
            return Record(name: name, type: type, ttl: ttl, data: .other)
        }
    }

    /// A name at `reader`'s position; pointers into `message` are followed, at most 32 times.
    private static func readName(_ reader: inout ByteBuffer, in message: ByteBuffer) throws -> String {
        var labels: [String] = []
        var cursor = reader
        var jumped = false
        for _ in 0..<128 {
            guard let length = cursor.readInteger(as: UInt8.self) else { throw ParseError("a name cut short") }
            if length == 0 {
                if !jumped { reader = cursor }
                return labels.joined(separator: ".")
            }
            if length & 0xC0 == 0xC0 {
                guard let low = cursor.readInteger(as: UInt8.self) else { throw ParseError("a pointer cut short") }
                if !jumped {
                    reader = cursor
                    jumped = true
                }
                let offset = Int(length & 0x3F) << 8 | Int(low)
                guard offset < message.writerIndex else { throw ParseError("a pointer out of the message") }
                cursor = message
                cursor.moveReaderIndex(to: message.readerIndex + offset)
                continue
            }
            guard length < 64, let label = cursor.readString(length: Int(length)) else { throw ParseError("a label cut short") }
            labels.append(label)
        }
        throw ParseError("a name of too many labels or pointers")
    }
}
