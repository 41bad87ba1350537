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
  /api/backends/{backend}/servers/{server}:
    parameters:
      - $ref: "#/components/parameters/backend"
      - name: server
        in: path
        required: true
        schema: { type: string }
    patch:
      summary: Drain a server, put it in maintenance, or make it ready again.
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              properties:
                state: { type: string, enum: [ready, drain, maintenance] }
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
