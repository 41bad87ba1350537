import NIOHTTP1

/// Why bytes a client sent are not a request Fulcrum takes; the client gets a 400 (or 431)
/// and the connection closes.
enum MalformedRequest: Error, Equatable {
    /// The HTTP/1.1 decoder refused it.
    case unparsable(HTTPParserError)
    /// Its request line has a run of spaces between parts (RFC 9112 §3), which the decoder
    /// would have skipped; found by ``RequestLineScanner`` before the decoder.
    case requestLineSpacing
}
