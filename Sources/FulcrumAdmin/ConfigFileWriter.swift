import Foundation

/// Writes a configuration file the safe way: the new text goes to a temporary file beside it,
/// which is then renamed over the old one (readers see the old file or the new one, never
/// half of one); the previous version is kept as `FILE.bak`.
enum ConfigFileWriter {
    struct Failure: Error, CustomStringConvertible {
        let path: String
        let reason: String
        var description: String { "cannot write \(path): \(reason)" }
    }

    static func write(_ text: String, to path: String) throws {
        let file = URL(fileURLWithPath: path)
        let directory = file.deletingLastPathComponent()
        let temporary = directory.appendingPathComponent(".\(file.lastPathComponent).\(UUID().uuidString).tmp")
        let backup = URL(fileURLWithPath: path + ".bak")
        let manager = FileManager.default
        do {
            try Data(text.utf8).write(to: temporary)
            if manager.fileExists(atPath: path) {
                // Keep the file's permissions, and the previous version.
                if let permissions = try manager.attributesOfItem(atPath: path)[.posixPermissions] {
                    try manager.setAttributes([.posixPermissions: permissions], ofItemAtPath: temporary.path)
                }
                if manager.fileExists(atPath: backup.path) { try manager.removeItem(at: backup) }
                try manager.copyItem(at: file, to: backup)
            }
            // rename(2) replaces the target atomically.
            guard rename(temporary.path, path) == 0 else {
                throw Failure(path: path, reason: String(cString: strerror(errno)))
            }
        } catch let failure as Failure {
            try? manager.removeItem(at: temporary)
            throw failure
        } catch {
            try? manager.removeItem(at: temporary)
            throw Failure(path: path, reason: "\(error.localizedDescription)")
        }
    }
}
