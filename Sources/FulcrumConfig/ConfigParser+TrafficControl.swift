extension ConfigParser {
    static let stickyKeys = ["cookie", "mode", "ttl", "secure", "httponly", "samesite"]
    static let queueKeys = ["max", "timeout"]

    /// `queue: { max, timeout }`.
    func parseQueue(_ reader: YAMLNodeReader) -> QueueConfig? {
        guard let mapping = reader.mapping(allowedKeys: Self.queueKeys) else { return nil }
        var queue = QueueConfig()
        if let max = mapping["max"]?.integer(in: 0...1_000_000) { queue.max = max }
        if let timeout = mapping["timeout"]?.duration() { queue.timeout = timeout }
        return queue
    }

    /// `sticky: { cookie: NAME, mode: insert | prefix, ttl, secure, httponly, samesite }`.
    func parseSticky(_ reader: YAMLNodeReader) -> StickyConfig? {
        guard let mapping = reader.mapping(allowedKeys: Self.stickyKeys) else { return nil }
        guard let cookieReader = mapping.required("cookie"), let cookie = cookieReader.nonEmptyString() else { return nil }
        guard isHTTPToken(cookie) else {
            cookieReader.report("\(quoted(cookie)) is not a cookie name (letters, digits and !#$%&'*+-.^_`|~)")
            return nil
        }
        var sticky = StickyConfig(cookie: cookie)
        if let mode = mapping["mode"]?.choice(StickyConfig.Mode.self, named: "mode") {
            sticky.mode = mode
        }
        if let ttl = mapping["ttl"]?.duration() {
            if ttl < .seconds(1) {
                mapping["ttl"]?.report("must be at least 1s (a cookie's Max-Age counts seconds)")
            }
            sticky.ttl = ttl
        }
        if let secure = mapping["secure"]?.bool() { sticky.secure = secure }
        if let httpOnly = mapping["httponly"]?.bool() { sticky.httpOnly = httpOnly }
        if let sameSite = mapping["samesite"]?.choice(StickyConfig.SameSite.self, named: "samesite") {
            sticky.sameSite = sameSite
            if sameSite == .none, sticky.secure != true {
                mapping["samesite"]?.report("none needs secure: true (browsers refuse a SameSite=None cookie that is not Secure)")
            }
        }
        if sticky.mode == .prefix {
            // The server sets its own cookie, with its own attributes.
            for key in ["ttl", "secure", "httponly", "samesite"] {
                mapping[key]?.report("applies only to mode: insert (in mode: prefix, the server's cookie keeps its own attributes)")
            }
        }
        return sticky
    }
}
