import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import SwiftASN1
import X509

/// Obtains certificates from an ACME CA (RFC 8555), such as Let's Encrypt or pebble: an
/// account (created or found again by its key), an order for the domains, each
/// authorization's challenge answered by `challenges` (HTTP-01 or TLS-ALPN-01) while the CA
/// checks it, then a CSR for a fresh P-256 key, and the chain the CA issues.
///
/// No Swift ACME client is among the packages this project may use; this one uses
/// AsyncHTTPClient, swift-crypto (ES256) and swift-certificates (the CSR).
package struct ACMEClient: Sendable {
    package struct Settings: Sendable {
        /// The CA's directory URL.
        package var directory: String
        /// The account's contact (`mailto:`); nil: none.
        package var email: String?
        /// How often a pending authorization or order is asked again.
        package var pollInterval: Duration = .milliseconds(500)
        /// How long an order may take, all in all.
        package var timeout: Duration = .seconds(120)

        package init(directory: String, email: String? = nil) {
            self.directory = directory
            self.email = email
        }
    }

    /// What the CA issued: the chain (leaf first) and its key, both PEM.
    package struct IssuedCertificate: Sendable {
        package var chainPEM: String
        package var privateKeyPEM: String
    }

    private let settings: Settings
    private let accountKey: ACMEAccountKey
    private let http: HTTPClient
    private let challenges: any ACMEChallengeResponder
    private let logger: Logger

    package init(settings: Settings, accountKey: ACMEAccountKey, http: HTTPClient, challenges: any ACMEChallengeResponder, logger: Logger) {
        self.settings = settings
        self.accountKey = accountKey
        self.http = http
        self.challenges = challenges
        self.logger = logger
    }

    /// Runs one order for `domains` to its end: the certificate, or the CA's reason.
    package func obtain(domains: [String]) async throws -> IssuedCertificate {
        let deadline = ContinuousClock.now + settings.timeout
        var session = try await ACMESession(directory: settings.directory, http: http, key: accountKey)
        var account: [String: Any] = ["termsOfServiceAgreed": true]
        if let email = settings.email { account["contact"] = ["mailto:\(email)"] }
        let created = try await session.post(session.directory.newAccount, json: account)
        guard let accountURL = created.headers.first(name: "Location") else { throw ACMEError.protocolViolation("no account URL") }
        session.accountURL = accountURL

        let identifiers = domains.map { ["type": "dns", "value": $0] }
        let placed = try await session.post(session.directory.newOrder, json: ["identifiers": identifiers])
        guard let orderURL = placed.headers.first(name: "Location") else { throw ACMEError.protocolViolation("no order URL") }
        var order = try ACMEOrder(placed.body)
        for authorizationURL in order.authorizations {
            try await authorize(authorizationURL, session: &session, deadline: deadline)
        }

        let certificateKey = P256.Signing.PrivateKey()
        let csr = try Self.signingRequest(domains: domains, key: certificateKey)
        order = try ACMEOrder(try await session.post(order.finalize, json: ["csr": Base64URL.encode(csr)]).body)
        while order.status == "processing" || order.status == "pending" || order.status == "ready" {
            try await wait(until: deadline, for: "the order")
            order = try ACMEOrder(try await session.post(orderURL, json: nil).body)
        }
        guard order.status == "valid", let certificateURL = order.certificate else {
            throw ACMEError.refused("the order is \(order.status)\(order.problem.map { ": \($0)" } ?? "")")
        }
        let chain = try await session.post(certificateURL, json: nil, accept: "application/pem-certificate-chain")
        return IssuedCertificate(chainPEM: String(decoding: chain.body, as: UTF8.self), privateKeyPEM: certificateKey.pemRepresentation)
    }

    /// Answers one authorization's challenge (of `challenges`' type) and waits until the CA
    /// has checked it.
    private func authorize(_ url: String, session: inout ACMESession, deadline: ContinuousClock.Instant) async throws {
        var authorization = try ACMEAuthorization(try await session.post(url, json: nil).body)
        if authorization.status == "valid" { return }
        let type = challenges.challengeType
        guard let challenge = authorization.challenges.first(where: { $0.type == type }), let token = challenge.token else {
            throw ACMEError.refused("\(authorization.domain): the CA offers no \(type) challenge")
        }
        let domain = authorization.domain
        try challenges.publish(domain: domain, token: token, keyAuthorization: accountKey.keyAuthorization(token: token))
        defer { challenges.withdraw(domain: domain, token: token) }
        _ = try await session.post(challenge.url, json: [String: Any]())
        while authorization.status == "pending" {
            try await wait(until: deadline, for: "\(authorization.domain)'s authorization")
            authorization = try ACMEAuthorization(try await session.post(url, json: nil).body)
        }
        guard authorization.status == "valid" else {
            let reason = authorization.challenges.compactMap(\.problem).first.map { ": \($0)" } ?? ""
            throw ACMEError.refused("\(authorization.domain): the authorization is \(authorization.status)\(reason)")
        }
        logger.debug("ACME: authorized", metadata: ["domain": "\(authorization.domain)"])
    }

    private func wait(until deadline: ContinuousClock.Instant, for what: String) async throws {
        guard ContinuousClock.now < deadline else { throw ACMEError.refused("\(what) did not complete within \(settings.timeout)") }
        try await Task.sleep(for: settings.pollInterval)
    }

    /// A CSR (RFC 2986) for `domains` as subject alternative names, the first as common name, DER.
    static func signingRequest(domains: [String], key: P256.Signing.PrivateKey) throws -> [UInt8] {
        let extensions = try Certificate.Extensions { SubjectAlternativeNames(domains.map { .dnsName($0) }) }
        let csr = try CertificateSigningRequest(
            version: .v1,
            subject: try DistinguishedName { CommonName(domains[0]) },
            privateKey: .init(key),
            attributes: CertificateSigningRequest.Attributes([try .init(ExtensionRequest(extensions: extensions))]),
            signatureAlgorithm: .ecdsaWithSHA256
        )
        var serializer = DER.Serializer()
        try serializer.serialize(csr)
        return serializer.serializedBytes
    }
}

/// Why an order failed.
package enum ACMEError: Error, CustomStringConvertible {
    /// The CA answered with an error document (RFC 7807).
    case problem(url: String, status: UInt, detail: String)
    /// The CA did not give what RFC 8555 says it must.
    case protocolViolation(String)
    /// An authorization or the order ended other than valid.
    case refused(String)

    package var description: String {
        switch self {
        case .problem(let url, let status, let detail): "ACME: \(url) answered \(status): \(detail)"
        case .protocolViolation(let what): "ACME: the CA broke the protocol: \(what)"
        case .refused(let why): "ACME: \(why)"
        }
    }
}
