#!/usr/bin/env python3
"""Helper for bench/run.sh (Python 3 standard library only).

Subcommands:
  cpu PID...        print the CPU time, in clock ticks, of each PID's process tree
                    (utime+stime+cutime+cstime of the PID and all its descendants),
                    then the total, as "TOTAL T1 T2 ..."
  tree PID          print the PIDs of the process tree rooted at PID (root first)
  probe PORT        exit 0 if GET http://127.0.0.1:PORT/ answers 200
  record ...        parse one wrk (or h2load) output, append a JSON line to the results file
  table ...         print the table of one round
  meta ...          write the run's metadata (date, machine, versions, parameters) as JSON
  summary ...       print the summary (median over rounds) and its Markdown form
  idle-summary ...  the Markdown form of a --idle run (bench/idle.py's probes)
  close-requests PORT N  N requests, each on a new connection (bench/callgrind.sh --new-connections)
  reset-peak PID... reset each process's peak resident set (VmHWM), as /proc/PID/clear_refs allows
  peak PID...       print the sum of the processes' VmHWM, in KiB
  download-summary ... the Markdown form of a --download run
  overview DIR...   the --all run's table: each run's headline.json as ratios to HAProxy

run.sh drives all of this; see bench/README.md for what the columns mean.
"""

import argparse
import http.client
import json
import os
import re
import signal
import statistics
import sys

# fulcrum-base: a second Fulcrum binary (`bench/run.sh --baseline PATH`), the "before" of a change.
CANONICAL_ORDER = ["haproxy", "nginx", "fulcrum-base", "fulcrum"]
LABELS = {"haproxy": "HAProxy", "nginx": "nginx", "fulcrum-base": "Fulcrum (baseline)", "fulcrum": "Fulcrum"}


# --------------------------------------------------------------------------
# /proc helpers


