internal import Yams

/// Writing a `ConfigDocument` as YAML.
///
/// Written by hand rather than through Yams' emitter so that the layout is the one the
/// documentation uses (block style, with small collections in flow style on one line) and
/// so that quoting is decided here, for every string, by one rule that is easy to check: a
/// string is plain only when it cannot mean anything else to a YAML reader.
extension ConfigDocument {
    /// Lines are kept within this width where a collection could go on one line.
    static let yamlLineWidth = 100

    /// The document, whose root is a mapping, as a YAML file ending with a line break.
    func yamlText() -> String {
        var lines: [String] = []
        switch self {
        case .map(let entries):
            // The top-level sections are always blocks, each starting at the left margin,
            // even when small enough for one line: that is how a configuration file is read.
            for entry in entries {
                appendYAMLEntry(key: entry.key, value: entry.value, indent: 0, flowAllowed: false, to: &lines)
            }
        default:
            lines.append(yamlFlow)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `key: value`, on one line when the value is a scalar, an empty collection or (when
    /// `flowAllowed`) a small collection that fits; otherwise `key:` and a block below.
    private func appendYAMLEntry(
        key: String,
        value: ConfigDocument,
        indent: Int,
        flowAllowed: Bool,
        to lines: inout [String]
    ) {
        let prefix = String(repeating: " ", count: indent) + Self.yamlScalar(key) + ":"
        if let inline = value.yamlInline(width: Self.yamlLineWidth - prefix.count - 1, flowAllowed: flowAllowed) {
            lines.append(prefix + " " + inline)
            return
        }
        lines.append(prefix)
        value.appendYAMLBlock(indent: indent + 2, to: &lines)
    }

    /// A collection in block style, each line indented by `indent`. A list is indented under
    /// its key (`servers:` then `  - ...`), as the documentation writes it.
    private func appendYAMLBlock(indent: Int, to lines: inout [String]) {
        switch self {
        case .map(let entries):
            for entry in entries {
                appendYAMLEntry(key: entry.key, value: entry.value, indent: indent, flowAllowed: true, to: &lines)
            }
        case .list(let items):
            let dash = String(repeating: " ", count: indent) + "-"
            for item in items {
                if let inline = item.yamlInline(width: Self.yamlLineWidth - dash.count - 1, flowAllowed: true) {
                    lines.append(dash + " " + inline)
                    continue
                }
                // A mapping item starts on the dash's line: its lines are written two
                // columns further in, and the first one's indentation becomes "- ".
                var itemLines: [String] = []
                item.appendYAMLBlock(indent: indent + 2, to: &itemLines)
                if case .map = item, let first = itemLines.first {
                    itemLines[0] = dash + " " + String(first.dropFirst(indent + 2))
                } else {
                    itemLines.insert(dash, at: 0)
                }
                lines += itemLines
            }
        case .string, .int, .double, .bool:
            lines.append(String(repeating: " ", count: indent) + yamlFlow)
        }
    }

    /// The value on one line, or nil when it should be a block: a list of anything but
    /// plain values (`servers`: one server a line), a mapping that holds more than plain
    /// values and lists of them (`acls`, a backend), or what would not fit in `width`.
    private func yamlInline(width: Int, flowAllowed: Bool) -> String? {
        switch self {
        case .string, .int, .double, .bool:
            return yamlFlow
        case .list(let items) where items.isEmpty:
            return "[]"
        case .map(let entries) where entries.isEmpty:
            return "{}"
        case .list(let items):
            guard flowAllowed, items.allSatisfy(\.isScalar) else { return nil }
            let text = yamlFlow
            return text.count <= width ? text : nil
        case .map:
            guard flowAllowed, depth <= 2 else { return nil }
            let text = yamlFlow
            return text.count <= width ? text : nil
        }
    }

    /// The value in flow style: `[a, b]`, `{ key: value, ... }`, or a scalar.
    var yamlFlow: String {
        switch self {
        case .string(let text):
            Self.yamlScalar(text)
        case .int(let value):
            String(value)
        case .double(let value):
            // The shortest text that reads back as the same Double ("0.2", "3.0", "1e-05").
            value.description
        case .bool(let value):
            value ? "true" : "false"
        case .list(let items):
            "[" + items.map(\.yamlFlow).joined(separator: ", ") + "]"
        case .map(let entries) where entries.isEmpty:
            "{}"
        case .map(let entries):
            "{ " + entries.map { Self.yamlScalar($0.key) + ": " + $0.value.yamlFlow }.joined(separator: ", ") + " }"
        }
    }

    // MARK: Strings

    /// A string (a value or a key) as a YAML scalar: plain when that is safe, else quoted.
    static func yamlScalar(_ text: String) -> String {
        if isSafePlainYAML(text) {
            return text
        }
        // Single quotes keep backslashes as they are, which is how a regular expression is
        // best read ('\.(css|js)$'); they cannot escape anything else, though.
        if text.contains("\\"), text.unicodeScalars.allSatisfy({ !needsEscape($0) }) {
            return "'" + text.replacing("'", with: "''") + "'"
        }
        return doubleQuoted(text)
    }

    /// Whether `text` can be written without quotes in any context (block or flow, value or
    /// key) and reads back as the same string.
    ///
    /// Deliberately narrow: letters, digits and `._/-`, not starting with an indicator, so
    /// that nothing in it can be YAML syntax (`:`, `#`, `,`, brackets, `*`, `&`, `!`, quotes,
    /// spaces...). Within that, what YAML resolves to another type (`1`, `1.10`, `true`,
    /// `off`, `null`, `2024-01-01`, `0x1f`) is quoted too: this parser would still read the
    /// text, but other readers of the file would not.
    static func isSafePlainYAML(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first,
            isPlainCharacter(first), first != ".", first != "-"
        else { return false }
        guard text.unicodeScalars.allSatisfy(isPlainCharacter) else { return false }
        // YAML 1.1 also has y and n as booleans; Yams does not, but other readers may.
        if ["y", "n"].contains(text.lowercased()) { return false }
        return Resolver.default.resolveTag(of: Node(text)) == .str
    }

    private static func isPlainCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", ".", "_", "-", "/": true
        default: false
        }
    }

    /// `"text"` with the escapes that JSON and YAML share, so the same text is right in both.
    static func doubleQuoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            case _ where needsEscape(scalar):
                let hex = String(scalar.value, radix: 16, uppercase: true)
                result += "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    /// Characters that cannot appear as themselves inside a quoted scalar: what libyaml does
    /// not accept in a document (control characters, U+FEFF, U+FFFE, U+FFFF), and the line
    /// breaks it would fold into spaces (including YAML 1.1's NEL, LS and PS). All are below
    /// U+10000, so a `\uXXXX` escape covers them.
    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x20...0x7E: false
        case 0xA0...0xD7FF: scalar.value == 0x2028 || scalar.value == 0x2029
        case 0xE000...0xFFFD: scalar.value == 0xFEFF
        case 0x10000...0x10FFFF: false
        default: true
        }
    }
}
