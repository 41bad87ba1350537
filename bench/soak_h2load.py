"""h2load for bench/soak.sh: HTTP/1.1 and HTTP/2 load at a fixed rate, every request judged.

h2load runs in back-to-back runs of at most `chunk` seconds, each with a per-request log
(start, status, duration): a request is a success when it got a 200, and every other one is
recorded with its own times, so that soak_report.py can tell whether the chaos explains it.
"""

import os
import re
import subprocess
import time

SUMMARY = re.compile(
    r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout"
)


def h2load_loop(stop, rec, started, work_dir, kind, options, url, deadline, chunk=20):
    """Runs `h2load OPTIONS -D S URL` until `deadline`; `started(process)` lets the caller
    end a run early."""
    turn = 0
    while not stop.is_set() and deadline - time.time() >= 2:
        seconds = int(min(chunk, deadline - time.time()))
        logfile = os.path.join(work_dir, f"h2load-{kind}-{turn}.tsv")
        turn += 1
        began = time.time()
        command = ["h2load", *options, "-D", str(seconds), "--log-file", logfile, url]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        started(process)
        try:
            output, _ = process.communicate(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        record(stop, rec, kind, output.decode(errors="replace"), logfile, began, time.time())
        if os.path.exists(logfile):
            os.remove(logfile)


def record(stop, rec, kind, output, logfile, began, ended):
    ok = failed = 0
    if os.path.exists(logfile):
        with open(logfile) as file:
            for line in file:
                fields = line.split("\t")
                if len(fields) < 3:
                    continue
                start, status, micros = int(fields[0]) / 1e6, int(fields[1]), int(fields[2])
                if status == 200:
                    ok += 1
                    continue
                failed += 1
                cause = "stream failed" if status < 0 else f"status {status}"
                rec.add(kind, start, False, cause, end=start + micros / 1e6)
    rec.add_many(kind, ok)
    totals = SUMMARY.search(output)
    if stop.is_set():
        return  # a run cut short: its missing summary or requests are not failures
    if not totals:
        rec.add(kind, began, False, "h2load gave no summary", output[-300:], end=ended)
        return
    _done, _succeeded, bad, errored, timeouts = map(int, totals.groups())
    unlogged = bad + errored + timeouts - failed
    if unlogged > 0:
        # Failures h2load counted without a log row (a connection that failed): their time is
        # only known to be within the run.
        rec.add(kind, began, False, f"h2load: {unlogged} failed without a log row", output[-300:], end=ended)