def _read_stat(pid):
    """Return (ppid, utime+stime+cutime+cstime) for pid, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may contain spaces and
    # parentheses itself; everything after the last ')' is space-separated.
    rest = data[data.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state), so field N is rest[N - 3].
    ppid = int(rest[4 - 3])
    utime, stime = int(rest[14 - 3]), int(rest[15 - 3])
    cutime, cstime = int(rest[16 - 3]), int(rest[17 - 3])
    return ppid, utime + stime + cutime + cstime


def _all_processes():
    procs = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _read_stat(int(name))
            if st is not None:
                procs[int(name)] = st
    return procs


def _tree(root, procs):
    children = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        if pid in procs:
            out.append(pid)
            todo.extend(sorted(children.get(pid, [])))
    return out


def cmd_cpu(args):
    procs = _all_processes()
    per_root = []
    for root in args.pids:
        per_root.append(sum(procs[p][1] for p in _tree(root, procs)))
    print(sum(per_root), *per_root)


def cmd_tree(args):
    print(*_tree(args.pid, _all_processes()))


def cmd_probe(args):
    try:
        if args.tls:
            import ssl

            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection("127.0.0.1", args.port, timeout=args.timeout, context=context)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=args.timeout)
        conn.request("GET", "/")
        resp = conn.getresponse()
        resp.read()
        conn.close()
    except OSError:
        return 1
    return 0 if resp.status == 200 else 2


# --------------------------------------------------------------------------
# wrk output parsing

_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def _to_us(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"cannot parse latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(text):
    res = {}
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m|h)", text, re.M)
    if not m:
        raise ValueError("no 'N requests in' line in wrk output")
    res["requests"] = int(m.group(1))
    res["wrk_duration_s"] = float(m.group(2)) * _UNITS[m.group(3)] / 1e6
    m = re.search(r"^Requests/sec:\s*([0-9.]+)", text, re.M)
    res["rps"] = float(m.group(1)) if m else res["requests"] / res["wrk_duration_s"]
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s*{pct}%\s+(\S+)", text, re.M)
        if not m:
            raise ValueError(f"no {pct}% latency line in wrk output (was --latency passed?)")
        res[f"p{pct}_us"] = _to_us(m.group(1))
    errors = {}
    m = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    if m:
        for key, val in zip(("connect", "read", "write", "timeout"), m.groups()):
            if int(val):
                errors[f"socket_{key}"] = int(val)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m and int(m.group(1)):
        errors["non_2xx_3xx"] = int(m.group(1))
    res["errors"] = errors
    return res


def parse_h2load(text, log_path):
    """h2load's summary for the counts and errors; its per-request log (--log-file: start µs,
    status, µs to the end of the response) for the percentiles, which h2load does not print."""
    res = {}
    m = re.search(r"^finished in ([0-9.]+)(us|ms|s|m|h), ([0-9.]+) req/s", text, re.M)
    if not m:
        raise ValueError("no 'finished in' line in h2load output")
    res["wrk_duration_s"] = float(m.group(1)) * _UNITS[m.group(2)] / 1e6
    res["rps"] = float(m.group(3))
    m = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", text, re.M)
    if not m:
        raise ValueError("no 'requests:' line in h2load output")
    done, succeeded, failed, errored, timeout = (int(m.group(i)) for i in (3, 4, 5, 6, 7))
    res["requests"] = done
    errors = {k: v for k, v in (("failed", failed), ("errored", errored), ("timeout", timeout)) if v}
    m = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text, re.M)
    if m and int(m.group(3)) + int(m.group(4)):
        errors["non_2xx_3xx"] = int(m.group(3)) + int(m.group(4))
    res["errors"] = errors
    latencies = []
    with open(log_path) as f:
        for line in f:
            fields = line.split("\t")
            if len(fields) >= 3 and fields[1] != "-1":
                latencies.append(int(fields[2]))
    if not latencies:
        raise ValueError(f"h2load's request log {log_path} holds no completed request")
    latencies.sort()
    for pct in (50, 75, 90, 99):
        res[f"p{pct}_us"] = float(latencies[min(len(latencies) - 1, len(latencies) * pct // 100)])
    return res


def parse_redis_benchmark(text):
    """redis-benchmark's output for one test (--tcp runs GETs): the request count and time, its
    throughput summary, and p50/p99 from its latency summary (milliseconds)."""
    text = text.replace("\r", "\n")  # (it redraws its progress line with carriage returns)
    res = {}
    m = re.search(r"(\d+) requests completed in ([0-9.]+) seconds", text)
    if not m:
        raise ValueError("no 'requests completed in' line in redis-benchmark output")
    res["requests"] = int(m.group(1))
    res["wrk_duration_s"] = float(m.group(2))
    m = re.search(r"throughput summary: ([0-9.]+) requests per second", text)
    res["rps"] = float(m.group(1)) if m else res["requests"] / res["wrk_duration_s"]
    m = re.search(r"latency summary \(msec\):\s*\n\s*avg\s+min\s+p50\s+p95\s+p99\s+max\s*\n\s*([0-9. ]+)", text)
    if not m:
        raise ValueError("no latency summary in redis-benchmark output")
    _avg, _min, p50, _p95, p99, _max = (float(v) for v in m.group(1).split()[:6])
    res["p50_us"] = p50 * 1e3
    res["p99_us"] = p99 * 1e3
    errors = {}
    m = re.search(r"^Error.*$", text, re.M)
    if m:
        errors["redis_benchmark"] = 1
    res["errors"] = errors
    return res


def cmd_record(args):
    with open(args.wrk) as f:
        text = f.read()
    try:
        if args.redis_benchmark:
            rec = parse_redis_benchmark(text)
        else:
            rec = parse_h2load(text, args.h2load_log) if args.h2load_log else parse_wrk(text)
    except ValueError as e:
        tool = "redis-benchmark" if args.redis_benchmark else "h2load" if args.h2load_log else "wrk"
        print(f"error: {args.proxy} round {args.round}: {e}; {tool} said:\n{text}", file=sys.stderr)
        return 1
    cpu_s = (args.cpu_after - args.cpu_before) / args.clk_tck
    rec = {
        "round": args.round,
        "proxy": args.proxy,
        "port": args.port,
        **rec,
        "cpu_ticks_before": args.cpu_before,
        "cpu_ticks_after": args.cpu_after,
        "clk_tck": args.clk_tck,
        "cpu_s": cpu_s,
        "wall_s": args.wall_us / 1e6,
        "cpu_pct": 100.0 * cpu_s * 1e6 / args.wall_us if args.wall_us > 0 else None,
        "cpu_us_per_req": cpu_s * 1e6 / rec["requests"] if rec["requests"] else None,
        "backend_cpu_s": [t / args.clk_tck for t in args.backend_cpu_ticks],
        "wrk_output": os.path.basename(args.wrk),
    }
    with open(args.results, "a") as f:
        f.write(json.dumps(rec, sort_keys=True) + "\n")
    warnings = []
    if rec["errors"]:
        detail = ", ".join(f"{k}={v}" for k, v in rec["errors"].items())
        warnings.append(f"wrk reported errors: {detail}")
    if rec["requests"] == 0:
        warnings.append("wrk completed 0 requests")
    b = rec["backend_cpu_s"]
    if len(b) == 2 and max(b) >= 0.2 and min(b) < max(b) / 4:
        warnings.append(
            f"backends unevenly loaded (CPU {b[0]:.2f}s vs {b[1]:.2f}s): is it round robin?"
        )
    for w in warnings:
        print(f"WARNING: {args.proxy} round {args.round}: {w}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------
# tables


def scenario_label(mode):
    """The scenario a run's mode names, as the --all overview and the headings say it."""
    secure = mode.startswith("https")
    if mode == "tcp":
        return "TCP mode, Redis GETs (redis-benchmark)"
    if mode.endswith("-upstream-h2"):
        return scenario_label(mode[: -len("-upstream-h2")]) + ", to HTTP/2 servers"
    if "-idle" in mode and "-h2" in mode:
        return "idle HTTP/2 connections" + (" over TLS" if secure else ", prior knowledge (h2c)")
    if "-h2" in mode:
        return "HTTP/2 over TLS (h2)" if secure else "HTTP/2, prior knowledge (h2c)"
    if "-new-connections" in mode:
        return "a new connection per request" + (" (TLS handshake each)" if secure else "")
    if "-idle" in mode:
        return "idle keep-alive connections" + (" over TLS" if secure else "")
    if "-download" in mode:
        return "one large download" + (" over TLS" if secure else "")
    return "HTTPS keep-alive" if secure else "HTTP/1.1 keep-alive"


