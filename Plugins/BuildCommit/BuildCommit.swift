import Foundation
import PackagePlugin

/// Writes `BuildCommit.swift` (`enum BuildCommit { static let hash = "…" }`) for the target it
/// is applied to, so `fulcrum --version` names the commit it was built from.
///
/// The hash is `FULCRUM_COMMIT` when set (a container build has no `.git`), else `git
/// rev-parse --short=12 HEAD` with `-dirty` for uncommitted changes, else `unknown`. A prebuild
/// command, because a build command's inputs cannot name "whatever HEAD is"; the file is
/// rewritten only when the text changes, so an unchanged commit compiles nothing again.
@main
struct BuildCommitPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appending(path: "generated")
        let script = #"""
            set -u
            mkdir -p "$1"
            hash="${FULCRUM_COMMIT:-}"
            if [ -z "$hash" ]; then
                hash=$(git -C "$2" rev-parse --short=12 HEAD 2>/dev/null) || hash=unknown
                if [ "$hash" != unknown ] && ! git -C "$2" diff --quiet HEAD -- 2>/dev/null; then
                    hash="$hash-dirty"
                fi
            fi
            text="enum BuildCommit { static let hash = \"$hash\" }"
            [ "$(cat "$1/BuildCommit.swift" 2>/dev/null)" = "$text" ] || printf '%s\n' "$text" > "$1/BuildCommit.swift"
            """#
        var environment: [String: String] = [:]
        if let commit = ProcessInfo.processInfo.environment["FULCRUM_COMMIT"] { environment["FULCRUM_COMMIT"] = commit }
        return [
            .prebuildCommand(
                displayName: "Naming the commit in BuildCommit.swift",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: ["-c", script, "sh", output.path, context.package.directoryURL.path],
                environment: environment,
                outputFilesDirectory: output
            )
        ]
    }
}
