import FulcrumConfig
import Testing

/// The one rule for names of frontends, backends, servers and ACLs (`ConfigName`), in a file.
/// The admin API takes the same rule through `ConfigLoader.loadServer` and whole
/// configurations (tested end to end in FulcrumProxyTests' `AdminInputTests`).
@Suite("Names")
struct ConfigNameTests {
    static let longest = String(repeating: "a", count: ConfigName.maximumLength)

    @Test("names of letters, digits, '.', '_' and '-', starting with a letter or digit, up to 64, load")
    func validNames() throws {
        for name in ["web1", "Web-1", "a", "9", "api.v2_blue-3", Self.longest] {
            let yaml = minimalYAML.replacingOccurrences(of: "name: web1", with: "name: \"\(name)\"")
            #expect(try ConfigLoader.load(yaml: yaml).backends[0].servers[0].name == name)
            #expect(ConfigName.isValid(name))
        }
    }

    @Test(
        "'.', '..', a leading '-', '.' or '_', 65 or 5,000 characters, spaces, slashes, non-ASCII are not names",
        arguments: [
            (".", "it must start with a letter or a digit"),
            ("..", "it must start with a letter or a digit"),
            ("-web", "it must start with a letter or a digit"),
            ("_web", "it must start with a letter or a digit"),
            (".hidden", "it must start with a letter or a digit"),
            ("web 1", #"" " is not allowed (use letters, digits, ".", "_" and "-")"#),
            ("web/1", #""/" is not allowed (use letters, digits, ".", "_" and "-")"#),
            ("wéb", #""\u{00E9}" is not allowed (use letters, digits, ".", "_" and "-")"#),
            ("a\u{7}b", #""\u{07}" is not allowed (use letters, digits, ".", "_" and "-")"#),
            (longest + "a", "it has 65 characters, and a name has at most 64"),
            (String(repeating: "x", count: 5000), "it has 5000 characters, and a name has at most 64"),
        ]
    )
    func invalidNames(name: String, problem: String) throws {
        #expect(!ConfigName.isValid(name))
        let error = try #require(ConfigName.error(in: name, kind: "server"))
        #expect(error.hasSuffix(": \(problem)"))
        // A long name is quoted shortened, so a message stays on a line.
        #expect(error.count < 200)

        // The same rule in a file, for every kind of name, each at its own path.
        let quoted = "\"\(name.replacingOccurrences(of: "\u{7}", with: "\\a"))\""
        // YAML itself limits a key to 1,024 characters, and an ACL's name is a key.
        let aclTested = name.count < 1024
        let acls = "    acls: { \(quoted): { path_prefix: / } }\n    rules: [{ use_backend: web, if: [\(quoted)] }]\n"
        let yaml = """
            frontends:
              - name: \(quoted)
                listen: "127.0.0.1:8080"
            \(aclTested ? acls : "")    default_backend: web
            backends:
              - name: \(quoted)
                servers:
                  - { name: \(quoted), address: "127.0.0.1:9001" }
              - name: web
                servers:
                  - { name: web1, address: "127.0.0.1:9001" }
            """
        let errors = loadErrors(yaml)
        var kinds = [("frontends[0].name", "frontend"), ("backends[0].name", "backend"), ("backends[0].servers[0].name", "server")]
        if aclTested { kinds.append(("frontends[0].acls.", "ACL")) }
        for (path, kind) in kinds {
            #expect(
                errors.contains { $0.hasPrefix(path) && $0.contains("is not a valid \(kind) name: \(problem)") },
                "\(kind): \(errors)"
            )
        }
    }

    @Test("an admin API server entry follows the file's rule")
    func serverEntry() throws {
        #expect(try ConfigLoader.loadServer(yaml: #"{"name": "w3", "address": "127.0.0.1:1"}"#, sourceName: "body").name == "w3")
        do throws(ConfigErrors) {
            _ = try ConfigLoader.loadServer(yaml: #"{"name": "..", "address": "127.0.0.1:1"}"#, sourceName: "body")
            Issue.record("\"..\" was accepted")
        } catch {
            #expect(error.errors.map(\.path) == ["name"])
            #expect(error.errors.first?.message == #"".." is not a valid server name: it must start with a letter or a digit"#)
        }
    }
}