def _write_headline(markdown_out, meta, metric, values):
    """headline.json beside the summary: the run's one figure per proxy (lower is better), for
    the --all overview."""
    path = os.path.join(os.path.dirname(markdown_out), "headline.json")
    with open(path, "w") as f:
        json.dump({"scenario": scenario_label(meta["params"].get("mode", "http")), "metric": metric,
                   "values": values}, f, indent=2, sort_keys=True)
        f.write("\n")


def cmd_overview(args):
    """The --all run's first table: each scenario's headline figure, as ratios to HAProxy."""
    rows = []
    for run in args.runs:
        with open(os.path.join(run, "headline.json")) as f:
            rows.append(json.load(f))
    proxies = [p for p in CANONICAL_ORDER if any(p in r["values"] for r in rows)]
    md = [
        "### Overview: every scenario, as ratios to HAProxy (value in brackets)",
        "",
        "| scenario | figure | " + " | ".join(LABELS[p] for p in proxies) + " |",
        "|:---|:---|" + "---:|" * len(proxies),
    ]
    for r in rows:
        ref = r["values"].get("haproxy")
        cells = []
        for p in proxies:
            v = r["values"].get(p)
            if v is None:
                cells.append("—")
            elif ref:
                cells.append(f"{v / ref:.2f}× ({v:,.2f})")
            else:
                cells.append(f"{v:,.2f}")
        md.append(f"| {r['scenario']} | {r['metric']} | " + " | ".join(cells) + " |")
    markdown = "\n".join(md) + "\n"
    with open(args.markdown_out, "w") as f:
        f.write(markdown)
    print(markdown, end="")


def _load_run(args):
    """A run's records (grouped by proxy, in the order they came) and its metadata."""
    recs = _load(args.results)
    with open(args.meta) as f:
        meta = json.load(f)
    by_proxy = {}
    for r in recs:
        by_proxy.setdefault(r["proxy"], []).append(r)
    return recs, by_proxy, meta


def _block_heading(meta, what):
    """The first lines of a probe's Markdown block (--idle, --download): title and versions."""
    secure = " over TLS" if "https" in meta["params"]["mode"] else ""
    return [
        f"### {meta['date_utc']} — {what}{secure}, {meta['machine']['nproc']} × {meta['machine']['cpu_model']}",
        "",
        "- Versions: " + ", ".join(f"{k} `{v}`" for k, v in meta["versions"].items() if v),
    ]


