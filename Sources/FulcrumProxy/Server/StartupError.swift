import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why the data plane could not apply a configuration, naming the part of it at fault.
package enum StartupError: Error, CustomStringConvertible {
    /// A server's host name did not resolve.
    case unresolvableServer(backend: String, server: String, address: String, reason: String)
    /// A backend's `servers_from` name has no SRV record DNS gives.
    case unresolvableService(backend: String, name: String, reason: String)
    /// A frontend could not listen on one of its addresses.
    case cannotListen(frontend: String, address: String, reason: String)
    /// A server's `tls` settings could not be applied (unreadable CA or client certificate).
    case badServerTLS(backend: String, server: String, reason: String)
    /// A TLS frontend has no certificate that can serve; `problems` says why for each file.
    case noUsableCertificate(frontend: String, directory: String, problems: [String])
    /// The anti-bot shield's `secret_env` names a variable that is unset or too short.
    case missingSecret(frontend: String, variable: String)
    /// `global.store`'s host name did not resolve.
    case unresolvableStore(address: String, reason: String)
    /// A reload after the server began shutting down.
    case notRunning

    package var description: String {
        switch self {
        case .unresolvableServer(let backend, let server, let address, let reason):
            "backend \(backend), server \(server): cannot resolve \(address) (\(reason))"
        case .unresolvableService(let backend, let name, let reason):
            "backend \(backend), servers_from: cannot resolve SRV \(name) (\(reason))"
        case .cannotListen(let frontend, let address, let reason):
            "frontend \(frontend): cannot listen on \(address) (\(reason))"
        case .badServerTLS(let backend, let server, let reason):
            "backend \(backend), server \(server): cannot set up TLS (\(reason))"
        case .unresolvableStore(let address, let reason):
            "global.store: cannot resolve \(address) (\(reason))"
        case .notRunning:
            "the proxy is shutting down; the configuration was not applied"
        case .missingSecret(let frontend, let variable):
            "frontend \(frontend): antibot.challenge.secret_env names \(variable), which is not set or shorter than 16 bytes"
        case .noUsableCertificate(let frontend, let directory, let problems):
            "frontend \(frontend): no usable certificate in \(directory)"
                + (problems.isEmpty ? "" : " (\(problems.joined(separator: "; ")))")
        }
    }
}

/// The most readable account of a NIO or system error (start-up errors, connect failures).
func describeNetworkError(_ error: Error) -> String {
    if case .connectTimeout? = error as? ChannelError {
        return "connect timeout"
    }
    if let ioError = error as? IOError {
        return String(cString: strerror(ioError.errnoCode))
    }
    if let unknownHost = error as? SocketAddressError.UnknownHost {
        return unknownHost.errorDescription
    }
    return "\(error)"
}
