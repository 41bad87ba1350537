import NIOCore

/// What an exchange's server connection does alike, HTTP/1.1 connection or HTTP/2 stream: it
/// owns the response timeout, and holds reads from the server while the client cannot take
/// more (backpressure towards the server). While reads are held for the client, the server is
/// not being waited for: the timer runs the client's timeout instead (`client_idle`, nginx's
/// `send_timeout`, HAProxy's `timeout client`), and its firing means `clientNotReading`.
///
/// It never calls into the channel while mutating: a read issued from inside a mutation
/// would come back into `read(context:)` during it (an exclusivity violation). Where a held
/// read is due, the method says so, and the handler issues it.
struct ServerReadControl {
    var timer = DeadlineTimer()
    var responseTimeout: TimeAmount = .seconds(30)
    private var readsPaused = false
    private var readPending = false
    /// Reads are paused for the client: the timer is the client's timeout, not the server's.
    private(set) var waitingForClient = false

    /// Response bytes or request progress: the server is waited for from now.
    mutating func armResponseTimeout() {
        // While the response waits for the client, the client's timeout runs instead.
        guard !waitingForClient else { return }
        timer.arm(in: responseTimeout)
    }

    /// Holds reads; with an exchange running, the client's timeout starts.
    mutating func pause(clientTimeout: TimeAmount, exchangeRunning: Bool) {
        readsPaused = true
        guard exchangeRunning, !waitingForClient else { return }
        waitingForClient = true
        timer.arm(in: clientTimeout)
    }

    /// Reads again; the server is waited for again, from now. Returns whether a read was held
    /// back, which the caller issues now.
    mutating func resume() -> Bool {
        readsPaused = false
        if waitingForClient {
            waitingForClient = false
            armResponseTimeout()
        }
        return takePendingRead()
    }

    /// The exchange's response is complete: no timeout runs.
    mutating func responseEnded() {
        timer.cancel()
        waitingForClient = false
    }

    /// The connection is no longer an exchange's (pooled, or a tunnel): reads flow freely.
    /// Returns whether a read was held back, which the caller issues now.
    mutating func detach() -> Bool {
        readsPaused = false
        waitingForClient = false
        return takePendingRead()
    }

    /// The channel's `read` event: whether to pass it on now (otherwise it is held while reads
    /// are paused).
    mutating func mayRead() -> Bool {
        if readsPaused {
            readPending = true
            return false
        }
        return true
    }

    /// What the timer's expiry means for the exchange.
    var expiryFailure: BackendFailure { waitingForClient ? .clientNotReading : .responseTimeout }

    private mutating func takePendingRead() -> Bool {
        defer { readPending = false }
        return readPending
    }
}
