#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's limit on open descriptors (`RLIMIT_NOFILE`, what `ulimit -n` shows), which
/// `max_connections: auto` is derived from.
package enum DescriptorLimit {
    /// Beyond this the limit is treated as this: `auto` must stay a number a table can hold.
    private static let ceiling = 1 << 20

    /// The soft limit now.
    package static var current: Int {
        read().map { Int(clamping: min($0.rlim_cur, rlim_t(ceiling))) } ?? ceiling
    }

    /// Raises the soft limit to the hard one, as HAProxy and nginx do at start (the soft
    /// limit is often 1,024, far below what a proxy needs). Returns the limits before and
    /// after, or nil when it could not be read or was already at its maximum.
    @discardableResult
    package static func raiseToHardLimit() -> (from: Int, to: Int)? {
        guard var limit = read() else { return nil }
        let wanted = min(limit.rlim_max, rlim_t(ceiling))
        guard limit.rlim_cur < wanted else { return nil }
        let before = limit.rlim_cur
        limit.rlim_cur = wanted
        guard setrlimit(resource, &limit) == 0 else { return nil }
        return (Int(clamping: before), Int(clamping: wanted))
    }

    private static func read() -> rlimit? {
        var limit = rlimit()
        return getrlimit(resource, &limit) == 0 ? limit : nil
    }

    #if canImport(Glibc)
    private static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    private static let resource = RLIMIT_NOFILE
    #endif
}