def _emit_markdown(markdown, path):
    with open(path, "w") as f:
        f.write(markdown)
    print("----- 8< ----- Markdown for bench/RESULTS.md -----")
    print(markdown, end="")
    print("----- >8 ------------------------------------------")


def _load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def _fmt(val, spec, suffix=""):
    return "n/a" if val is None else format(val, spec) + suffix


def _rows(records_by_proxy, with_cpu_pct):
    """records_by_proxy: {proxy: metrics dict}. Returns header + formatted rows."""
    base = records_by_proxy.get("haproxy")
    header = ["proxy", "req/s", "p50 (ms)", "p99 (ms)", "CPU µs/req"]
    if with_cpu_pct:
        header.append("proxy CPU %")
    header += ["CPU ratio vs HAProxy", "p99 ratio vs HAProxy"]
    rows = []
    for proxy in CANONICAL_ORDER:
        r = records_by_proxy.get(proxy)
        if r is None:
            continue
        row = [
            LABELS[proxy],
            _fmt(r["rps"], ",.0f"),
            _fmt(r["p50_us"] / 1e3, ".3f"),
            _fmt(r["p99_us"] / 1e3, ".3f"),
            _fmt(r["cpu_us_per_req"], ".2f"),
        ]
        if with_cpu_pct:
            row.append(_fmt(r.get("cpu_pct"), ".0f"))
        row += [
            _fmt(_ratio(r["cpu_us_per_req"], base and base["cpu_us_per_req"]), ".2f", "×"),
            _fmt(_ratio(r["p99_us"], base and base["p99_us"]), ".2f", "×"),
        ]
        if r.get("errors"):
            row[0] += " (!)"
        rows.append(row)
    return header, rows


def _print_text_table(header, rows, out=sys.stdout):
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths)))
    print(line, file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))), file=out)


def _markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|")
    for r in rows:
        lines.append("| " + " | ".join(r) + " |")
    return "\n".join(lines)


def cmd_table(args):
    recs = [r for r in _load(args.results) if r["round"] == args.round]
    header, rows = _rows({r["proxy"]: r for r in recs}, with_cpu_pct=True)
    print(f"Round {args.round}:")
    _print_text_table(header, rows)
    if any(r["errors"] for r in recs):
        print("(!) wrk reported errors for this proxy; see the WARNING lines and bench/out.")


def _median_metrics(recs):
    out = {}
    for key in ("rps", "p50_us", "p99_us", "cpu_us_per_req", "cpu_pct"):
        vals = [r[key] for r in recs if r.get(key) is not None]
        out[key] = statistics.median(vals) if vals else None
    errs = {}
    for r in recs:
        for k, v in r["errors"].items():
            errs[k] = errs.get(k, 0) + v
    out["errors"] = errs
    out["rounds"] = len(recs)
    return out


