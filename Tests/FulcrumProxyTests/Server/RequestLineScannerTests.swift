import Testing

@testable import FulcrumProxy

/// The raw-byte check of request-line spacing: it must find every request line (after bodies of
/// each framing, and across reads), flag a run of spaces in one, and nothing else.
@Suite("Request line scanner")
struct RequestLineScannerTests {
    /// The absolute offset of the first flagged space, feeding `stream` in the given pieces.
    private static func flaggedOffset(_ stream: String, splitEvery size: Int? = nil) -> Int? {
        let bytes = Array(stream.utf8)
        var scanner = RequestLineScanner()
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + (size ?? bytes.count))
            let verdict = bytes[start..<end].withUnsafeBytes { scanner.scan($0) }
            if case .doubleSpace(let offset) = verdict { return start + offset }
            start = end
        }
        return nil
    }

    /// The offset found in one read, and the same in reads of every size from 1 to 7 bytes.
    private static func expectFlag(_ stream: String, at offset: Int?, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(flaggedOffset(stream) == offset, "whole", sourceLocation: sourceLocation)
        for size in 1...7 {
            #expect(flaggedOffset(stream, splitEvery: size) == offset, "in \(size)-byte reads", sourceLocation: sourceLocation)
        }
    }

    private static func offset(of marker: String, in stream: String) -> Int {
        let range = stream.range(of: marker)!
        return stream.utf8.distance(from: stream.startIndex, to: range.lowerBound)
    }

    @Test("valid streams are never flagged, whatever their framing")
    func validStreams() {
        let streams = [
            "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            "\r\n\r\nGET /x?q=a%20b HTTP/1.0\r\n\r\n",
            // Bodies holding double spaces and lines that look like requests.
            "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 22\r\n\r\nGET  /x HTTP/1.1\r\n\r\n  "
                + "GET /y HTTP/1.1\r\nHost: a\r\n\r\n",
            "POST /p HTTP/1.1\r\ncontent-length:  5 \r\nHost: a\r\n\r\na  b GET /q HTTP/1.1\r\n\r\n",
            "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "5;name=\"a  b\"\r\nA  B \r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1  2\r\n\r\n"
                + "GET /after HTTP/1.1\r\nHost: a\r\n\r\n",
            "POST /c HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n3\r\n  x\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n",
            // Field names that start like framing fields, and values in odd case.
            "GET / HTTP/1.1\r\nContent-Type: a  b\r\nConnections: upgrade\r\nUpgraded: x\r\nTE: trailers\r\n\r\n",
        ]
        for stream in streams { Self.expectFlag(stream, at: nil) }
    }

    @Test("a run of spaces in a request line is flagged at its second space")
    func doubleSpaces() {
        for stream in ["GET  /x HTTP/1.1\r\n\r\n", "GET /x  HTTP/1.1\r\n\r\n", "GET   /x HTTP/1.1\r\n\r\n"] {
            Self.expectFlag(stream, at: Self.offset(of: "  ", in: stream) + 1)
        }
    }

    @Test("a request line after each kind of body, and after empty lines, is found and flagged")
    func pipelinedRequestLines() {
        let second = "GET /x  HTTP/1.1\r\nHost: a\r\n\r\n"
        let firsts = [
            "GET / HTTP/1.1\r\nHost: a\r\n\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcd",
            "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            "POST / HTTP/1.1\r\ntransfer-encoding: CHUNKED\r\n\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nab\r\n0;z\r\nT: 1\r\nU: 2\r\n\r\n",
            "GET / HTTP/1.1\r\nConnection: keep-alive\r\nUpgrade: websocket\r\n\r\n",
        ]
        for first in firsts {
            Self.expectFlag(first + second, at: first.utf8.count + Self.offset(of: "  ", in: second) + 1)
        }
    }

    @Test("leading and trailing spaces, and tabs, are the decoder's to refuse")
    func leftToTheDecoder() {
        for stream in ["  GET / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1 \r\n\r\n", "GET\t\t/ HTTP/1.1\r\n\r\n"] {
            Self.expectFlag(stream, at: nil)
        }
    }

    @Test("after an upgrade, CONNECT, the HTTP/2 preface or a framing the decoder refuses, bytes are not requests")
    func scanStops() {
        let spaced = "GET  /x HTTP/1.1\r\n\r\n"
        let heads = [
            "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 4x\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n",
        ]
        for head in heads { Self.expectFlag(head + spaced, at: nil) }
    }
}
