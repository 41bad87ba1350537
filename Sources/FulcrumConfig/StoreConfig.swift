/// Where state shared by several Fulcrum instances lives (`global.store`): rate limits with
/// `shared: true` are counted there, as Envoy's global rate limits and redis-cell count them.
package struct StoreConfig: Sendable, Equatable {
    /// What a shared limit does when Redis does not answer within `timeout`.
    package enum OnError: String, Sendable, Equatable, CaseIterable {
        /// The request passes, as Envoy's global rate limit does by default.
        case allow
        /// The instance counts the limit itself, as if it were not shared (the default: a
        /// limit keeps protecting, each instance allowing the whole rate).
        case local
    }

    package var redis: RedisURL
    /// How long a decision waits for Redis (default 50ms), connecting included.
    package var timeout: Duration = .milliseconds(50)
    package var onError = OnError.local

    package init(redis: RedisURL) {
        self.redis = redis
    }
}

/// `redis://[[USER]:PASSWORD@]HOST[:PORT][/DATABASE]`, as Redis's own clients read it.
package struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    package var host: String
    package var port = 6379
    package var database = 0
    package var username: String?
    package var password: String?

    package init(host: String, port: Int = 6379, database: Int = 0, username: String? = nil, password: String? = nil) {
        self.host = host
        self.port = port
        self.database = database
        self.username = username
        self.password = password
    }

    /// Why a URL was rejected; shown as is.
    package struct ParseError: Error {
        package var message: String
    }

    package init(parsing text: String) throws(ParseError) {
        let scheme = "redis://"
        guard text.lowercased().hasPrefix(scheme) else {
            throw ParseError(message: "\(quoted(text)) is not a redis:// URL (rediss://, Redis over TLS, is not supported)")
        }
        var rest = Substring(text.dropFirst(scheme.count))
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !path.isEmpty {
                guard let database = Int(path), (0...10_000).contains(database) else {
                    throw ParseError(message: "\(quoted(text)): the database after / must be a number, found \(quoted(String(path)))")
                }
                self.database = database
            }
        }
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            let parts = credentials.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            let user = parts.count == 2 ? String(parts[0]).removingPercentEscapes() : ""
            let password = String(parts.count == 2 ? parts[1] : parts[0]).removingPercentEscapes()
            username = user.isEmpty ? nil : user
            self.password = password.isEmpty ? nil : password
        }
        guard !rest.isEmpty else { throw ParseError(message: "\(quoted(text)) has no host") }
        let hasPort = rest.hasPrefix("[") ? rest.contains("]:") : rest.contains(":")
        do {
            let address = try HostAndPort(parsing: hasPort ? String(rest) : (rest.hasPrefix("[") ? "\(rest):6379" : "\(rest):6379"))
            host = address.host
            port = address.port
        } catch {
            throw ParseError(message: "\(quoted(text)): \(error.message)")
        }
    }

    /// The URL, with the password replaced by `***` (for logs and the admin API).
    package var description: String {
        let credentials = password.map { _ in "\(username ?? ""):***@" } ?? ""
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return "redis://\(credentials)\(host):\(port)/\(database)"
    }

    /// The URL as written to a file: the password kept.
    package var text: String {
        let credentials = password.map { "\((username ?? "").addingPercentEscapes()):\($0.addingPercentEscapes())@" } ?? ""
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return "redis://\(credentials)\(host):\(port)/\(database)"
    }
}

extension String {
    /// `%XX` sequences decoded (a password may hold `@`, `:` or `/` written so).
    fileprivate func removingPercentEscapes() -> String {
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            let high = iterator.next()
            let low = iterator.next()
            if let high, let low, let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else {
                bytes.append(byte)
                if let high { bytes.append(high) }
                if let low { bytes.append(low) }
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The reverse, for the characters that would end a URL's credentials.
    fileprivate func addingPercentEscapes() -> String {
        var result = ""
        for scalar in unicodeScalars {
            switch scalar {
            case "%", "@", ":", "/", "?", "#", "[", "]": result += "%" + String(scalar.value, radix: 16, uppercase: true)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}