def cmd_summary(args):
    _, by_proxy, meta = _load_run(args)
    med = {p: _median_metrics(rs) for p, rs in by_proxy.items()}
    header, rows = _rows(med, with_cpu_pct=False)
    n_rounds = max((m["rounds"] for m in med.values()), default=0)

    print(f"Summary (median over {n_rounds} round(s); ratios are ratios of the medians):")
    _print_text_table(header, rows)
    if any(m["errors"] for m in med.values()):
        print("(!) wrk reported errors for this proxy in at least one round; see bench/out.")

    p = meta["params"]
    md = []
    md.append(
        f"### {meta['date_utc']} — {scenario_label(meta['params'].get('mode', 'http'))}, "
        f"{meta['machine']['cpu_model']}, {meta['machine']['nproc']} CPUs"
    )
    md.append("")
    md.append(
        f"- Machine: {meta['machine']['nproc']} × {meta['machine']['cpu_model']}, "
        f"kernel {meta['machine']['kernel']}, {meta['machine']['os']}"
    )
    md.append(
        "- Versions: "
        + ", ".join(f"{k} `{v}`" for k, v in meta["versions"].items() if v)
    )
    md.append(
        f"- Parameters: {p['rounds']} round(s), "
        + (
            f"h2load `-t {p['threads']} -c {p['connections']} -m {p['streams']} -D {p['duration']}`"
            if p.get("streams")
            else f"redis-benchmark `-c {p['connections']}"
            + (f" --threads {p['threads']}" if p["threads"] > 1 else "")
            + " -t get` (see the command)"
            if p.get("mode") == "tcp"
            else f"wrk `-t {p['threads']} -c {p['connections']} -d {p['duration']} --latency`"
        )
        + f", warm-up {p['warmup']}, "
        f"pinning {'on (proxy CPU ' + str(p['proxy_cpu']) + ', wrk+backends CPU ' + str(p['load_cpu']) + ')' if p['pin'] else 'off'}, "
        f"proxies measured: {', '.join(LABELS[x] for x in p['only'])}"
        + (f", mode: {p['mode']}" if p.get("mode", "http") != "http" else "")
    )
    md.append(f"- Load average before the run: {meta['machine']['loadavg']}")
    md.append(f"- Command: `{meta['command']}`")
    md.append("")
    md.append(f"Median over {n_rounds} round(s):")
    md.append("")
    md.append(_markdown_table(header, rows))
    if "fulcrum" not in p["only"]:
        md.append("")
        md.append("Fulcrum: **pending** (not measured in this run).")
    errs = {pr: m["errors"] for pr, m in med.items() if m["errors"]}
    if errs:
        md.append("")
        md.append(
            "wrk errors: "
            + "; ".join(
                f"{LABELS[pr]}: " + ", ".join(f"{k}={v}" for k, v in e.items())
                for pr, e in errs.items()
            )
        )
    md.append("")
    md.append("Per round (req/s · p99 ms · CPU µs/req · proxy CPU %):")
    md.append("")
    for proxy in CANONICAL_ORDER:
        if proxy not in by_proxy:
            continue
        cells = [
            f"{r['rps']:,.0f} · {r['p99_us'] / 1e3:.3f} · {_fmt(r['cpu_us_per_req'], '.2f')}"
            f" · {_fmt(r.get('cpu_pct'), '.0f')}%"
            for r in sorted(by_proxy[proxy], key=lambda r: r["round"])
        ]
        md.append(f"- {LABELS[proxy]}: " + " | ".join(cells))
    markdown = "\n".join(md) + "\n"

    with open(args.markdown_out, "w") as f:
        f.write(markdown)
    _write_headline(args.markdown_out, meta, "CPU µs per request",
                    {p: m["cpu_us_per_req"] for p, m in med.items() if m["cpu_us_per_req"] is not None})
    with open(args.json_out, "w") as f:
        json.dump({"meta": meta, "median": med}, f, indent=2, sort_keys=True)
        f.write("\n")

    print()
    print("----- 8< ----- Markdown for bench/RESULTS.md -----")
    print(markdown, end="")
    print("----- >8 ------------------------------------------")


def cmd_idle_summary(args):
    """The Markdown block of an --idle run: resident memory per idle connection, per proxy."""
    _, by_proxy, meta = _load_run(args)
    by_proxy = {proxy: [r["probe"] for r in rs] for proxy, rs in by_proxy.items()}
    med = {p: statistics.median(x["per_connection_kib"] for x in probes) for p, probes in by_proxy.items()}
    reference = med.get("haproxy")
    n = max(x["connections"] for probes in by_proxy.values() for x in probes)
    mode = meta["params"]["mode"]
    kind = "HTTP/2" if "-h2" in mode else "keep-alive"
    md = _block_heading(meta, f"idle {kind} connections") + [
        f"- {n:,} idle {kind} client connections, each after one request"
        f"{' over TLS' if mode.startswith('https') else ''}; RSS of the proxy's process tree"
        f" (bench/idle.py); {meta['params']['rounds']} round(s)",
        f"- Load average before the run: {meta['machine']['loadavg']}",
        f"- Command: `{meta['command']}`",
        "",
        "| proxy | KiB per idle connection (median) | vs HAProxy | RSS before · idle · closed (MiB), per round |",
        "|:---|---:|---:|:---|",
    ]
    for proxy in CANONICAL_ORDER:
        if proxy not in by_proxy:
            continue
        ratio = f"{med[proxy] / reference:.2f}×" if reference else "—"
        rounds = " \\| ".join(
            f"{x['rss_before_kib'] / 1024:.1f} · {x['rss_idle_kib'] / 1024:.1f} · {x['rss_closed_kib'] / 1024:.1f}"
            for x in by_proxy[proxy]
        )
        md.append(f"| {LABELS[proxy]} | {med[proxy]:.2f} | {ratio} | {rounds} |")
    _emit_markdown("\n".join(md) + "\n", args.markdown_out)
    _write_headline(args.markdown_out, meta, "KiB of RSS per idle connection", med)


