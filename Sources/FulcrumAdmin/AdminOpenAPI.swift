/// The admin API's OpenAPI 3.1 document, served at `GET /api/openapi.yaml`.
///
/// A copy of `docs/admin-api.yaml`, where people read it: `AdminAPITests` checks that the two
/// are the same and that every route the API registers is in it, and the reverse.
enum AdminOpenAPI {
    static let document = #"""
openapi: 3.1.0
info:
  title: Fulcrum admin API
  version: 0.1.0
  description: >
    The live state of a running Fulcrum and the changes that need no restart. Every call that
    changes something needs the Bearer token (global.admin.token_env); on a listener beyond
    loopback every call does, but GET / (the dashboard page, which holds no data). Errors are
    application/problem+json (RFC 9457).
servers:
  - url: http://127.0.0.1:9090
security:
  - bearer: []
paths:
  /:
    get:
      summary: The live dashboard.
      description: >
        A self-contained HTML page (inline CSS and JavaScript, nothing loaded from elsewhere)
        that polls /api/stats every second, charts each server's req/s and p99 over the last
        five minutes, lists adaptive backends' decisions, and drains, puts in maintenance,
        readies servers and switches adaptive algorithms through this API with the token
        pasted into it. The page needs no token, even beyond loopback: it holds no data, and
        its own calls need the token wherever the API does.
      security: []
      responses:
        "200":
          description: The page (Cache-Control no-store).
          content:
            text/html: {}
  /api/health:
    get:
      summary: Fulcrum is running.
      security: []
      responses:
        "200":
          description: Always, while Fulcrum runs.
          content:
            application/json:
              schema:
                type: object
                properties:
                  status: { type: string, const: ok }
  /api/openapi.yaml:
    get:
      summary: This document.
      security: []
      responses:
        "200":
          description: The OpenAPI document.
          content:
            application/yaml: {}
  /metrics:
    get:
      summary: Prometheus metrics (text exposition format 0.0.4).
      description: >
        fulcrum_requests_total{frontend,backend,server,code}, fulcrum_request_duration_seconds
        (histogram), fulcrum_received_bytes_total, fulcrum_sent_bytes_total,
        fulcrum_active_connections{frontend}, fulcrum_server_up, fulcrum_server_in_flight,
        fulcrum_server_weight{backend,server}, fulcrum_health_check_total{backend,server,result},
        fulcrum_algorithm_switches_total{backend,from,to}, fulcrum_config_reloads_total{result},
        fulcrum_shield_decisions_total{frontend,decision,reason}.
        A read: no token on a loopback listener.
      security: []
      responses:
        "200":
          description: The metrics.
          content:
            text/plain: {}
  /api/config:
    get:
      summary: The running configuration, as JSON in the configuration file's own schema.
      security: []
      responses:
        "200":
          description: The configuration (PUT it back, or load it as a file, unchanged).
          content:
            application/json: {}
    put:
      summary: Apply a whole configuration (YAML or JSON) as a reload.
      description: >
        Validated, then applied without dropping a connection (ProxyServer.reload). Invalid or
        impossible to apply (an address in use, a name that does not resolve): 422, and nothing
        changed. With global.admin.config_writeback, written to the configuration file.
        Relative paths resolve against the configuration file's directory.
      requestBody:
        required: true
        content:
          application/yaml: {}
          application/json: {}
      responses:
        "200":
          description: Applied (or already running).
          content:
            application/json:
              schema: { $ref: "#/components/schemas/Reload" }
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
        "422": { $ref: "#/components/responses/Problem" }
  /api/config/validate:
    post:
      summary: Check a configuration (YAML or JSON) without applying it.
      security: []
      requestBody:
        required: true
        content:
          application/yaml: {}
          application/json: {}
      responses:
        "200":
          description: The configuration is valid.
          content:
            application/json:
              schema:
                type: object
                properties:
                  valid: { type: boolean, const: true }
        "422":
          description: Every error found, under "errors" (path, line, message).
          content:
            application/problem+json: {}
  /api/backends:
    get:
      summary: Every backend with its servers and their live numbers.
      security: []
      responses:
        "200":
          description: The backends, in configuration order.
          content:
            application/json:
              schema:
                type: array
                items: { $ref: "#/components/schemas/Backend" }
  /api/stats:
    get:
      summary: The live numbers of every backend's servers.
      security: []
      responses:
        "200":
          description: The same numbers as /api/backends, under "backends".
          content:
            application/json:
              schema:
                type: object
                properties:
                  backends:
                    type: array
                    items: { $ref: "#/components/schemas/Backend" }
  /api/backends/{backend}:
    parameters:
      - $ref: "#/components/parameters/backend"
    get:
      summary: One backend.
      security: []
      responses:
        "200":
          description: The backend.
          content:
            application/json:
              schema: { $ref: "#/components/schemas/Backend" }
        "404": { $ref: "#/components/responses/Problem" }
  /api/backends/{backend}/decisions:
    parameters:
      - $ref: "#/components/parameters/backend"
    get:
      summary: An adaptive backend's decision-engine history, newest first (at most 100).
      security: []
      responses:
        "200":
          description: The decisions.
          content:
            application/json:
              schema:
                type: object
                properties:
                  decisions:
                    type: array
                    items: { $ref: "#/components/schemas/Decision" }
        "404": { $ref: "#/components/responses/Problem" }
        "422": { $ref: "#/components/responses/Problem" }
  /api/backends/{backend}/servers:
    parameters:
      - $ref: "#/components/parameters/backend"
    post:
      summary: Add a server (a reload; written back with config_writeback).
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              description: A server entry exactly as under backends[].servers in the file.
              required: [name, address]
              properties:
                name: { type: string }
                address: { type: string, description: "host:port" }
                weight: { type: integer, minimum: 0, maximum: 256 }
                tls:
                  type: object
                  properties:
                    verify: { type: boolean }
                    ca: { type: string }
                    sni: { type: string }
                    client_certificate: { type: string }
      responses:
        "201":
          description: The server, in rotation, and the reload that added it.
          content:
            application/json:
              schema:
                type: object
                properties:
                  server: { $ref: "#/components/schemas/Server" }
                  reload: { $ref: "#/components/schemas/Reload" }
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
        "409": { $ref: "#/components/responses/Problem" }
        "422": { $ref: "#/components/responses/Problem" }
  /api/backends/{backend}/servers/{server}:
    parameters:
      - $ref: "#/components/parameters/backend"
      - name: server
        in: path
        required: true
        schema: { type: string }
    delete:
      summary: Remove a server (a reload). It gets no new requests; those it has finish first.
      responses:
        "200":
          description: Removed.
          content:
            application/json:
              schema: { $ref: "#/components/schemas/Reload" }
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
        "422": { $ref: "#/components/responses/Problem" }
    patch:
      summary: Change a server's weight (a reload) and/or its state (runtime only).
      description: >
        state drains a server, puts it in maintenance, or makes it ready again; it is runtime
        state and is not written to the file. weight (0–256) is configuration: applied by a
        reload and written back with config_writeback. Both are checked before either applies.
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              properties:
                state: { type: string, enum: [ready, drain, maintenance] }
                weight: { type: integer, minimum: 0, maximum: 256 }
      responses:
        "200":
          description: The server, changed.
          content:
            application/json:
              schema: { $ref: "#/components/schemas/Server" }
        "400": { $ref: "#/components/responses/Problem" }
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
        "422": { $ref: "#/components/responses/Problem" }
  /api/backends/{backend}/algorithm:
    parameters:
      - $ref: "#/components/parameters/backend"
    put:
      summary: Switch an adaptive backend's algorithm by hand, pin it, or unpin it.
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              properties:
                algorithm:
                  type: string
                  enum: [round_robin, weighted_round_robin, least_connections, random, power_of_two, least_response_time, peak_ewma]
                pin:
                  type: boolean
                  description: With algorithm, keep it until unpinned; false alone lets the engine choose again.
      responses:
        "200":
          description: The backend, changed.
          content:
            application/json:
              schema: { $ref: "#/components/schemas/Backend" }
        "400": { $ref: "#/components/responses/Problem" }
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
        "422": { $ref: "#/components/responses/Problem" }
components:
  securitySchemes:
    bearer:
      type: http
      scheme: bearer
  parameters:
    backend:
      name: backend
      in: path
      required: true
      schema: { type: string }
  responses:
    Problem:
      description: An error, as RFC 9457 problem details.
      content:
        application/problem+json:
          schema:
            type: object
            properties:
              type: { type: string }
              title: { type: string }
              status: { type: integer }
              detail: { type: string }
              field: { type: string, description: The JSON key or path parameter at fault. }
  schemas:
    Backend:
      type: object
      properties:
        name: { type: string }
        algorithm: { type: string, description: As configured. }
        activeAlgorithm: { type: string, description: "For adaptive backends, the engine's or the operator's choice." }
        pinned: { type: boolean, description: Adaptive backends only. }
        servers:
          type: array
          items: { $ref: "#/components/schemas/Server" }
    Server:
      type: object
      properties:
        name: { type: string }
        address: { type: string }
        state: { type: string, enum: [up, down, ejected, draining, maintenance] }
        weight: { type: integer }
        inFlight: { type: integer }
        connectionsOpen: { type: integer }
        requestsPerSecond: { type: number }
        errorRate: { type: number }
        ewmaMilliseconds: { type: number }
        p50Milliseconds: { type: number }
        p95Milliseconds: { type: number }
        p99Milliseconds: { type: number }
        totals:
          type: object
          properties:
            requests: { type: integer }
            responses5xx: { type: integer }
            connectFailures: { type: integer }
            timeouts: { type: integer }
            noResponses: { type: integer }
    Reload:
      type: object
      properties:
        changed: { type: boolean, description: False when the configuration was already running. }
        summary: { type: string }
        listenersAdded: { type: array, items: { type: string } }
        listenersRemoved: { type: array, items: { type: string } }
        backendsAdded: { type: array, items: { type: string } }
        backendsRemoved: { type: array, items: { type: string } }
        serversAdded: { type: array, items: { type: string }, description: "backend/server" }
        serversRemoved: { type: array, items: { type: string } }
        serversChanged: { type: array, items: { type: string }, description: "Kept servers whose weight or TLS changed." }
        writtenTo: { type: string, description: The configuration file written (config_writeback). }
        writebackError: { type: string, description: Applied, but writing the file failed. }
    Decision:
      type: object
      properties:
        secondsAgo: { type: number }
        from: { type: string }
        to: { type: string }
        switched: { type: boolean }
        rule: { type: string }
        explanation: { type: string }

"""#
}
