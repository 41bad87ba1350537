import Dispatch

// The command runs from synchronous top-level code rather than from an async `@main`. An async
// main parks the main thread in `dispatch_main()`, which valgrind 3.19 (Debian 12's) cannot run,
// and callgrind's instruction counts are the benchmark's noise-free check (bench/callgrind.sh).
// The task is detached because top-level code belongs to the main actor, whose thread waits here.
let commandFinished = DispatchSemaphore(value: 0)
Task.detached {
    await Fulcrum.main()
    commandFinished.signal()
}
commandFinished.wait()
