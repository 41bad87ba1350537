/// One server of a backend (`backends[].servers[]`).
package struct ServerConfig: Sendable, Equatable {
    package var name: String
    package var address: ServerAddress
    /// Relative share of requests, 0…256 (default 1). Used by every weight-aware algorithm.
    /// 0 makes the server a backup: it is chosen only when no server with a positive weight can be.
    package var weight: Int
    /// The weights a server may have, in a file and through the admin API alike.
    package static let weights = 0...256
    /// What the server speaks (`protocol`): HTTP/1.1 (default), HTTP/2 over TLS (`h2`, which
    /// needs `tls`), or HTTP/2 without TLS by prior knowledge (`h2c`).
    package var upstreamProtocol: UpstreamProtocol = .http1
    /// TLS to the server (`tls`); nil: plain HTTP.
    package var tls: ServerTLSConfig?
    /// Connections to the server start with a PROXY protocol header naming the client
    /// (`send_proxy: v1 | v2`, HAProxy's `send-proxy` and `send-proxy-v2`); nil: none.
    package var sendProxy: ProxyProtocolVersion?
    /// `slow_start`: overrides the backend's for this server (zero: none for it).
    package var slowStart: Duration?
    /// `max_connections`: connections in use to the server at once (HAProxy's `maxconn`): one
    /// per request in flight to an HTTP/1.1 server and per client connection in `mode: tcp`;
    /// for an HTTP/2 server, the connections each event loop opens to it. nil: no limit.
    package var maxConnections: Int?
    /// `max_requests`: requests in flight to the server at once (Envoy's `max_requests`);
    /// nil: no limit.
    package var maxRequests: Int?

    /// How many requests may be in flight to the server at once: the smaller of its limits
    /// that count requests (nil: no limit).
    package var inFlightLimit: Int? {
        let connectionLimit = upstreamProtocol == .http1 ? maxConnections : nil
        switch (connectionLimit, maxRequests) {
        case (let connections?, let requests?): return min(connections, requests)
        case (let limit?, nil), (nil, let limit?): return limit
        case (nil, nil): return nil
        }
    }

    package init(name: String, address: ServerAddress, weight: Int = 1) {
        self.name = name
        self.address = address
        self.weight = weight
    }
}

/// The HTTP version a server speaks (`servers[].protocol`).
package enum UpstreamProtocol: String, Sendable, Equatable, CaseIterable {
    case http1
    /// HTTP/2 over TLS, agreed by ALPN.
    case h2
    /// HTTP/2 over plain TCP, by prior knowledge (RFC 9113 §3.3).
    case h2c

    package var isHTTP2: Bool { self != .http1 }
}

/// A version of HAProxy's PROXY protocol: v1 is a line of text, v2 binary.
package enum ProxyProtocolVersion: String, Sendable, Equatable, CaseIterable {
    case v1, v2
}

/// TLS to one server (`servers[].tls`).
package struct ServerTLSConfig: Sendable, Equatable {
    /// Verify the server's certificate chain and name (default true; `false` only explicitly).
    package var verify = true
    /// PEM file of the CAs to trust instead of the system's (absolute after loading).
    package var caFile: String?
    /// The name sent by SNI and checked against the certificate; default: the address's host
    /// when it is a name.
    package var serverName: String?
    /// PEM file with a client certificate chain and its key, for mutual TLS.
    package var clientCertificateFile: String?

    package init() {}
}

/// `host:port` of a server. `host` is an IP literal or a name resolved when the config is
/// applied (IPv6 without brackets here).
package struct ServerAddress: Sendable, Equatable, CustomStringConvertible {
    package var host: String
    package var port: Int

    package init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    package var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
