import FulcrumConfig

// libFuzzer target: text as a configuration file holds it, through `ConfigLoader` (Yams'
// parser, then the walk that validates every section and collects every error).
//
// Beyond crashes, it checks what `ConfigRenderer` promises for any configuration the loader
// accepts: loading its YAML rendering, or its JSON one, gives an equal `Config`, and rendering
// that again gives the same text. (Inputs with a U+FEFF are left out of that check: the
// renderer documents that a string starting with one cannot come back.) Built and run by
// Fuzz/run.sh (docs/fuzzing.md).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfigLoader(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    // A file that is not UTF-8 is refused before the loader sees it (`load(contentsOfFile:)`);
    // -1 keeps such inputs out of the corpus.
    guard let yaml = String(validating: UnsafeBufferPointer(start: data, count: size), as: UTF8.self) else { return -1 }
    let config: Config
    do {
        config = try ConfigLoader.load(yaml: yaml, sourceName: "fuzz.yaml")
    } catch {
        // What `fulcrum check` prints.
        _ = error.description
        return 0
    }
    if yaml.unicodeScalars.contains("\u{FEFF}") { return 0 }
    let rendered = ConfigRenderer.yaml(config)
    let reloaded = load(rendered, "its YAML rendering", of: yaml)
    guard reloaded == config else { failure("its YAML rendering loads as another configuration", rendered, of: yaml) }
    let again = ConfigRenderer.yaml(reloaded)
    guard again == rendered else { failure("rendering it again gives other text:\n\(again)", rendered, of: yaml) }
    let json = ConfigRenderer.json(config)
    guard load(json, "its JSON rendering", of: yaml) == config else {
        failure("its JSON rendering loads as another configuration", json, of: yaml)
    }
    return 0
}

private func load(_ text: String, _ what: String, of input: String) -> Config {
    do {
        return try ConfigLoader.load(yaml: text, sourceName: "rendered.yaml")
    } catch {
        failure("\(what) does not load: \(error)", text, of: input)
    }
}

private func failure(_ message: String, _ text: String, of input: String) -> Never {
    fatalError("A loaded configuration: \(message)\n--- input\n\(input)\n--- rendered\n\(text)\n---")
}
