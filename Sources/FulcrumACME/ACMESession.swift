import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// One conversation with a CA: its directory, the nonce to sign with next, the account URL;
/// every request a JWS POST (§6.2), retried once on `badNonce` (§6.5).
struct ACMESession {
    struct Directory {
        var newNonce: String
        var newAccount: String
        var newOrder: String
    }

    struct Response {
        var headers: HTTPHeaders
        var body: Data
    }

    let directory: Directory
    var accountURL: String?
    private var nonce: String?
    private let http: HTTPClient
    private let key: ACMEAccountKey

    init(directory url: String, http: HTTPClient, key: ACMEAccountKey) async throws {
        self.http = http
        self.key = key
        let response = try await http.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
        let body = try await Self.body(of: response)
        guard response.status == .ok, let fields = try JSONSerialization.jsonObject(with: body) as? [String: Any],
            let newNonce = fields["newNonce"] as? String, let newAccount = fields["newAccount"] as? String,
            let newOrder = fields["newOrder"] as? String
        else { throw ACMEError.protocolViolation("\(url) is not an ACME directory (\(response.status.code))") }
        self.directory = Directory(newNonce: newNonce, newAccount: newAccount, newOrder: newOrder)
    }

    /// POSTs `json` (nil: POST-as-GET) to `url`, signed; throws the CA's problem on an error.
    mutating func post(_ url: String, json: Any?, accept: String? = nil) async throws -> Response {
        let payload = try json.map { try JSONSerialization.data(withJSONObject: $0, options: [.withoutEscapingSlashes]) }
        for attempt in 0..<2 {
            let signed = try key.sign(payload, url: url, nonce: try await takeNonce(), keyID: accountURL)
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/jose+json")
            if let accept { request.headers.add(name: "Accept", value: accept) }
            request.body = .bytes(ByteBuffer(bytes: signed))
            let response = try await http.execute(request, timeout: .seconds(30))
            let body = try await Self.body(of: response)
            nonce = response.headers.first(name: "Replay-Nonce")
            guard response.status.code >= 400 else { return Response(headers: response.headers, body: body) }
            let problem = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
            if problem?["type"] as? String == "urn:ietf:params:acme:error:badNonce", attempt == 0 { continue }
            let detail = (problem?["detail"] as? String) ?? String(decoding: body.prefix(300), as: UTF8.self)
            throw ACMEError.problem(url: url, status: response.status.code, detail: detail)
        }
        throw ACMEError.protocolViolation("\(url) refused two fresh nonces")
    }

    private mutating func takeNonce() async throws -> String {
        if let nonce {
            self.nonce = nil
            return nonce
        }
        var request = HTTPClientRequest(url: directory.newNonce)
        request.method = .HEAD
        let response = try await http.execute(request, timeout: .seconds(30))
        guard let fresh = response.headers.first(name: "Replay-Nonce") else { throw ACMEError.protocolViolation("no Replay-Nonce") }
        return fresh
    }

    private static func body(of response: HTTPClientResponse) async throws -> Data {
        Data(try await response.body.collect(upTo: 1 << 20).readableBytesView)
    }
}

/// An order's state (§7.1.3).
struct ACMEOrder {
    var status: String
    var authorizations: [String]
    var finalize: String
    var certificate: String?
    var problem: String?

    init(_ body: Data) throws {
        guard let fields = try JSONSerialization.jsonObject(with: body) as? [String: Any], let status = fields["status"] as? String,
            let finalize = fields["finalize"] as? String
        else { throw ACMEError.protocolViolation("an order without status or finalize") }
        self.status = status
        self.finalize = finalize
        self.authorizations = fields["authorizations"] as? [String] ?? []
        self.certificate = fields["certificate"] as? String
        self.problem = (fields["error"] as? [String: Any])?["detail"] as? String
    }
}

/// An authorization's state and challenges (§7.1.4).
struct ACMEAuthorization {
    struct Challenge {
        var type: String
        var url: String
        var token: String?
        var problem: String?
    }

    var status: String
    var domain: String
    var challenges: [Challenge]

    init(_ body: Data) throws {
        guard let fields = try JSONSerialization.jsonObject(with: body) as? [String: Any], let status = fields["status"] as? String
        else { throw ACMEError.protocolViolation("an authorization without status") }
        self.status = status
        self.domain = (fields["identifier"] as? [String: Any])?["value"] as? String ?? "?"
        self.challenges = (fields["challenges"] as? [[String: Any]] ?? []).compactMap { challenge in
            guard let type = challenge["type"] as? String, let url = challenge["url"] as? String else { return nil }
            return Challenge(
                type: type,
                url: url,
                token: challenge["token"] as? String,
                problem: (challenge["error"] as? [String: Any])?["detail"] as? String
            )
        }
    }
}