def cmd_close_requests(args):
    """N requests to 127.0.0.1:PORT one after the other, each on its own connection with
    Connection: close (bench/callgrind.sh --new-connections). Prints a line shaped like
    h2load's "requests:" line, which callgrind.sh checks."""
    import socket

    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    succeeded = 0
    for _ in range(args.count):
        with socket.create_connection(("127.0.0.1", args.port), timeout=30) as sock:
            sock.sendall(request)
            response = b""
            while chunk := sock.recv(65536):
                response += chunk
        succeeded += response.startswith(b"HTTP/1.1 200 ")
    print(f"requests: {args.count} total, {succeeded} succeeded, {args.count - succeeded} failed")
    return 0 if succeeded == args.count else 1


def cmd_reset_peak(args):
    for pid in args.pids:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")  # 5: reset the peak resident set size (Linux 4.0+)


def cmd_peak(args):
    total = 0
    for pid in args.pids:
        with open(f"/proc/{pid}/status") as f:
            total += next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    print(total)


def cmd_download_summary(args):
    """The Markdown block of a --download run: CPU time, throughput and peak memory per proxy."""
    recs, by_proxy, meta = _load_run(args)
    med = {
        proxy: {
            "cpu_ms": statistics.median(1e3 * r["cpu_ticks"] / r["clk_tck"] for r in rs),
            "mib_per_s": statistics.median(r["bytes"] / 2**20 / (r["wall_us"] / 1e6) for r in rs),
            "peak_mib": statistics.median(r["peak_rss_kib"] / 1024 for r in rs),
        }
        for proxy, rs in by_proxy.items()
    }
    reference = med.get("haproxy")
    size = max(r["bytes"] for r in recs)
    md = _block_heading(meta, f"one {size / 2**30:.2f} GiB download") + [
        f"- curl through each proxy{' over TLS' if 'https' in meta['params']['mode'] else ''} from the nginx"
        f" backends' sendfile; proxy CPU from /proc; peak RSS is the process tree's VmHWM, reset before each"
        f" download; {meta['params']['rounds']} round(s)",
        f"- Load average before the run: {meta['machine']['loadavg']}",
        f"- Command: `{meta['command']}`",
        "",
        "| proxy | CPU ms (median) | vs HAProxy | MiB/s | peak RSS MiB | CPU ms per round |",
        "|:---|---:|---:|---:|---:|:---|",
    ]
    for proxy in CANONICAL_ORDER:
        if proxy not in med:
            continue
        m = med[proxy]
        ratio = f"{m['cpu_ms'] / reference['cpu_ms']:.2f}×" if reference and reference["cpu_ms"] else "—"
        rounds = " \\| ".join(f"{1e3 * r['cpu_ticks'] / r['clk_tck']:.0f}" for r in by_proxy[proxy])
        md.append(
            f"| {LABELS[proxy]} | {m['cpu_ms']:.0f} | {ratio} | {m['mib_per_s']:,.0f} | {m['peak_mib']:.1f} | {rounds} |"
        )
    _emit_markdown("\n".join(md) + "\n", args.markdown_out)
    _write_headline(args.markdown_out, meta, "CPU ms for the download", {p: m["cpu_ms"] for p, m in med.items()})


# --------------------------------------------------------------------------
# metadata


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def _os_name():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "unknown OS"


