import FulcrumConfig
import Testing

/// `servers[].protocol` (http1, h2, h2c) and `backends[].http2` (how HTTP/2 connections are
/// shared): what they load as, and what is refused.
@Suite("HTTP/2 to servers: settings")
struct HTTP2UpstreamConfigTests {
    static func yaml(server: String = "", backend: String = "", mode: String = "http") -> String {
        """
        frontends:
          - { name: public, listen: "127.0.0.1:8080", default_backend: web, mode: \(mode) }
        backends:
          - name: web
            mode: \(mode)
            servers:
              - { name: web1, address: "127.0.0.1:9001"\(server) }
        \(backend)
        """
    }

    @Test("servers speak HTTP/1.1 unless they say h2 (over TLS) or h2c; http2 limits have defaults")
    func loads() throws {
        let plain = try ConfigLoader.load(yaml: Self.yaml())
        #expect(plain.backends[0].servers[0].upstreamProtocol == .http1)
        #expect(plain.backends[0].http2 == nil)
        let h2 = try ConfigLoader.load(yaml: Self.yaml(server: ", protocol: h2, tls: {}"))
        #expect(h2.backends[0].servers[0].upstreamProtocol == .h2)
        let h2c = try ConfigLoader.load(
            yaml: Self.yaml(server: ", protocol: h2c", backend: "    http2: { max_concurrent_streams: 32, max_connections: 1 }")
        )
        #expect(h2c.backends[0].servers[0].upstreamProtocol == .h2c)
        #expect(h2c.backends[0].http2?.maxConcurrentStreams == 32)
        #expect(h2c.backends[0].http2?.maxConnections == 1)
        let grpc = try ConfigLoader.load(yaml: Self.yaml(server: ", protocol: h2c", backend: "    health_check: { grpc: true }"))
        #expect(grpc.backends[0].healthCheck?.grpc == true)
        #expect(try ConfigLoader.load(yaml: ConfigRenderer.yaml(grpc)) == grpc)
        let defaults = try ConfigLoader.load(yaml: Self.yaml(backend: "    http2: {}"))
        #expect(defaults.backends[0].http2 == HTTP2UpstreamLimits())
        #expect(HTTP2UpstreamLimits().maxConcurrentStreams == 100 && HTTP2UpstreamLimits().maxConnections == 4)
    }

    @Test(
        "what cannot be is reported where it is written",
        arguments: [
            (
                yaml(server: ", protocol: h2"),
                "backends[0].servers[0].protocol (line 7): h2 is HTTP/2 over TLS: give the server tls (h2c is HTTP/2 without TLS)"
            ),
            (
                yaml(server: ", protocol: h2c, tls: {}"),
                "backends[0].servers[0].protocol (line 7): h2c is HTTP/2 without TLS (over TLS, it is h2)"
            ),
            (
                yaml(server: ", protocol: http3"),
                "backends[0].servers[0].protocol (line 7): unknown protocol \"http3\"; expected one of: http1, h2, h2c"
            ),
            (
                yaml(server: ", protocol: h2c", mode: "tcp"),
                "backends[0].servers[0].protocol (line 7): is for mode: http (in mode: tcp, bytes pass as they are)"
            ),
            (
                yaml(backend: "    http2: { max_connections: 2 }", mode: "tcp"),
                "backends[0].http2 (line 8): applies only to mode: http (HTTP/2 servers are for HTTP requests)"
            ),
            (
                yaml(server: ", protocol: h2c", backend: "    health_check: { grpc: true, path: /health }"),
                "backends[0].health_check.path (line 8): does not apply with grpc: true (the probe calls grpc.health.v1.Health/Check)"
            ),
            (
                yaml(backend: "    health_check: { grpc: true }"),
                "backends[0].health_check.grpc (line 8): gRPC health checks need servers that speak HTTP/2 (protocol: h2 or h2c); web1 speak HTTP/1.1"
            ),
            (
                yaml(backend: "    http2: { max_concurrent_streams: 0 }"),
                "backends[0].http2.max_concurrent_streams (line 8): must be between 1 and 10000, found 0"
            ),
            (
                yaml(backend: "    http2: { max_connections: 65 }"),
                "backends[0].http2.max_connections (line 8): must be between 1 and 64, found 65"
            ),
        ]
    )
    func errors(yaml: String, expected: String) {
        #expect(loadErrors(yaml) == [expected])
    }
}
