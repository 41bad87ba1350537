/// A configuration document as an ordered tree of plain values: what `ConfigRenderer` builds
/// from a `Config` before writing it out as YAML or JSON.
///
/// The tree exists so that both formats are written from one description: what the
/// document contains and in which order is decided once (`ConfigRenderer`), and each writer
/// only decides how it looks. Mappings are lists of pairs, not dictionaries, because key
/// order is part of the output: keys appear in the order the schema lists them, and ACLs,
/// criteria and rules in the order of the `Config`, which is the order that matters to
/// routing.
enum ConfigDocument {
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)
    case list([ConfigDocument])
    case map([(key: String, value: ConfigDocument)])

    /// A mapping of the entries whose value is not nil, in the order given.
    ///
    /// A nil value is left out: the file format has no way to say "none" but absence (an
    /// empty value, `key:`, reads as an empty mapping or list, which means "defaults" for
    /// sections like `health_check`, not "none").
    static func mapping(_ entries: KeyValuePairs<String, ConfigDocument?>) -> ConfigDocument {
        .map(entries.compactMap { key, value in value.map { (key: key, value: $0) } })
    }

    /// The same, from entries built as an array (to join lists of entries).
    static func mapping(entries: [(String, ConfigDocument?)]) -> ConfigDocument {
        .map(entries.compactMap { key, value in value.map { (key: key, value: $0) } })
    }

    /// A list of strings.
    static func strings(_ values: [String]) -> ConfigDocument {
        .list(values.map(ConfigDocument.string))
    }

    /// Whether this is a string, number or boolean.
    var isScalar: Bool {
        switch self {
        case .string, .int, .double, .bool: true
        case .list, .map: false
        }
    }

    /// How many collections deep the tree is: 0 for a scalar, 1 for a list of scalars, 2 for
    /// a mapping holding a list of scalars. An empty collection counts as 1.
    var depth: Int {
        switch self {
        case .string, .int, .double, .bool: 0
        case .list(let items): 1 + (items.map(\.depth).max() ?? 0)
        case .map(let entries): 1 + (entries.map(\.value.depth).max() ?? 0)
        }
    }
}
