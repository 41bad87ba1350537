import FulcrumBalancing
import FulcrumConfig
import NIOHTTP1

/// The key `algorithm: hash` places a request by (`hash_key`), hashed the same way in every
/// process (`StableHash`), so that several Fulcrum instances send a key to the same server.
enum RequestHashKey {
    /// Nil when the request has no such key (the header, cookie or parameter is missing): it
    /// is then balanced by round robin, as HAProxy does.
    static func of(_ request: HTTPRequestHead, key: HashKey, client: ClientInfo) -> UInt64? {
        switch key {
        case .source: StableHash.of(client.addressText)
        case .uri: StableHash.of(request.uri)
        case .header(let name): request.headers.first(name: name).map(StableHash.of)
        case .cookie(let name): RequestFields.cookie(name, in: request.headers).map(StableHash.of)
        case .query(let name): RequestFields.query(name, in: request.uri).map(StableHash.of)
        }
    }
}
