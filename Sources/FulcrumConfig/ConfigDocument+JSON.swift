/// Writing a `ConfigDocument` as JSON.
///
/// Written by hand because the order of the keys is part of the output, which
/// `JSONSerialization` and `JSONEncoder` do not keep (they offer sorted keys at best).
extension ConfigDocument {
    /// The document as pretty-printed JSON (two-space indentation, `"key": value`, empty
    /// collections as `{}` and `[]`), ending with a line break.
    ///
    /// The text is also valid YAML for `ConfigLoader`: strings use only the escapes JSON and
    /// YAML share, and characters that YAML does not accept inside a document are escaped.
    func jsonText() -> String {
        var output = ""
        writeJSON(indent: 0, to: &output)
        return output + "\n"
    }

    private func writeJSON(indent: Int, to output: inout String) {
        let inner = String(repeating: " ", count: indent + 2)
        switch self {
        case .string(let text):
            output += Self.doubleQuoted(text)
        case .int(let value):
            output += String(value)
        case .double(let value):
            // JSON has no infinity or NaN. The parser never produces them (it rejects them),
            // so this only keeps the output valid JSON for a `Config` built by hand.
            output += value.isFinite ? value.description : "null"
        case .bool(let value):
            output += value ? "true" : "false"
        case .list(let items) where items.isEmpty:
            output += "[]"
        case .list(let items):
            output += "[\n"
            for (index, item) in items.enumerated() {
                output += inner
                item.writeJSON(indent: indent + 2, to: &output)
                output += index < items.count - 1 ? ",\n" : "\n"
            }
            output += String(repeating: " ", count: indent) + "]"
        case .map(let entries) where entries.isEmpty:
            output += "{}"
        case .map(let entries):
            output += "{\n"
            for (index, entry) in entries.enumerated() {
                output += inner + Self.doubleQuoted(entry.key) + ": "
                entry.value.writeJSON(indent: indent + 2, to: &output)
                output += index < entries.count - 1 ? ",\n" : "\n"
            }
            output += String(repeating: " ", count: indent) + "}"
        }
    }
}
