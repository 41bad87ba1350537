/// One problem found in a configuration.
///
/// The description is meant to be shown to a person as is, one problem per line:
///
///     backends[0].servers[1].address (line 31): "127.0.0.1:99999" is not a valid port
///
/// `path` names the offending key in the document (`frontends[0].acls.api.path_prefix`);
/// problems that concern the whole document (a YAML syntax error, an unreadable file) use
/// the name of the source instead, usually the file's path.
package struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Where the problem is: keys joined by `.`, list positions as `[N]`.
    package var path: String
    /// The 1-based line of the offending YAML node, when the problem has one.
    package var line: Int?
    /// What is wrong, in words.
    package var message: String

    package init(path: String, line: Int? = nil, message: String) {
        self.path = path
        self.line = line
        self.message = message
    }

    package var description: String {
        if let line {
            return "\(path) (line \(line)): \(message)"
        }
        return "\(path): \(message)"
    }
}

/// Every problem found while loading a configuration.
///
/// Loading never stops at the first problem, so that a person can fix a file in one go.
/// The errors are in file order (problems without a line come last).
package struct ConfigErrors: Error, Sendable, Equatable, CustomStringConvertible {
    package var errors: [ConfigError]

    package init(errors: [ConfigError]) {
        self.errors = errors
    }

    /// One error per line.
    package var description: String {
        errors.map(\.description).joined(separator: "\n")
    }
}
