import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Starts `arguments` (the program's path first) with `posix_spawn`, output to /dev/null, with
/// no other descriptor of this process, no signal blocked and `environment` added to this
/// process's; returns its pid.
///
/// For daemons such as dnsmasq, rather than Foundation's `Process`: a daemon closes the
/// descriptors it inherits, `Process` takes the closing of its own for the child's exit, then
/// blocks its monitoring thread in `waitpid` until the daemon really exits, which stalls every
/// other `Process` of the test run (and every test waiting on one).
package func spawnProcess(_ arguments: [String], environment: [String: String] = [:]) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    for descriptor in [STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO] {
        posix_spawn_file_actions_addopen(&actions, descriptor, "/dev/null", descriptor == STDIN_FILENO ? O_RDONLY : O_WRONLY, 0)
    }
    // The child gets none of this process's other descriptors: many are not close-on-exec
    // (sockets of other tests), and a child holding a copy of a connection keeps it open after
    // its test closed it. Beyond the highest one open now, for those opened meanwhile (glibc
    // passes over a descriptor that is not open).
    let highest = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap { Int32($0) }.max() ?? 1024
    for descriptor in 3...(highest + 256) {
        posix_spawn_file_actions_addclose(&actions, descriptor)
    }
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    // The test's threads block signals; the child must not inherit that.
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
    let argv = arguments.map { strdup($0) } + [nil]
    var merged = ProcessInfo.processInfo.environment
    merged.merge(environment) { $1 }
    let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        for pointer in argv + envp { free(pointer) }
    }
    var child: pid_t = 0
    let status = posix_spawn(&child, arguments[0], &actions, &attributes, argv, envp)
    guard status == 0 else { throw RedisServerError("cannot start \(arguments[0]): error \(status)") }
    return child
}

/// The exit status of `child` if it has exited (and reaps it); nil while it runs.
package func exitStatus(of child: pid_t) -> Int32? {
    var status: Int32 = 0
    return waitpid(child, &status, WNOHANG) == child ? status : nil
}

/// Kills `child` and reaps it.
package func killProcess(_ child: pid_t) {
    kill(child, SIGKILL)
    var status: Int32 = 0
    waitpid(child, &status, 0)
}
