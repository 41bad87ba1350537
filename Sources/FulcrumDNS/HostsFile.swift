#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `/etc/hosts`, read before DNS is asked, as glibc's `files` and c-ares do: `localhost` and
/// the names a container runtime writes there resolve as the rest of the system sees them.
package struct HostsFile: Sendable, Equatable {
    /// Addresses by lowercased name, in the file's order.
    private var addresses: [String: [String]] = [:]

    package init(parsing text: String) {
        for line in text.split(whereSeparator: \.isNewline) {
            let content = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = content.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard fields.count >= 2 else { continue }
            let address = fields[0].split(separator: "%").first.map(String.init) ?? fields[0]
            for name in fields.dropFirst() {
                addresses[name.lowercased(), default: []].append(address)
            }
        }
    }

    /// The system's (empty when it cannot be read).
    package static func system(path: String = "/etc/hosts") -> HostsFile {
        HostsFile(parsing: readSmallFile(path) ?? "")
    }

    /// The addresses the file gives `name`; empty when it does not name it.
    package func addresses(of name: String) -> [String] {
        let key = name.hasSuffix(".") ? String(name.dropLast()) : name
        return addresses[key.lowercased()] ?? []
    }
}

/// The text of a small system file (at most 1 MiB), or nil.
func readSmallFile(_ path: String) -> String? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while bytes.count < 1 << 20 {
        let count = fread(&chunk, 1, chunk.count, file)
        if count <= 0 { break }
        bytes.append(contentsOf: chunk[0..<count])
    }
    return String(decoding: bytes, as: UTF8.self)
}
