// swift-nio-ssl's product does not export BoringSSL, but its module is built with it and
// visible to the targets that depend on NIOSSL; only BoringSSL can say what a cipher string
// means to BoringSSL. (NIOSSL hands `TLSConfiguration.cipherSuites` to
// `SSL_CTX_set_cipher_list` under a `precondition`: a string that selects nothing would stop
// the process at the first handshake's context, so it must never get that far.)
internal import CNIOBoringSSL

/// Checks an OpenSSL cipher string (`tls.ciphers`) the way BoringSSL will read it.
///
/// BoringSSL applies such strings leniently: an unknown name is skipped in silence. A typo
/// would then quietly drop a suite, so every name a string *selects* must be one BoringSSL
/// knows (a suite or an alias: `ECDHE-ECDSA-AES128-GCM-SHA256`, `ECDHE+AESGCM`, `HIGH`). Names
/// after `!` or `-` only remove, and the legacy ones that configurations copied from OpenSSL
/// carry (`!aNULL`, `!MD5`, `!RC4`) name nothing BoringSSL has, so they are let through.
package enum TLSCipherList {
    /// What is wrong with `text`, or nil when it selects at least one TLS 1.2 suite and names
    /// nothing unknown.
    package static func problem(in text: String) -> String? {
        if text.utf8.contains(0) { return "a cipher string cannot contain a NUL character" }
        for word in selectingWords(of: text) where !isKnown(word) {
            return "unknown cipher suite or alias \(quoted(word)) (BoringSSL's names, as OpenSSL spells them: ECDHE-ECDSA-AES128-GCM-SHA256)"
        }
        guard let selected = suites(text), !selected.isEmpty else {
            return "\(quoted(text)) selects no TLS 1.2 cipher suite"
        }
        return nil
    }

    /// The suites `text` selects, by their OpenSSL names, in order of preference; nil when
    /// BoringSSL refuses the string.
    package static func suites(_ text: String) -> [String]? {
        withContext { context in
            guard SSL_CTX_set_cipher_list(context, text) == 1,
                let list = SSL_CTX_get_ciphers(context)
            else { return nil }
            return (0..<sk_SSL_CIPHER_num(list)).compactMap { index in
                sk_SSL_CIPHER_value(list, index).flatMap { SSL_CIPHER_get_name($0) }
                    .map { String(cString: $0) }
            }
        }
    }

    /// Whether BoringSSL's strict parser takes `word` alone: it fails on unknown names only,
    /// since every known suite or alias selects something.
    private static func isKnown(_ word: String) -> Bool {
        withContext { SSL_CTX_set_strict_cipher_list($0, word) == 1 }
    }

    /// The names that add suites: every part of every element that does not start with `!`,
    /// `-` (removals) or `@` (a command such as `@STRENGTH`). `+` moves suites already chosen
    /// to the end; `A+B` selects what both select; `[A|B]` is a group of equal preference.
    private static func selectingWords(of text: String) -> [String] {
        let separators: Set<Character> = [":", ",", " ", ";"]
        var words: [String] = []
        for element in text.split(whereSeparator: { separators.contains($0) }) {
            guard let first = element.first, !"!-@".contains(first) else { continue }
            let parts = element.drop(while: { $0 == "+" || $0 == "[" }).split(whereSeparator: { "+|[]".contains($0) })
            words += parts.map(String.init)
        }
        return words
    }

    private static func withContext<Result>(_ body: (OpaquePointer) -> Result) -> Result {
        guard let context = SSL_CTX_new(TLS_method()) else {
            fatalError("BoringSSL could not allocate an SSL_CTX")
        }
        defer {
            SSL_CTX_free(context)
            // A refused string leaves its reason on the thread's error queue.
            ERR_clear_error()
        }
        return body(context)
    }
}
