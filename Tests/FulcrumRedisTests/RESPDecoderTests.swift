import FulcrumRedis
import NIOCore
import Testing

@Suite("RESP: decoding replies, whole and in pieces, and refusing hostile ones")
struct RESPDecoderTests {
    private func decodeAll(_ text: String) throws -> [RESPValue] {
        var decoder = RESPDecoder()
        var buffer = ByteBuffer(string: text)
        var values: [RESPValue] = []
        while let value = try decoder.decode(buffer: &buffer) { values.append(value) }
        #expect(buffer.readableBytes == 0)
        return values
    }

    @Test("Every type, and nulls")
    func types() throws {
        let values = try decodeAll(
            "+OK\r\n-NOSCRIPT No matching script\r\n:-42\r\n$3\r\nabc\r\n$0\r\n\r\n$-1\r\n*-1\r\n*2\r\n:1\r\n*1\r\n$2\r\nhi\r\n"
        )
        #expect(
            values == [
                .simpleString("OK"), .error("NOSCRIPT No matching script"), .integer(-42), .bulkString(Array("abc".utf8)),
                .bulkString([]), .bulkString(nil), .array(nil), .array([.integer(1), .array([.bulkString(Array("hi".utf8))])]),
            ]
        )
    }

    @Test("A reply split at every byte decodes once it is whole, and not before")
    func pieces() throws {
        let text = Array("*3\r\n:1\r\n$5\r\nhe\r\no\r\n+x\r\n".utf8)
        for split in 1..<text.count {
            var decoder = RESPDecoder()
            var buffer = ByteBuffer(bytes: text[..<split])
            #expect(try decoder.decode(buffer: &buffer) == nil, "split at \(split)")
            buffer.writeBytes(text[split...])
            #expect(
                try decoder.decode(buffer: &buffer) == .array([.integer(1), .bulkString(Array("he\r\no".utf8)), .simpleString("x")])
            )
        }
    }

    @Test(
        "Hostile replies are refused",
        arguments: [
            "?what\r\n", ":12a\r\n", "$-2\r\n", "$\(RESPDecoder.maxBulkLength + 1)\r\n", "*100000\r\n", "$2\r\nabXY",
            "+OK\rX", String(repeating: "*1\r\n", count: RESPDecoder.maxDepth + 1) + ":1\r\n",
        ]
    )
    func hostile(text: String) {
        var decoder = RESPDecoder()
        var buffer = ByteBuffer(string: text)
        #expect(throws: RESPProtocolError.self) { _ = try decoder.decode(buffer: &buffer) }
    }

    @Test("A line with no end is refused once it outgrows the bound")
    func endlessLine() {
        var decoder = RESPDecoder()
        var buffer = ByteBuffer(string: "+" + String(repeating: "a", count: RESPDecoder.maxLineLength + 1))
        #expect(throws: RESPProtocolError.self) { _ = try decoder.decode(buffer: &buffer) }
    }

    @Test("Commands are arrays of bulk strings")
    func encoding() {
        var buffer = ByteBuffer()
        buffer.writeRESPCommand(["SET", "k", "vé"])
        #expect(String(buffer: buffer) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nvé\r\n")
    }
}
