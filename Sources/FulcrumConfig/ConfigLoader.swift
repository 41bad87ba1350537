internal import Foundation
internal import Yams

/// Turns YAML into a validated `Config`.
///
/// Loading never stops at the first problem: every unknown key, wrong type, missing key,
/// bad value and dangling reference is collected, each with its path and line, and thrown
/// together as `ConfigErrors`, so that a person can fix a file in one pass.
///
///     do {
///         let config = try ConfigLoader.load(contentsOfFile: "fulcrum.yaml")
///         print("ok: \(config.summary)")
///     } catch {
///         print(error)  // one problem per line
///     }
///
/// The document is walked by hand from Yams' node tree rather than decoded with
/// `Codable`: decoding stops at the first error and loses line numbers.
package enum ConfigLoader {
    /// Loads a configuration from YAML text.
    ///
    /// Relative `error_files` paths are taken relative to the working directory and kept
    /// as written.
    ///
    /// - Parameters:
    ///   - yaml: The document.
    ///   - sourceName: Names the document in errors that concern it as a whole (a YAML
    ///     syntax error, an empty document); `"config"` when `nil`.
    /// - Throws: `ConfigErrors` with every problem found.
    package static func load(yaml: String, sourceName: String? = nil) throws(ConfigErrors) -> Config {
        try load(yaml: yaml, documentName: sourceName ?? "config", baseDirectory: nil)
    }

    /// Loads a configuration file.
    ///
    /// Relative `error_files` paths are resolved against the file's directory, and the
    /// returned `Config` holds them as absolute paths, so it does not depend on the
    /// working directory of whoever uses it.
    ///
    /// - Throws: `ConfigErrors` with every problem found; a file that cannot be read is
    ///   one error whose path is `path`.
    package static func load(contentsOfFile path: String) throws(ConfigErrors) -> Config {
        let yaml = try readFile(atPath: path)
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try load(yaml: yaml, documentName: path, baseDirectory: directory)
    }

    /// Loads one server entry as written under `backends[].servers` (`name`, `address`,
    /// `weight`, `tls`), checked exactly as in a file — for the admin API, which adds servers
    /// to a running configuration. Error paths are relative to the entry (`address`, `tls.ca`).
    ///
    /// - Parameter baseDirectory: what relative `tls` file paths resolve against (nil: the
    ///   working directory).
    package static func loadServer(yaml: String, sourceName: String, baseDirectory: String? = nil) throws(ConfigErrors) -> ServerConfig {
        let root = try compose(yaml, documentName: sourceName, ifEmpty: "empty; expected a server (name, address)")
        let diagnostics = ConfigDiagnostics(documentName: sourceName)
        let parser = ConfigParser(diagnostics: diagnostics, baseDirectory: baseDirectory)
        var names = NameRegistry(kind: "server")
        let server = parser.parseServer(YAMLNodeReader(root, path: "", diagnostics: diagnostics), names: &names)
        guard diagnostics.isEmpty, let server else {
            let errors = diagnostics.errorsInFileOrder
            throw ConfigErrors(errors: errors.isEmpty ? [ConfigError(path: sourceName, message: "invalid server")] : errors)
        }
        return server
    }

    /// Loads a configuration from YAML text whose relative paths resolve against
    /// `baseDirectory` (the admin API's `PUT /api/config`, against the running file's directory).
    package static func load(yaml: String, sourceName: String, baseDirectory: String?) throws(ConfigErrors) -> Config {
        try load(yaml: yaml, documentName: sourceName, baseDirectory: baseDirectory)
    }

    static func load(yaml: String, documentName: String, baseDirectory: String?) throws(ConfigErrors) -> Config {
        let root = try compose(yaml, documentName: documentName, ifEmpty: "the document is empty; it needs frontends and backends")
        let diagnostics = ConfigDiagnostics(documentName: documentName)
        let parser = ConfigParser(diagnostics: diagnostics, baseDirectory: baseDirectory)
        let config = parser.parseDocument(YAMLNodeReader(root, path: "", diagnostics: diagnostics))
        guard diagnostics.isEmpty, let config else {
            // A nil config always comes with a reported problem; the fallback only keeps a
            // parser bug from passing off an incomplete configuration as valid.
            let errors = diagnostics.errorsInFileOrder
            let fallback = ConfigError(path: documentName, message: "invalid configuration")
            throw ConfigErrors(errors: errors.isEmpty ? [fallback] : errors)
        }
        return config
    }

    /// Yams' node tree of `yaml`; a syntax error or an empty document is one `ConfigError`.
    private static func compose(_ yaml: String, documentName: String, ifEmpty: String) throws(ConfigErrors) -> Node {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigErrors(errors: [syntaxError(error, documentName: documentName, yaml: yaml)])
        }
        guard let root else { throw ConfigErrors(errors: [ConfigError(path: documentName, message: ifEmpty)]) }
        return root
    }

    private static func readFile(atPath path: String) throws(ConfigErrors) -> String {
        func failure(_ message: String) -> ConfigErrors {
            ConfigErrors(errors: [ConfigError(path: path, message: message)])
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw failure("no such file")
        }
        guard !isDirectory.boolValue else {
            throw failure("is a directory, not a file")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw failure("cannot be read (check its permissions)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw failure("is not UTF-8 text")
        }
        return text
    }

    /// One `ConfigError` for a document Yams could not compose, at the line it names.
    private static func syntaxError(_ error: any Error, documentName: String, yaml: String) -> ConfigError {
        guard let yamlError = error as? YamlError else {
            return ConfigError(path: documentName, message: "invalid YAML: \(error)")
        }
        switch yamlError {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            // libyaml's context says what it was in the middle of, often on an earlier line
            // ("while parsing a flow sequence in line 3"): worth keeping for the reader.
            let during = context.map { " (\($0.text) at line \($0.mark.line), column \($0.mark.column))" } ?? ""
            // Tabs are the most common cause of "cannot start any token"; libyaml does not say so.
            let hint = character(at: mark, in: yaml) == "\t" ? "; YAML does not allow tabs for indentation" : ""
            return ConfigError(
                path: documentName,
                line: mark.line,
                message: "invalid YAML at column \(mark.column): \(problem)\(during)\(hint)"
            )
        case .duplicatedKeysInMapping(let duplicates, let context):
            // Yams points at the first occurrence of the key.
            let keys = duplicates.map(quoted).joined(separator: ", ")
            let noun = duplicates.count == 1 ? "key" : "keys"
            return ConfigError(
                path: documentName,
                line: context.mark.line,
                message: "duplicate \(noun) \(keys): a key may appear only once in a mapping"
            )
        case .reader(let problem, let offset, _, _):
            // `offset` counts Characters, so a "\r\n" line break is one Character here.
            let line = offset.map { yaml.prefix($0).count(where: \.isNewline) + 1 }
            return ConfigError(path: documentName, line: line, message: "invalid text: \(problem)")
        default:
            return ConfigError(path: documentName, message: "invalid YAML: \(yamlError)")
        }
    }

    /// The character at a libyaml position (1-based line, column in Unicode scalars).
    private static func character(at mark: Mark, in yaml: String) -> Unicode.Scalar? {
        // Split by scalars: in a String, "\r\n" is one Character that is not "\n".
        let lines = yaml.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.indices.contains(mark.line - 1) else { return nil }
        let scalars = lines[mark.line - 1]
        guard let index = scalars.index(scalars.startIndex, offsetBy: mark.column - 1, limitedBy: scalars.endIndex),
            index < scalars.endIndex
        else { return nil }
        return scalars[index]
    }
}
