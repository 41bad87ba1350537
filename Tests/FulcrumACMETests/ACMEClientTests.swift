import Crypto
import Foundation
import FulcrumACME
import FulcrumTestSupport
import Logging
import SwiftASN1
import Testing
import X509

@Suite(
    "ACME against a real pebble",
    .enabled(if: PebbleProcess.executable != nil && DnsmasqProcess.executable != nil, "pebble or dnsmasq is not installed: skipped"),
    .timeLimit(.minutes(2))
)
struct ACMEClientTests {
    @Test("An account, an order, HTTP-01 for two names, and the chain pebble issues for them")
    func issues() async throws {
        let challenges = HTTP01Challenges()
        let server = try await ChallengeServer.start(challenges)
        let dns = try await DnsmasqProcess.start(hosts: ["127.0.0.1 www.fulcrum.test", "127.0.0.1 api.fulcrum.test"])
        let pebble = try await PebbleProcess.start(httpPort: server.port, dnsServer: dns.port)
        let http = pebble.makeClient()
        defer {
            pebble.stop()
            dns.stop()
        }
        do {
            let client = ACMEClient(
                settings: .init(directory: pebble.directoryURL, email: "ops@fulcrum.test"),
                accountKey: ACMEAccountKey(),
                http: http,
                challenges: challenges,
                logger: Logger(label: "acme.test")
            )
            let issued = try await client.obtain(domains: ["www.fulcrum.test", "api.fulcrum.test"])
            let chain = try PEMDocument.parseMultiple(pemString: issued.chainPEM).map { try Certificate(pemDocument: $0) }
            #expect(chain.count >= 2)
            let names = try chain[0].extensions.subjectAlternativeNames.map { Array($0) } ?? []
            #expect(names.count == 2 && names.contains(.dnsName("www.fulcrum.test")) && names.contains(.dnsName("api.fulcrum.test")))
            // The key that came with it is the certificate's.
            let key = try P256.Signing.PrivateKey(pemRepresentation: issued.privateKeyPEM)
            #expect(chain[0].publicKey == Certificate.PublicKey(key.publicKey))
            // Published tokens are withdrawn once the CA has checked them.
            #expect(challenges.answer(forPath: "/.well-known/acme-challenge/x") == nil)
        } catch {
            Issue.record(error)
        }
        try await http.shutdown()
        try await server.stop()
    }

    @Test("A name whose challenge cannot be fetched fails with the CA's reason, and nothing is issued")
    func failure() async throws {
        let challenges = HTTP01Challenges()
        let server = try await ChallengeServer.start(challenges)
        // The name points where nothing answers HTTP-01.
        let dns = try await DnsmasqProcess.start(hosts: ["127.0.0.9 down.fulcrum.test"])
        let pebble = try await PebbleProcess.start(httpPort: server.port, dnsServer: dns.port)
        let http = pebble.makeClient()
        defer {
            pebble.stop()
            dns.stop()
        }
        let client = ACMEClient(
            settings: .init(directory: pebble.directoryURL),
            accountKey: ACMEAccountKey(),
            http: http,
            challenges: challenges,
            logger: Logger(label: "acme.test")
        )
        await #expect {
            _ = try await client.obtain(domains: ["down.fulcrum.test"])
        } throws: { error in
            "\(error)".contains("down.fulcrum.test: the authorization is invalid")
        }
        try await http.shutdown()
        try await server.stop()
    }

    @Test("The JWK thumbprint of RFC 7638's form, and the key authorization built on it")
    func thumbprint() throws {
        let key = ACMEAccountKey()
        let raw = key.privateKey.publicKey.rawRepresentation
        #expect(key.jwk.map(\.0) == ["crv", "kty", "x", "y"])
        #expect(key.jwk[2].1 == Base64URL.encode(raw.prefix(32)))
        #expect(!key.thumbprint.contains("=") && key.thumbprint.count == 43)
        #expect(key.keyAuthorization(token: "abc") == "abc.\(key.thumbprint)")
        // A JWS verifies with the account's public key.
        let jws = try JSONSerialization.jsonObject(with: key.sign(Data("{}".utf8), url: "https://ca/x", nonce: "n1", keyID: nil)) as! [String: String]
        let signingInput = Data("\(jws["protected"]!).\(jws["payload"]!)".utf8)
        let signature = try P256.Signing.ECDSASignature(rawRepresentation: Self.decode(jws["signature"]!))
        #expect(key.privateKey.publicKey.isValidSignature(signature, for: signingInput))
        let header = try JSONSerialization.jsonObject(with: Self.decode(jws["protected"]!)) as! [String: Any]
        #expect(header["alg"] as? String == "ES256" && header["nonce"] as? String == "n1" && header["url"] as? String == "https://ca/x")
        #expect((header["jwk"] as? [String: String])?["crv"] == "P-256" && header["kid"] == nil)
    }

    private static func decode(_ text: String) -> Data {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)!
    }
}
