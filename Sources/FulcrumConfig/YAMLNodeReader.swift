internal import Yams

/// A YAML node together with its path in the document, with typed accessors that report
/// a problem (path + line) instead of throwing.
///
/// Every accessor returns `nil` after reporting when the node does not have the expected
/// shape, so that the caller can carry on and find further problems. A caller must never
/// report again for a `nil` it received: the accessor already did.
struct YAMLNodeReader {
    let node: Node
    /// `frontends[0].acls.api`; empty for the document root.
    let path: String
    let diagnostics: ConfigDiagnostics

    init(_ node: Node, path: String, diagnostics: ConfigDiagnostics) {
        self.node = node
        self.path = path
        self.diagnostics = diagnostics
    }

    /// The 1-based line the node starts on.
    var line: Int? { node.mark?.line }

    /// Reports a problem with this node.
    func report(_ message: String) {
        diagnostics.report(message, path: path, line: line)
    }

    /// An empty value (`key:`), `~` or `null`. Quoted strings are never null.
    var isNull: Bool {
        guard case .scalar = node else { return false }
        return node.tag.rawValue == Tag.Name.null.rawValue
    }

    /// How the node looks, for "expected X, found Y" messages.
    var shapeDescription: String {
        switch node {
        case .scalar(let scalar): isNull ? "nothing" : quoted(scalar.string)
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    func reportExpected(_ expectation: String) {
        report("expected \(expectation), found \(shapeDescription)")
    }

    func child(_ node: Node, key: String) -> YAMLNodeReader {
        YAMLNodeReader(node, path: path.isEmpty ? key : "\(path).\(key)", diagnostics: diagnostics)
    }

    func child(_ node: Node, index: Int) -> YAMLNodeReader {
        YAMLNodeReader(node, path: "\(path)[\(index)]", diagnostics: diagnostics)
    }

    // MARK: Collections

    /// This node as a mapping whose keys are all in `allowedKeys` (any key when `nil`).
    ///
    /// Unknown keys are reported and left out, so that one typo does not hide the rest of
    /// the mapping. An empty value reads as an empty mapping: `timeouts:` with nothing
    /// after it means "no timeouts set" rather than a type error. Merge keys
    /// (`<<: *defaults`) are expanded.
    func mapping(allowedKeys: [String]?) -> YAMLMappingReader? {
        if isNull {
            return YAMLMappingReader(owner: self, entries: [], keyCountInFile: 0)
        }
        guard case .mapping(let mapping) = node else {
            reportExpected("a mapping")
            return nil
        }
        let pairs = expandingMergeKeys(of: mapping)
        var entries: [YAMLMappingReader.Entry] = []
        for (keyNode, valueNode) in pairs {
            guard case .scalar(let keyScalar) = keyNode else {
                diagnostics.report("keys must be plain strings", path: path, line: keyNode.mark?.line)
                continue
            }
            let key = keyScalar.string
            let value = child(valueNode, key: key)
            if let allowedKeys, !allowedKeys.contains(key) {
                let allowed = allowedKeys.joined(separator: ", ")
                diagnostics.report(
                    "unknown key \(quoted(key)); allowed keys: \(allowed)",
                    path: value.path,
                    line: keyNode.mark?.line
                )
                continue
            }
            entries.append(.init(key: key, keyLine: keyNode.mark?.line, value: value))
        }
        return YAMLMappingReader(owner: self, entries: entries, keyCountInFile: pairs.count)
    }

    /// The pairs of `mapping` with YAML merge keys applied: `<<: *base` (or `<<: [*a, *b]`)
    /// adds the pairs of the referenced mappings whose keys the mapping does not set
    /// itself; with several sources, earlier ones win. Yams composes `<<` as an ordinary
    /// key, so without this an anchor-based config would fail with "unknown key".
    private func expandingMergeKeys(of mapping: Node.Mapping) -> [(key: Node, value: Node)] {
        var own: [(key: Node, value: Node)] = []
        var merged: [(key: Node, value: Node)] = []
        for (keyNode, valueNode) in mapping {
            guard keyNode.tag.rawValue == Tag.Name.merge.rawValue else {
                own.append((keyNode, valueNode))
                continue
            }
            let sources: [Node] = if case .sequence(let sequence) = valueNode { Array(sequence) } else { [valueNode] }
            for source in sources {
                guard case .mapping(let sourceMapping) = source else {
                    diagnostics.report(
                        "a merge key (<<) takes a mapping or a list of mappings",
                        path: path,
                        line: source.mark?.line
                    )
                    continue
                }
                merged += expandingMergeKeys(of: sourceMapping)
            }
        }
        var pairs = own
        for pair in merged where !pairs.contains(where: { $0.key.string == pair.key.string }) {
            pairs.append(pair)
        }
        return pairs
    }

    /// This node as a list. An empty value reads as an empty list; callers that need
    /// elements say so with their own message.
    func sequence() -> [YAMLNodeReader]? {
        if isNull {
            return []
        }
        guard case .sequence(let sequence) = node else {
            reportExpected("a list")
            return nil
        }
        return sequence.enumerated().map { child($1, index: $0) }
    }

    /// A list, or a single scalar standing for a one-element list (`method: GET` is
    /// `method: [GET]`). A single scalar keeps this node's path, without an index.
    func scalarOrSequence(expected: String) -> [YAMLNodeReader]? {
        switch node {
        case .scalar where isNull:
            return []
        case .scalar:
            return [self]
        case .sequence:
            return sequence()
        case .mapping, .alias:
            reportExpected(expected)
            return nil
        }
    }

    // MARK: Scalars

    /// The text of a scalar. Numbers and booleans are accepted as their text
    /// (`equals: 1` means the string "1").
    func string(expected: String = "a string") -> String? {
        guard case .scalar(let scalar) = node, !isNull else {
            reportExpected(expected)
            return nil
        }
        return scalar.string
    }

    /// A non-empty string.
    func nonEmptyString() -> String? {
        guard let text = string() else { return nil }
        guard !text.isEmpty else {
            report("must not be empty")
            return nil
        }
        return text
    }

    /// A decimal integer, quoted or not.
    func integer() -> Int? {
        guard case .scalar(let scalar) = node, !isNull, let value = Int(scalar.string) else {
            reportExpected("an integer")
            return nil
        }
        return value
    }

    /// An integer within `range`.
    func integer(in range: ClosedRange<Int>) -> Int? {
        guard let value = integer() else { return nil }
        guard range.contains(value) else {
            report("must be between \(range.lowerBound) and \(range.upperBound), found \(value)")
            return nil
        }
        return value
    }

    /// A decimal number within `range`.
    func number(in range: ClosedRange<Double>) -> Double? {
        guard case .scalar(let scalar) = node, !isNull, let value = Double(scalar.string), value.isFinite else {
            reportExpected("a number")
            return nil
        }
        guard range.contains(value) else {
            report("must be between \(range.lowerBound) and \(range.upperBound), found \(scalar.string)")
            return nil
        }
        return value
    }

    /// An integer no smaller than `minimum`.
    func integer(atLeast minimum: Int) -> Int? {
        guard let value = integer() else { return nil }
        guard value >= minimum else {
            report("must be \(minimum) or more, found \(value)")
            return nil
        }
        return value
    }

    /// An HTTP error status, 400…599 (`deny:`).
    func errorStatus() -> Int? {
        guard let value = integer() else { return nil }
        guard isErrorStatus(value) else {
            report("\(value) is not an HTTP error status (expected 400…599)")
            return nil
        }
        return value
    }

    /// `true` or `false` (any letter case).
    func bool() -> Bool? {
        if case .scalar(let scalar) = node {
            switch scalar.string.lowercased() {
            case "true": return true
            case "false": return false
            default: break
            }
        }
        reportExpected("true or false")
        return nil
    }

    /// A duration such as `250ms`, `2s`, `1m30s`, that must be positive unless `allowZero`.
    func duration(allowZero: Bool = false) -> Duration? {
        guard let text = string() else { return nil }
        guard let duration = parseDuration(text) else {
            report("\(quoted(text)) is not a valid duration (expected a number and a unit: 250ms, 2s, 1m, 1h)")
            return nil
        }
        if duration == .zero && !allowZero {
            report("must be greater than zero")
            return nil
        }
        return duration
    }

    /// A size in bytes: `65536`, `64k`, `64KB`, `1m`.
    func byteSize() -> Int? {
        guard let text = string() else { return nil }
        guard let size = parseByteSize(text) else {
            report(
                "\(quoted(text)) is not a valid size (expected bytes or a number with a unit: 65536, 64k, 64KB, 1MB)"
            )
            return nil
        }
        return size
    }

    /// One of the raw values of `Choice`, any letter case, listing the valid ones otherwise.
    func choice<Choice: RawRepresentable & CaseIterable>(
        _: Choice.Type,
        named what: String
    ) -> Choice? where Choice.RawValue == String {
        guard let text = string() else { return nil }
        if let value = Choice(rawValue: text.lowercased()) {
            return value
        }
        let valid = Choice.allCases.map(\.rawValue).joined(separator: ", ")
        report("unknown \(what) \(quoted(text)); expected one of: \(valid)")
        return nil
    }
}

/// The entries of a mapping node, in file order, with unknown keys already reported.
struct YAMLMappingReader {
    struct Entry {
        var key: String
        var keyLine: Int?
        var value: YAMLNodeReader
    }

    let owner: YAMLNodeReader
    /// The entries with an allowed key, in file order.
    let entries: [Entry]
    /// How many keys the mapping has in the file, unknown ones included.
    let keyCountInFile: Int

    /// The value of `key`, if present.
    subscript(key: String) -> YAMLNodeReader? {
        entries.first { $0.key == key }?.value
    }

    /// The value of `key`; reports it missing otherwise.
    func required(_ key: String) -> YAMLNodeReader? {
        if let value = self[key] {
            return value
        }
        // The line of the mapping that lacks the key points at the right list element;
        // for the document root it would only say "line 1", which helps nobody.
        let path = owner.path.isEmpty ? key : "\(owner.path).\(key)"
        owner.diagnostics.report(
            "required key \(quoted(key)) is missing",
            path: path,
            line: owner.path.isEmpty ? nil : owner.line
        )
        return nil
    }
}

/// `"text"`, the way messages show values from the file.
func quoted(_ text: String) -> String {
    "\"\(text)\""
}

/// Whether `status` is a 4xx or 5xx HTTP status, the only ones an error page can have.
func isErrorStatus(_ status: Int) -> Bool {
    (400...599).contains(status)
}