def cmd_meta(args):
    import datetime

    with open("/proc/loadavg") as f:
        loadavg = " ".join(f.read().split()[:3])
    meta = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {
            "nproc": len(os.sched_getaffinity(0)),
            "cpu_model": _cpu_model(),
            "kernel": os.uname().release,
            "os": _os_name(),
            "loadavg": loadavg,
        },
        "versions": dict(v.split("=", 1) for v in args.version),
        "params": {
            "rounds": args.rounds,
            "duration": args.duration,
            "warmup": args.warmup,
            "connections": args.connections,
            "threads": args.threads,
            "streams": args.streams,
            "only": args.only.split(","),
            "pin": args.pin,
            "proxy_cpu": args.proxy_cpu,
            "load_cpu": args.load_cpu,
            "mode": args.mode,
        },
        "command": args.command,
    }
    with open(args.out, "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")


# --------------------------------------------------------------------------


def main():
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: die quietly, run.sh cleans up
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("cpu")
    p.add_argument("pids", type=int, nargs="+")
    p.set_defaults(func=cmd_cpu)

    p = sub.add_parser("tree")
    p.add_argument("pid", type=int)
    p.set_defaults(func=cmd_tree)

    p = sub.add_parser("probe")
    p.add_argument("port", type=int)
    p.add_argument("--timeout", type=float, default=2.0)
    p.add_argument("--tls", action="store_true", help="probe over HTTPS (certificate not verified)")
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("record")
    p.add_argument("--results", required=True)
    p.add_argument("--round", type=int, required=True)
    p.add_argument("--proxy", required=True, choices=CANONICAL_ORDER)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--wrk", required=True, help="file holding wrk's (or with --h2load-log, h2load's) output")
    p.add_argument("--h2load-log", help="h2load's --log-file: the output is h2load's")
    p.add_argument("--redis-benchmark", action="store_true", help="the output is redis-benchmark's (--tcp)")
    p.add_argument("--cpu-before", type=int, required=True, help="clock ticks")
    p.add_argument("--cpu-after", type=int, required=True, help="clock ticks")
    p.add_argument("--clk-tck", type=int, required=True)
    p.add_argument("--wall-us", type=int, required=True, help="microseconds between the two CPU reads")
    p.add_argument("--backend-cpu-ticks", type=int, nargs="*", default=[])
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("table")
    p.add_argument("--results", required=True)
    p.add_argument("--round", type=int, required=True)
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("meta")
    p.add_argument("--mode", default="http", help="http | https, then -new-connections and/or -idle")
    p.add_argument("--out", required=True)
    p.add_argument("--rounds", type=int, required=True)
    p.add_argument("--duration", required=True)
    p.add_argument("--warmup", required=True)
    p.add_argument("--connections", type=int, required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--streams", type=int, default=0, help="h2load -m (0: the load is wrk)")
    p.add_argument("--only", required=True)
    p.add_argument("--pin", type=int, choices=(0, 1), default=0)
    p.add_argument("--proxy-cpu", default="0")
    p.add_argument("--load-cpu", default="1")
    p.add_argument("--version", action="append", default=[], help="NAME=VERSION")
    p.add_argument("--command", default="")
    p.set_defaults(func=cmd_meta)

    p = sub.add_parser("summary")
    p.add_argument("--results", required=True)
    p.add_argument("--meta", required=True)
    p.add_argument("--markdown-out", required=True)
    p.add_argument("--json-out", required=True)
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("close-requests")
    p.add_argument("port", type=int)
    p.add_argument("count", type=int)
    p.set_defaults(func=cmd_close_requests)

    p = sub.add_parser("reset-peak")
    p.add_argument("pids", type=int, nargs="+")
    p.set_defaults(func=cmd_reset_peak)

    p = sub.add_parser("peak")
    p.add_argument("pids", type=int, nargs="+")
    p.set_defaults(func=cmd_peak)

    p = sub.add_parser("overview")
    p.add_argument("--markdown-out", required=True)
    p.add_argument("runs", nargs="+", help="run directories, each with a headline.json")
    p.set_defaults(func=cmd_overview)

    p = sub.add_parser("download-summary")
    p.add_argument("--results", required=True)
    p.add_argument("--meta", required=True)
    p.add_argument("--markdown-out", required=True)
    p.set_defaults(func=cmd_download_summary)

    p = sub.add_parser("idle-summary")
    p.add_argument("--results", required=True)
    p.add_argument("--meta", required=True)
    p.add_argument("--markdown-out", required=True)
    p.set_defaults(func=cmd_idle_summary)

    args = ap.parse_args()
    sys.exit(args.func(args) or 0)


if __name__ == "__main__":
    main()
