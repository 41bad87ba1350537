#!/usr/bin/env python3
"""The soak's figures and verdict, from the files bench/soak.py wrote: python3 bench/soak_report.py OUT_DIR

A failure is *expected* (caused by the chaos) when HAProxy would fail that exchange too:
  - it was in flight when a server of its backend was killed: the kill started inside the
    exchange (± MARGIN). HAProxy answers 502 to a request its server dies under, unless told
    to retry it (`retry-on`, off by default); Fulcrum retries idempotent ones, so it has fewer;
  - at some moment of the exchange no server of its backend was eligible (every one killed,
    drained or removed): 503 in HAProxy and Fulcrum alike.
Everything else is *Fulcrum's*: a 5xx or a cut connection while a healthy server existed
(a killed server must be routed around, as HAProxy's `option redispatch` does), a wrong
body, a malformed request answered other than as required, a slow client not timed out, a
reload or admin call that failed. Exchanges without a backend (slow and malformed clients)
are never expected to fail.

The verdict fails on any failure of Fulcrum's, on a kind of traffic with no success at all
(then the soak did not test it), on Fulcrum exiting or not stopping cleanly, and on growth:
  - RSS and descriptors under load: the median of the last 20 % of the load's samples
    against the median of the 20 % after the warm-up (the first WARMUP_SHARE of the load, at
    least WARMUP_MIN seconds); growth beyond the tolerance fails;
  - descriptors after the load: within FD_SLACK of the idle baseline before it (the median of
    the idle samples), for the last three samples of the settle period.
"""

import json
import os
import statistics
import sys

MARGIN = 0.05  # seconds around a kill: the signal, and the clocks of h2load and Python
WARMUP_SHARE, WARMUP_MIN = 0.10, 5.0
RSS_TOLERANCE_SHARE, RSS_TOLERANCE_KB = 0.10, 16 * 1024
FD_TOLERANCE_SHARE, FD_TOLERANCE = 0.5, 32
FD_SLACK = 2
APP_SERVERS = {"w1", "w2", "w3", "w4", "w5"}


def idle_baseline(samples):
    idle = [s[3] for s in samples if s[1] == "idle-before"]
    return int(statistics.median(idle)) if idle else 0


def load(out):
    def read(name):
        with open(os.path.join(out, name)) as file:
            return json.load(file)

    samples = []
    with open(os.path.join(out, "samples.tsv")) as file:
        next(file)
        for line in file:
            t, phase, rss, fds, threads = line.rstrip("\n").split("\t")
            samples.append((float(t), phase, int(rss), int(fds), int(threads)))
    return read("meta.json"), read("events.json"), read("exchanges.json"), samples


def no_server_windows(events, backend):
    """[(from, to)]: the spans in which `backend` had no eligible server."""
    windows, empty_since = [], None
    for event in events:
        empty = not event["eligible"][backend]
        if empty and empty_since is None:
            empty_since = event["t"]
        elif not empty and empty_since is not None:
            windows.append((empty_since, event["end"]))
            empty_since = None
    if empty_since is not None:
        windows.append((empty_since, float("inf")))
    return windows


def classify(failure, events, windows):
    backend = failure["backend"]
    if backend is None:
        return None
    start, end = failure["start"] - MARGIN, failure["end"] + MARGIN
    for event in events:
        if event["action"] != "kill" or not start <= event["t"] <= end:
            continue
        if (backend == "app") == (event["target"] in APP_SERVERS):
            return "in flight at a backend kill"
    for since, until in windows[backend]:
        if since <= end and until >= start:
            return "no server available"
    return None


