import FulcrumConfig
import FulcrumDNS
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Asks DNS for the names a configuration's servers are given by: all of them when a
/// configuration is applied, and each again every `resolve_every` of its backends (HAProxy's
/// `resolvers`, Envoy's `STRICT_DNS` clusters).
///
/// Questions go over NIO's UDP, so resolving never blocks an event loop or a thread. A name
/// that cannot be resolved keeps the addresses it had; it is logged when it starts failing
/// and when it answers again, never per request.
final class ServerDiscovery: Sendable {
    /// One name to ask.
    enum Question: Hashable, Sendable, CustomStringConvertible {
        /// A server's host name: its A and AAAA records.
        case host(String)
        /// `servers_from.srv`: its SRV records.
        case service(String)

        var description: String {
            switch self {
            case .host(let name): name
            case .service(let name): "SRV \(name)"
            }
        }
    }

    private struct State {
        /// When each question was last asked.
        var askedAt: [Question: ContinuousClock.Instant] = [:]
        /// Questions whose last answer failed (logged once, when they start failing).
        var failing: Set<Question> = []
    }

    private let resolver: HostResolver
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    init(_ settings: DNSConfig?, group: any EventLoopGroup, logger: Logger) {
        let settings = settings ?? DNSConfig()
        let system = settings.nameservers.isEmpty ? ResolvConf.system() : ResolvConf()
        let nameservers =
            settings.nameservers.isEmpty
            ? system.nameservers
            : settings.nameservers.compactMap { try? SocketAddress(ipAddress: $0.host, port: $0.port) }
        let family: HostResolver.Family =
            switch settings.family {
            case .ipv4Preferred: .ipv4Preferred
            case .ipv6Preferred: .ipv6Preferred
            case .all: .all
            }
        self.resolver = HostResolver(
            dns: DNSResolver(nameservers: nameservers, timeout: TimeAmount(settings.timeout), group: group),
            searchList: system,
            family: family
        )
        self.logger = logger
    }

    /// Every question `config` asks, each with how often (its backends' shortest
    /// `resolve_every`).
    static func questions(in config: Config) -> [Question: Duration] {
        var questions: [Question: Duration] = [:]
        for backend in config.backends where backend.followsDNS {
            var asked = backend.servers.filter(\.address.hostIsName).map { Question.host($0.address.host) }
            if let source = backend.serversFrom { asked.append(.service(source.srv)) }
            for question in asked {
                questions[question] = min(questions[question] ?? backend.resolveEvery, backend.resolveEvery)
            }
        }
        return questions
    }

    /// Asks every question of `config` (at start, and on a reload). A question that fails
    /// keeps its answer in `last`; with none there, the configuration cannot be applied.
    func resolveAll(_ config: Config, last: DiscoveredServers) async throws -> DiscoveredServers {
        let questions = Array(Self.questions(in: config).keys)
        let outcomes = await ask(questions)
        var discovered = DiscoveredServers()
        for (question, outcome) in outcomes {
            switch (question, outcome) {
            case (.host(let name), .success(.host(let addresses))):
                discovered.hosts[name] = addresses
            case (.service(let name), .success(.service(let records))):
                discovered.services[name] = records
            case (.host(let name), _) where last.hosts[name] != nil:
                discovered.hosts[name] = last.hosts[name]
            case (.service(let name), _) where last.services[name] != nil:
                discovered.services[name] = last.services[name]
            case (_, .failure(let error)):
                throw Self.startupError(question, in: config, reason: error)
            default:
                continue
            }
        }
        return discovered
    }

    /// Asks the questions of `config` that are due, as of `now`, and returns what they
    /// answered over `last`; a question that fails keeps its answer there. Never throws.
    func refresh(_ config: Config, last: DiscoveredServers, now: ContinuousClock.Instant = .now) async -> DiscoveredServers {
        let due = state.withLockedValue { state in
            Self.questions(in: config).filter { question, interval in
                state.askedAt[question].map { now - $0 >= interval } ?? true
            }.map(\.key)
        }
        guard !due.isEmpty else { return last }
        var discovered = last
        for (question, outcome) in await ask(due) {
            switch (question, outcome) {
            case (.host(let name), .success(.host(let addresses))): discovered.hosts[name] = addresses
            case (.service(let name), .success(.service(let records))): discovered.services[name] = records
            default: continue
            }
        }
        return discovered
    }

    private enum Answer {
        case host([String])
        case service([DiscoveredServers.Service])
    }

    /// Asks `questions` at once; notes when each was asked, and logs a question that starts
    /// or stops failing.
    private func ask(_ questions: [Question]) async -> [(Question, Result<Answer, any Error>)] {
        let resolver = resolver
        let outcomes = await withTaskGroup(of: (Question, Result<Answer, any Error>).self) { group in
            for question in questions {
                group.addTask {
                    do {
                        switch question {
                        case .host(let name):
                            return (question, .success(.host(try await resolver.addresses(of: name))))
                        case .service(let name):
                            let records = try await resolver.services(name).map { record in
                                DiscoveredServers.Service(
                                    target: record.target,
                                    port: record.port,
                                    priority: record.priority,
                                    weight: record.weight,
                                    addresses: record.addresses.compactMap(\.ipAddress)
                                )
                            }
                            return (question, .success(.service(records)))
                        }
                    } catch {
                        return (question, .failure(error))
                    }
                }
            }
            var outcomes: [(Question, Result<Answer, any Error>)] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        let now = ContinuousClock.now
        let changes = state.withLockedValue { state in
            outcomes.compactMap { question, outcome -> (Question, (any Error)?)? in
                state.askedAt[question] = now
                switch outcome {
                case .success: return state.failing.remove(question) == nil ? nil : (question, nil)
                case .failure(let error): return state.failing.insert(question).inserted ? (question, error) : nil
                }
            }
        }
        for (question, error) in changes {
            if let error {
                logger.warning("DNS: no answer; its servers stay as they were", metadata: ["name": "\(question)", "reason": "\(error)"])
            } else {
                logger.info("DNS: answering again", metadata: ["name": "\(question)"])
            }
        }
        return outcomes
    }

    private static func startupError(_ question: Question, in config: Config, reason: any Error) -> StartupError {
        for backend in config.backends {
            switch question {
            case .host(let name):
                if let server = backend.servers.first(where: { $0.address.host == name }) {
                    return .unresolvableServer(
                        backend: backend.name,
                        server: server.name,
                        address: server.address.description,
                        reason: "\(reason)"
                    )
                }
            case .service(let name):
                if backend.serversFrom?.srv == name {
                    return .unresolvableService(backend: backend.name, name: name, reason: "\(reason)")
                }
            }
        }
        return .unresolvableServer(backend: "", server: "", address: question.description, reason: "\(reason)")
    }
}
