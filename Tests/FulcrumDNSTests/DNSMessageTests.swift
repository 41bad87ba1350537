import FulcrumDNS
import NIOCore
import Testing

@Suite("DNS messages: queries out, answers in, hostile answers refused")
struct DNSMessageTests {
    @Test("A query's bytes")
    func query() {
        let query = DNSMessage.query(id: 0x1234, name: "app.example", type: .srv)
        #expect(
            Array(query.readableBytesView) == [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
                + [3] + Array("app".utf8) + [7] + Array("example".utf8) + [0, 0, 33, 0, 1]
        )
    }

    /// A response to `app.example A` with two answers, the second name a pointer to the
    /// question's.
    static func response(answerName: [UInt8] = [0xC0, 12]) -> ByteBuffer {
        var buffer = ByteBuffer(bytes: [0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0])
        buffer.writeBytes([3] + Array("app".utf8) + [7] + Array("example".utf8) + [0, 0, 1, 0, 1])
        buffer.writeBytes([3] + Array("app".utf8) + [7] + Array("example".utf8) + [0])
        buffer.writeBytes([0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1])
        buffer.writeBytes(answerName + [0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 2])
        return buffer
    }

    @Test("Answers, compressed names followed")
    func answers() throws {
        let response = try DNSMessage.response(Self.response())
        #expect(response.id == 0x1234 && response.responseCode == 0)
        #expect(response.answers.map(\.name) == ["app.example", "app.example"])
        #expect(response.answers.map(\.data) == [.address([10, 0, 0, 1]), .address([10, 0, 0, 2])])
    }

    @Test("A pointer to itself, one out of the message, and a cut answer are refused")
    func hostile() {
        // The second answer's name points at itself (offset 56: the header, the question and
        // the first answer before it).
        #expect(throws: DNSMessage.ParseError.self) { try DNSMessage.response(Self.response(answerName: [0xC0, 56])) }
        #expect(throws: DNSMessage.ParseError.self) { try DNSMessage.response(Self.response(answerName: [0xC0, 0xFF])) }
        var cut = Self.response()
        cut.moveWriterIndex(to: cut.writerIndex - 3)
        #expect(throws: DNSMessage.ParseError.self) { try DNSMessage.response(cut) }
        #expect(throws: DNSMessage.ParseError.self) { try DNSMessage.response(ByteBuffer(bytes: [1, 2, 3])) }
    }
}