def growth(samples, column):
    """(early median, late median) of the load's samples, or None when there are too few."""
    load = [s for s in samples if s[1] == "load"]
    if len(load) < 10:
        return None
    warm_until = load[0][0] + max(WARMUP_MIN, WARMUP_SHARE * (load[-1][0] - load[0][0]))
    after_warmup = [s for s in load if s[0] >= warm_until]
    share = max(1, len(load) // 5)
    if len(after_warmup) < 2 * share:
        return None
    early = statistics.median(s[column] for s in after_warmup[:share])
    late = statistics.median(s[column] for s in load[-share:])
    return early, late


def report(out):
    meta, events, exchanges, samples = load(out)
    windows = {"app": no_server_windows(events, "app"), "ws": no_server_windows(events, "ws")}
    ok = exchanges["ok"]
    by_kind = {kind: [count, 0, 0] for kind, count in ok.items()}  # ok, expected, Fulcrum's
    causes = {}  # (kind, cause, classification): [count, first detail]
    for failure in exchanges["failures"]:
        reason = classify(failure, events, windows)
        row = by_kind.setdefault(failure["kind"], [0, 0, 0])
        row[1 if reason else 2] += 1
        key = (failure["kind"], failure["cause"], f"expected: {reason}" if reason else "Fulcrum's")
        causes.setdefault(key, [0, failure["detail"]])[0] += 1

    problems = []
    lines = [f"Soak: {meta['seconds']} s of mixed traffic against {meta['fulcrum']} ({meta['version']})"]
    lines.append(f"Command: {meta['command']}")
    lines.append("")
    lines.append(f"{'kind':<20} {'exchanges':>10} {'ok':>10} {'failed: chaos':>14} {'failed: Fulcrum':>16}")
    for kind in sorted(by_kind):
        good, expected, fulcrums = by_kind[kind]
        lines.append(
            f"{kind:<20} {good + expected + fulcrums:>10,} {good:>10,} {expected:>14,} {fulcrums:>16,}"
        )
        if good == 0:
            problems.append(f"no {kind} exchange succeeded: that traffic was not tested")
    total = [sum(row[i] for row in by_kind.values()) for i in range(3)]
    lines.append(f"{'total':<20} {sum(total):>10,} {total[0]:>10,} {total[1]:>14,} {total[2]:>16,}")
    if total[2]:
        problems.append(f"{total[2]} failure(s) caused by Fulcrum")

    lines.append("")
    if causes:
        lines.append("Failures by cause:")
        for (kind, cause, classification), (count, detail) in sorted(
            causes.items(), key=lambda item: -item[1][0]
        ):
            lines.append(
                f"  {count:>6}  {kind}: {cause} [{classification}]" + (f" e.g. {detail}" if detail else "")
            )
    else:
        lines.append("Failures by cause: none")

    actions = {}
    for event in events:
        counts = actions.setdefault(event["action"], [0, 0])
        counts[0 if event["ok"] else 1] += 1
    lines.append("")
    lines.append(
        "Chaos: "
        + ", ".join(
            f"{action} {good}" + (f" ({bad} failed)" if bad else "")
            for action, (good, bad) in actions.items()
        )
    )
    for event in events:
        if not event["ok"]:
            problems.append(f"chaos step {event['action']} {event['target']} failed: {event['detail']}")
    if not events:
        problems.append("no chaos step ran")

    lines.append("")
    lines += process_figures(samples, problems)

    if not meta["fulcrum_alive_at_end"]:
        problems.append(f"Fulcrum exited during the soak (status {meta['fulcrum_exit']})")
    elif not meta["stopped_cleanly"]:
        problems.append(f"Fulcrum did not exit 0 within 15 s of SIGTERM (status {meta['fulcrum_exit']})")
    if meta["stuck_clients"]:
        problems.append(f"clients did not finish within 60 s of the end: {meta['stuck_clients']}")

    lines.append("")
    if problems:
        lines.append("Verdict: FAIL")
        lines += [f"  - {problem}" for problem in problems]
    else:
        lines.append("Verdict: PASS (no failure caused by Fulcrum, no growth in memory or descriptors)")
    text = "\n".join(lines)
    with open(os.path.join(out, "report.txt"), "w") as file:
        file.write(text + "\n")
    return text, not problems


def process_figures(samples, problems):
    lines = []
    if not samples:
        problems.append("no sample of Fulcrum's RSS and descriptors")
        return lines

    def of(phase, column):
        values = [s[column] for s in samples if s[1] == phase]
        return values

    idle_rss, load_rss, settle_rss = of("idle-before", 2), of("load", 2), of("settle", 2)
    idle_fds, load_fds, settle_fds = of("idle-before", 3), of("load", 3), of("settle", 3)
    mib = lambda kb: f"{kb / 1024:.1f}"  # noqa: E731
    rss, fds = growth(samples, 2), growth(samples, 3)
    lines.append(f"Fulcrum process ({len(samples)} samples of /proc/PID/status and /proc/PID/fd):")
    lines.append(
        f"  {'':<14} {'idle before':>12} {'load early':>11} {'load late':>10} {'load max':>9} {'after load':>11}"
    )
    if idle_rss and load_rss:
        lines.append(
            f"  {'RSS (MiB)':<14} {mib(statistics.median(idle_rss)):>12} {mib(rss[0]) if rss else '-':>11} {mib(rss[1]) if rss else '-':>10}"
            f" {mib(max(load_rss)):>9} {mib(settle_rss[-1]) if settle_rss else '-':>11}"
        )
        lines.append(
            f"  {'descriptors':<14} {statistics.median(idle_fds):>12.0f} {fds[0] if fds else '-':>11} {fds[1] if fds else '-':>10}"
            f" {max(load_fds):>9} {settle_fds[-1] if settle_fds else '-':>11}"
        )
    lines.append("  (early: median of the 20 % of the load after its warm-up; late: median of its last 20 %;")
    lines.append("   after load: the last sample once the load stopped and idle connections closed)")
    if rss is None or fds is None:
        problems.append("too few samples under load to judge growth (run longer)")
    else:
        rss_limit = rss[0] + max(RSS_TOLERANCE_SHARE * rss[0], RSS_TOLERANCE_KB)
        if rss[1] > rss_limit:
            problems.append(
                f"RSS grew under load: {mib(rss[0])} → {mib(rss[1])} MiB (limit {mib(rss_limit)})"
            )
        fd_limit = fds[0] + max(FD_TOLERANCE_SHARE * fds[0], FD_TOLERANCE)
        if fds[1] > fd_limit:
            problems.append(f"descriptors grew under load: {fds[0]} → {fds[1]} (limit {fd_limit:.0f})")
    baseline = idle_baseline(samples)
    last = settle_fds[-3:]
    if len(last) < 3 or max(last) > baseline + FD_SLACK:
        problems.append(
            f"descriptors did not come back after the load: {last} against {baseline} before it (slack {FD_SLACK})"
        )
    return lines


if __name__ == "__main__":
    text, passed = report(sys.argv[1])
    print(text)
    sys.exit(0 if passed else 1)
