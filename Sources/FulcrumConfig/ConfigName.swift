/// The rule for the names of frontends, backends, servers and ACLs: one rule for the
/// configuration file and for the admin API, which takes names in request bodies and in paths
/// (`/api/backends/{backend}/servers/{server}`).
///
/// A name is 1…64 ASCII letters, digits, `.`, `_` and `-`, and starts with a letter or a
/// digit — Docker's rule for container names, with a bound. Names appear in logs, metrics
/// labels, error messages and URL paths, so they are kept to characters that need no quoting
/// anywhere; a first letter or digit rules out `.` and `..`, which URL normalization removes
/// from a path (RFC 3986 §5.2.4), so a server so named could never be addressed again, and a
/// leading `-`, which reads as an option on a command line. The bound keeps logs and label
/// sets small; HAProxy has none, DNS labels stop at 63.
package enum ConfigName {
    package static let maximumLength = 64

    /// The rule in words, for messages and documentation.
    package static let rule = "1–\(maximumLength) letters, digits, \".\", \"_\" and \"-\", starting with a letter or a digit"

    /// Whether `name` follows the rule.
    package static func isValid(_ name: String) -> Bool {
        problem(with: name) == nil
    }

    /// Why `name` is not a valid name of a `kind` ("server", "ACL"...), as a sentence
    /// that quotes it (shortened when long); nil when it is valid.
    package static func error(in name: String, kind: String) -> String? {
        problem(with: name).map { "\(quoted(shortened(name))) is not a valid \(kind) name: \($0)" }
    }

    /// What is wrong with `name`, or nil.
    private static func problem(with name: String) -> String? {
        guard let first = name.first else { return "it is empty (\(rule))" }
        guard name.count <= maximumLength else {
            return "it has \(name.count) characters, and a name has at most \(maximumLength)"
        }
        guard isLetterOrDigit(first) else { return "it must start with a letter or a digit" }
        if let character = name.first(where: { !isLetterOrDigit($0) && !"._-".contains($0) }) {
            return "\(quoted(printable(String(character)))) is not allowed (use letters, digits, \".\", \"_\" and \"-\")"
        }
        return nil
    }

    private static func isLetterOrDigit(_ character: Character) -> Bool {
        character.isASCII && (character.isLetter || character.isNumber)
    }

    /// At most 32 characters of `name`: a message quoting a 5,000-character name should still
    /// fit on a line.
    private static func shortened(_ name: String) -> String {
        name.count > 32 ? "\(printable(name.prefix(32)))…" : printable(name)
    }

    /// `text` with control and non-ASCII characters escaped (`\u{7}`), so a message shows
    /// what was sent.
    private static func printable(_ text: some StringProtocol) -> String {
        text.unicodeScalars.map { (0x20..<0x7F).contains($0.value) ? String($0) : $0.escaped(asASCII: true) }.joined()
    }
}
