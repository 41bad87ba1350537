/// Collects the problems found while one document is read.
///
/// It is a class so that every `YAMLNodeReader` handed out during a load appends to the
/// same list without an `inout` parameter on every helper. It lives only for the duration
/// of one synchronous `ConfigLoader.load` call and is never shared across threads.
final class ConfigDiagnostics {
    /// Stands in for the empty path of the document root (usually the file's path).
    let documentName: String
    private var errors: [ConfigError] = []

    init(documentName: String) {
        self.documentName = documentName
    }

    var isEmpty: Bool { errors.isEmpty }

    func report(_ message: String, path: String, line: Int?) {
        errors.append(ConfigError(path: path.isEmpty ? documentName : path, line: line, message: message))
    }

    /// The errors in file order; errors without a line keep their relative order and come last.
    ///
    /// The parser visits sections in dependency order (backends before the frontends that
    /// refer to them), not file order, so the list is sorted before a person sees it.
    var errorsInFileOrder: [ConfigError] {
        errors.enumerated()
            .sorted { lhs, rhs in
                let left = lhs.element.line ?? .max
                let right = rhs.element.line ?? .max
                return left != right ? left < right : lhs.offset < rhs.offset
            }
            .map(\.element)
    }
}
