import FulcrumACME
import FulcrumConfig
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// The certificates of one TLS frontend, kept current: loaded from its directory at start and
/// again whenever a file there is added, replaced or removed (checked every `pollInterval`).
///
/// A reload builds a whole new `CertificateTable` off the event loops and swaps it in;
/// handshakes under way keep the context they chose, new ones see the new table. A reload
/// that finds problems logs each skipped file with its reason and serves what did load; one
/// that finds nothing usable keeps the previous certificates (and says so).
final class CertificateStore: Sendable {
    let frontend: String
    let tls: FrontendTLSConfig
    private let logger: Logger
    private let pollInterval: Duration
    private let state: NIOLockedValueBox<State>
    /// Obtains and renews the frontend's certificate into the directory (`tls.acme`).
    private let acme: ACMEManager?
    /// The TLS-ALPN-01 checks under way, which the frontend answers itself.
    private let validations = TLSALPN01Challenges()

    private struct State {
        var table: CertificateTable
        var signature: [String]
        var watcher: Task<Void, Never>?
    }

    /// Loads the directory now (blocking: call off the event loops) and logs what it found.
    ///
    /// - Throws: `StartupError.noUsableCertificate` when no certificate there can serve (with
    ///   `tls.acme`, none is needed yet: the handshakes fail until the CA has issued one).
    /// - Parameter challenges: the HTTP-01 answers the plain HTTP frontends serve, for
    ///   `challenge: http-01`.
    init(
        frontend: String,
        tls: FrontendTLSConfig,
        challenges: HTTP01Challenges = HTTP01Challenges(),
        logger: Logger,
        pollInterval: Duration = .seconds(2)
    ) throws {
        self.frontend = frontend
        self.tls = tls
        self.logger = logger
        self.pollInterval = pollInterval
        let signature = CertificateLoader.signature(of: tls.certificatesDirectory)
        let (table, problems) = CertificateLoader.load(tls)
        guard !table.certificates.isEmpty || tls.acme != nil else {
            throw StartupError.noUsableCertificate(
                frontend: frontend,
                directory: tls.certificatesDirectory,
                problems: problems.map(\.description)
            )
        }
        self.state = NIOLockedValueBox(State(table: table, signature: signature))
        let validations = self.validations
        self.acme = tls.acme.map { acme in
            let responder: any ACMEChallengeResponder =
                switch acme.challenge {
                case .http01: challenges
                case .tlsALPN01: validations
                }
            return ACMEManager(frontend: frontend, tls: tls, acme: acme, challenges: responder, logger: logger)
        }
        if table.certificates.isEmpty {
            logger.info("no certificate yet: waiting for the ACME CA", metadata: ["frontend": "\(frontend)"])
        } else {
            report(table, problems, reloaded: false)
        }
    }

    /// The certificate for a connection that asked for `serverName` (nil: no SNI).
    func certificate(for serverName: String?) -> CertificateLoader.Loaded? {
        state.withLockedValue { $0.table }.certificate(for: serverName)
    }

    /// Starts watching the directory. The checks read the file system, so they run on NIO's
    /// blocking-work thread pool, never on an event loop or the cooperative pool.
    func startWatching() {
        let task = Task { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: pollInterval)
                guard !Task.isCancelled else { return }
                try? await NIOThreadPool.singleton.runIfActive { self.reloadIfChanged() }
            }
        }
        state.withLockedValue { $0.watcher = task }
        // A new certificate is loaded at once rather than at the next poll.
        acme?.start { [weak self] in self?.reloadIfChanged() }
    }

    func stopWatching() {
        acme?.stop()
        state.withLockedValue { state in
            state.watcher?.cancel()
            state.watcher = nil
        }
    }

    /// Reloads when a file in the directory changed since the last load.
    func reloadIfChanged() {
        let signature = CertificateLoader.signature(of: tls.certificatesDirectory)
        guard signature != state.withLockedValue({ $0.signature }) else { return }
        let (table, problems) = CertificateLoader.load(tls)
        state.withLockedValue { state in
            if !table.certificates.isEmpty { state.table = table }
            state.signature = signature
        }
        report(table, problems, reloaded: true)
    }

    private func report(_ table: CertificateTable, _ problems: [CertificateLoader.Problem], reloaded: Bool) {
        let metadata: Logger.Metadata = ["frontend": "\(frontend)", "directory": "\(tls.certificatesDirectory)"]
        for problem in problems {
            let what = problem.skipsCertificate ? "certificate skipped" : "OCSP response"
            logger.warning("\(what): \(problem)", metadata: metadata)
        }
        let names = table.certificates.map { "\($0.file) (\($0.names.joined(separator: ", ")))" }.joined(separator: "; ")
        let verb = reloaded ? "certificates reloaded" : "certificates loaded"
        if table.certificates.isEmpty {
            logger.error("certificates changed, but none can serve; keeping the previous ones", metadata: metadata)
        } else {
            logger.info("\(verb): \(names)", metadata: metadata)
        }
    }

    /// The TLS context that answers `hello` (nil: bytes that are not a hello), or nil when
    /// none can: no certificate yet (ACME has not issued one), or a CA's TLS-ALPN-01 check of
    /// a name with none under way.
    func context(for hello: ClientHello?) -> NIOSSLContext? {
        if let hello, TLSALPN01Challenges.isValidation(offering: hello.applicationProtocols) {
            // RFC 8737 §3: such a connection is shown the check's certificate, or nothing.
            return hello.serverName.flatMap { validations.context(for: $0) }
        }
        return certificate(for: hello?.serverName)?.context
    }

    /// The first handler of a TLS connection: reads the client's hello, then puts a TLS
    /// handler with the context that answers it in its own place.
    func makeHelloHandler() -> ByteToMessageHandler<ClientHelloHandler> {
        ByteToMessageHandler(ClientHelloHandler { [self] hello in context(for: hello) })
    }
}
