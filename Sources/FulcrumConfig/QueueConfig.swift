/// Where requests wait when every server they may go to is at its limit (`backends[].queue`),
/// as HAProxy's backend queue with `timeout queue`, and Envoy's `max_pending_requests`.
///
/// It applies only to servers with `max_connections` or `max_requests`: a backend has the
/// default queue as soon as one of its servers has a limit.
package struct QueueConfig: Sendable, Equatable {
    /// Requests that may wait at once; one more gets 503 at once. 0: no queue (503 whenever
    /// every server is full).
    package var max = 1000
    /// How long a request may wait for a server; then it gets 503.
    package var timeout: Duration = .seconds(5)

    package init() {}
}
