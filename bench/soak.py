#!/usr/bin/env python3
"""bench/soak.py - the soak itself; bench/soak.sh prepares it and is the way to run it.

Starts five workers and a WebSocket echo backend, then Fulcrum in front of them (a plain
listener with h2c, a TLS one, the admin API), and for the given time drives it with mixed
traffic (h2load for HTTP/1.1 and HTTP/2, Python clients for the rest, curl for HTTP/2 bodies)
while a chaos loop kills and restarts backends, reloads (SIGHUP, file rewrite) and changes
servers over the admin API. Fulcrum's RSS and descriptors are sampled throughout. When the
load stops, it waits for the descriptors to come back, stops Fulcrum, and soak_report.py
gives the verdict. Everything it writes goes to --out.
"""

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import soak_clients as clients  # noqa: E402
from soak_h2load import h2load_loop  # noqa: E402
from soak_malformed import malformed_requests  # noqa: E402
import soak_report  # noqa: E402

WORKERS = {"w1": 1, "w2": 2, "w3": 3, "w4": 4, "w5": 5}  # name: port offset
WS_OFFSET, PLAIN_OFFSET, TLS_OFFSET, ADMIN_OFFSET = 6, 10, 11, 19
TOKEN = "soak-token"
HEADER_READ, CLIENT_IDLE, BACKEND_IDLE = 5, 10, 5  # seconds, as in the configuration below
ALGORITHMS = [
    "least_connections",
    "power_of_two",
    "peak_ewma",
    "random",
    "weighted_round_robin",
    "adaptive",
    "round_robin",
]
UPLOAD_BYTES, DOWNLOAD_BYTES = 4 << 20, 8 << 20


def log(message):
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Soak:
    def __init__(self, args):
        self.args = args
        self.base = args.port_base
        self.run_dir = tempfile.mkdtemp(prefix="fulcrum-soak.")
        self.out = args.out
        os.makedirs(os.path.join(self.out, "logs"), exist_ok=True)
        self.processes = {}  # name: Popen, backends and Fulcrum
        self.helpers = []  # h2load and other short-lived children
        self.helpers_lock = threading.Lock()
        self.stop = threading.Event()
        self.rec = clients.Recorder()
        self.events = []  # the chaos, in order
        self.samples = []  # (time, phase, rss kB, fds, threads)
        self.phase = "startup"
        self.in_file = {"w1", "w2", "w3"}  # servers of backend app in the file
        self.added = set()  # servers of app added over the API
        self.drained = set()
        self.algorithm_turn = 0
        self.with_w4 = False

    def port(self, offset):
        return self.base + offset

    # -----------------------------------------------------------------------------------------
    # processes

    def spawn(self, name, command, env=None):
        logfile = open(os.path.join(self.out, "logs", f"{name}.log"), "ab")
        process = subprocess.Popen(
            command,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.run_dir,
            env=env,
        )
        logfile.close()
        self.processes[name] = process
        return process

    def start_backend(self, name):
        if name == "ws":
            here = os.path.dirname(os.path.abspath(__file__))
            self.spawn("ws", [sys.executable, os.path.join(here, "soak_ws.py"), str(self.port(WS_OFFSET))])
            return wait_for_port(self.port(WS_OFFSET))
        self.spawn(
            name,
            [
                self.args.fulcrum,
                "worker",
                "--port",
                str(self.port(WORKERS[name])),
                "--name",
                name,
                "--delay-ms",
                "5",
            ],
        )
        return wait_for_port(self.port(WORKERS[name]))

    def started(self, helper):
        """A short-lived child (h2load): killed with everything else if the run ends early."""
        with self.helpers_lock:
            self.helpers.append(helper)

    def kill(self, name):
        process = self.processes.pop(name, None)
        if process and process.poll() is None:
            process.kill()
            process.wait()

    def stop_all(self):
        self.stop.set()
        with self.helpers_lock:
            for helper in self.helpers:
                if helper.poll() is None:
                    helper.kill()
        for name in list(self.processes):
            process = self.processes[name]
            if process.poll() is None:
                process.terminate()
        deadline = time.time() + 5
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    # -----------------------------------------------------------------------------------------
    # configuration

    def config(self):
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "soak.yaml.tmpl")) as file:
            text = file.read()
        values = {
            "ADMIN_PORT": self.port(ADMIN_OFFSET),
            "PLAIN_PORT": self.port(PLAIN_OFFSET),
            "TLS_PORT": self.port(TLS_OFFSET),
            "WS_PORT": self.port(WS_OFFSET),
            "CLIENT_IDLE": CLIENT_IDLE,
            "HEADER_READ": HEADER_READ,
            "BACKEND_IDLE": BACKEND_IDLE,
            "ALGORITHM": ALGORITHMS[self.algorithm_turn % len(ALGORITHMS)],
            "SERVERS": "\n".join(
                f'      - {{ name: {s}, address: "127.0.0.1:{self.port(WORKERS[s])}" }}'
                for s in sorted(self.in_file)
            ),
        }
        for key, value in values.items():
            text = text.replace(f"@{key}@", str(value))
        unfilled = re.search(r"@[A-Z_]+@", text)
        assert not unfilled, f"soak.yaml.tmpl: unfilled placeholder {unfilled.group(0)}"
        return text

    def write_config(self):
        path = os.path.join(self.run_dir, "fulcrum.yaml")
        with open(path + ".tmp", "w") as file:
            file.write(self.config())
        os.replace(path + ".tmp", path)  # as an editor or a deployment tool would: never half a file

    # -----------------------------------------------------------------------------------------
    # admin API and metrics

    def admin(self, method, path, body=None):
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port(ADMIN_OFFSET)}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def reloads(self):
        _, text = self.admin("GET", "/metrics")
        found = dict(re.findall(rb'fulcrum_config_reloads_total\{result="(\w+)"\} (\d+)', text))
        return int(found.get(b"success", 0)), int(found.get(b"failure", 0))

    def wait_reload(self, before, timeout=5.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            success, failure = self.reloads()
            if failure > before[1]:
                return False, "reload failed"
            if success > before[0]:
                return True, ""
            time.sleep(0.1)
        return False, f"no reload within {timeout:.0f} s"

    # -----------------------------------------------------------------------------------------
    # chaos

    def eligible(self):
        alive = {name for name, process in self.processes.items() if process.poll() is None}
        app = sorted(((self.in_file | self.added) - self.drained) & alive)
        return {"app": app, "ws": ["ws1"] if "ws" in alive else []}

    def event(self, action, target, ok, detail="", started=None):
        now = time.time()
        self.events.append(
            {
                "t": started or now,
                "end": now,
                "action": action,
                "target": target,
                "ok": ok,
                "detail": detail,
                "eligible": self.eligible(),
            }
        )
        if not ok:
            log(f"chaos: {action} {target} failed: {detail}")

    def chaos_step(self, action, target=""):
        started = time.time()
        if action == "kill":
            self.kill(target)
            self.event("kill", target, True, started=started)
        elif action == "restart":
            ok = self.start_backend(target)
            self.event("restart", target, ok, "" if ok else "did not listen within 5 s", started)
        elif action == "sighup":
            before = self.reloads()
            self.processes["fulcrum"].send_signal(signal.SIGHUP)
            ok, detail = self.wait_reload(before)
            self.event("sighup", "", ok, detail, started)
        elif action == "rewrite":
            self.with_w4 = not self.with_w4
            (self.in_file.add if self.with_w4 else self.in_file.discard)("w4")
            self.algorithm_turn += 1
            before = self.reloads()
            self.write_config()
            ok, detail = self.wait_reload(before)
            summary = f"servers {sorted(self.in_file)}, {ALGORITHMS[self.algorithm_turn % len(ALGORITHMS)]}"
            self.event("rewrite", "", ok, detail or summary, started)
        elif action == "api-add":
            status, body = self.admin(
                "POST",
                "/api/backends/app/servers",
                {"name": target, "address": f"127.0.0.1:{self.port(WORKERS[target])}"},
            )
            if status == 201:
                self.added.add(target)
            self.event(
                "api-add",
                target,
                status == 201,
                f"status {status} {body[:200]!r}" if status != 201 else "",
                started,
            )
        elif action == "api-delete":
            status, body = self.admin("DELETE", f"/api/backends/app/servers/{target}")
            self.added.discard(target)
            self.event(
                "api-delete",
                target,
                200 <= status < 300,
                f"status {status} {body[:200]!r}" if status >= 300 else "",
                started,
            )
        elif action in ("api-drain", "api-ready"):
            state = action[4:]
            status, body = self.admin("PATCH", f"/api/backends/app/servers/{target}", {"state": state})
            (self.drained.add if state == "drain" else self.drained.discard)(target)
            self.event(
                action,
                target,
                status == 200,
                f"status {status} {body[:200]!r}" if status != 200 else "",
                started,
            )

    CYCLE = [
        ("kill", "w1"), ("restart", "w1"),
        ("sighup", ""),
        ("rewrite", ""),  # w4 in, next algorithm
        ("api-add", "w5"), ("api-drain", "w2"),
        ("kill", "w3"), ("restart", "w3"),
        ("api-ready", "w2"), ("api-delete", "w5"),
        ("kill", "ws"), ("restart", "ws"),
        ("rewrite", ""),  # w4 out, next algorithm
        ("kill", "w2"), ("restart", "w2"),
    ]  # fmt: skip

    def chaos_loop(self, first_at, interval):
        if self.stop.wait(max(0.0, first_at - time.time())):
            return
        step = 0
        while not self.stop.is_set():
            action, target = self.CYCLE[step % len(self.CYCLE)]
            try:
                self.chaos_step(action, target)
            except Exception as error:  # noqa: BLE001 - recorded; the soak goes on
                self.event(action, target, False, f"{type(error).__name__}: {error}")
            step += 1
            if self.stop.wait(interval):
                break
        # Leave every backend up and every server ready, so the end state is the start state.
        for name in ["w1", "w2", "w3", "ws"]:
            if name not in self.processes or self.processes[name].poll() is not None:
                self.chaos_step("restart", name)
        for name in list(self.drained):
            self.chaos_step("api-ready", name)

    # -----------------------------------------------------------------------------------------
    # sampling

    def sample_loop(self, pid, interval):
        while True:
            try:
                with open(f"/proc/{pid}/status") as file:
                    status = file.read()
                rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
                threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
                fds = len(os.listdir(f"/proc/{pid}/fd"))
            except (OSError, AttributeError):
                return  # gone; the main loop notices
            self.samples.append((time.time(), self.phase, rss, fds, threads))
            if self.sampling_done.wait(interval):
                return

    # -----------------------------------------------------------------------------------------
    # the run

    def expected_answers(self):
        rng = random.Random(15)
        body = rng.randbytes(UPLOAD_BYTES)
        upload_file = os.path.join(self.run_dir, "upload.bin")
        with open(upload_file, "wb") as file:
            file.write(body)
        direct = clients.Target(self.port(WORKERS["w1"]), 0, None, host="127.0.0.1")
        status, answer = clients.request(direct, False, "POST", "/sink", body)
        assert status == 200, f"the worker's /sink answered {status}"
        digest = hashlib.sha256()
        status, size = clients.request(
            direct, False, "GET", f"/bytes?n={DOWNLOAD_BYTES}&seed=7", sink=digest.update
        )
        assert (
            status == 200 and size == DOWNLOAD_BYTES
        ), f"the worker's /bytes answered {status}, {size} bytes"
        return clients.Expected(body, json.loads(answer), DOWNLOAD_BYTES, digest.hexdigest()), upload_file

    def make_certificate(self):
        certs = os.path.join(self.run_dir, "certs")
        os.makedirs(certs)
        key, cert = os.path.join(self.run_dir, "key.pem"), os.path.join(self.run_dir, "cert.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-keyout", key, "-out", cert],
            check=True, capture_output=True,
        )  # fmt: skip
        with open(os.path.join(certs, "soak.pem"), "w") as file:
            file.write(open(cert).read() + open(key).read())
        return cert

    def run(self):
        args = self.args
        for offset in [*WORKERS.values(), WS_OFFSET, PLAIN_OFFSET, TLS_OFFSET, ADMIN_OFFSET]:
            if port_open(self.port(offset)):
                raise CannotRun(
                    f"127.0.0.1:{self.port(offset)} is already in use (a leftover soak?); see --port-base"
                )
        ca_file = self.make_certificate()
        for name in [*WORKERS, "ws"]:
            if not self.start_backend(name):
                raise CannotRun(f"backend {name} did not start; see {self.out}/logs/{name}.log")
        expected, upload_file = self.expected_answers()
        self.write_config()
        shutil.copy(os.path.join(self.run_dir, "fulcrum.yaml"), os.path.join(self.out, "fulcrum-start.yaml"))
        env = dict(os.environ, SOAK_ADMIN_TOKEN=TOKEN)
        fulcrum = self.spawn("fulcrum", [args.fulcrum, "run", "-c", "fulcrum.yaml"], env=env)
        if not (wait_for_port(self.port(PLAIN_OFFSET), 30) and wait_for_port(self.port(ADMIN_OFFSET), 5)):
            raise CannotRun(f"Fulcrum did not start; see {self.out}/logs/fulcrum.log")
        target = clients.Target(self.port(PLAIN_OFFSET), self.port(TLS_OFFSET), ca_file)
        status, _ = clients.request(target, False, "GET", "/work")
        if status != 200:
            raise CannotRun(f"GET /work through Fulcrum answered {status}")

        self.sampling_done = threading.Event()
        sampler = threading.Thread(
            target=self.sample_loop, args=(fulcrum.pid, args.sample_interval), daemon=True
        )
        sampler.start()
        self.phase = "idle-before"
        log(
            f"Fulcrum pid {fulcrum.pid} on 127.0.0.1:{self.port(PLAIN_OFFSET)} (plain, h2c) and :{self.port(TLS_OFFSET)} (TLS); idle baseline for 5 s"
        )
        time.sleep(5)

        self.phase = "load"
        began = time.time()
        deadline = began + args.seconds
        log(f"load and chaos for {args.seconds} s (a chaos step every {args.chaos_interval} s)")
        plain, tls = (
            f"http://127.0.0.1:{self.port(PLAIN_OFFSET)}/work",
            f"https://127.0.0.1:{self.port(TLS_OFFSET)}/work",
        )

        def h2load(*arguments):
            h2load_loop(self.stop, self.rec, self.started, self.run_dir, *arguments)

        loops = [
            (h2load, ("h1", ["--h1", "-c", "4", "--rps", "25"], plain, deadline)),
            (h2load, ("h2c", ["-c", "2", "-m", "8", "--rps", "50"], plain, deadline)),
            (h2load, ("h1-tls", ["--h1", "-c", "2", "--rps", "25"], tls, deadline)),
            (h2load, ("h2-tls", ["-c", "2", "-m", "8", "--rps", "40"], tls, deadline)),
            (clients.tls_new_connections, (self.stop, self.rec, target)),
            (clients.websockets, (self.stop, self.rec, target, False)),
            (clients.websockets, (self.stop, self.rec, target, True)),
            (clients.large_bodies_h1, (self.stop, self.rec, target, expected)),
            (clients.large_bodies_h2, (self.stop, self.rec, target, expected, upload_file, ca_file)),
            (clients.slow_readers, (self.stop, self.rec, target, expected)),
            (clients.slow_readers, (self.stop, self.rec, target, expected, 1 << 20)),
            (clients.slow_senders, (self.stop, self.rec, target, expected)),
            (malformed_requests, (self.stop, self.rec, target)),
            (clients.idle_connections, (self.stop, self.rec, target, False, CLIENT_IDLE)),
            (clients.idle_connections, (self.stop, self.rec, target, True, CLIENT_IDLE)),
        ]
        loops += [(clients.slow_heads, (self.stop, self.rec, target, HEADER_READ))] * 4

        def timed(function, arguments):
            function(*arguments)
            late = time.time() - deadline
            if late > 5:
                log(f"{function.__name__} ended {late:.0f} s after the load")

        threads = [
            threading.Thread(
                target=timed, args=(function, arguments), daemon=True, name=f"{function.__name__}-{i}"
            )
            for i, (function, arguments) in enumerate(loops)
        ]
        chaos = threading.Thread(
            target=self.chaos_loop, args=(began + args.chaos_interval, args.chaos_interval), daemon=True
        )
        for thread in [*threads, chaos]:
            thread.start()
        next_note = began + 60
        while time.time() < deadline:
            if fulcrum.poll() is not None:
                log(f"Fulcrum exited with {fulcrum.returncode} during the load")
                break
            time.sleep(0.5)
            if time.time() >= next_note:
                next_note += 60
                log(
                    f"{int(time.time() - began)} s: {sum(self.rec.ok.values())} exchanges ok, {len(self.rec.failures)} failed, {len(self.events)} chaos steps"
                )
        self.stop.set()
        self.phase = "stopping"
        log("load stopped; waiting for the clients")
        join_by = time.time() + 60
        for thread in [*threads, chaos]:
            thread.join(timeout=max(0.0, join_by - time.time()))
        stuck = [thread.name for thread in [*threads, chaos] if thread.is_alive()]
        log(
            f"clients done after {time.time() - deadline:.0f} s"
            + (f"; still running: {stuck}" if stuck else "")
        )

        # Descriptors must come back to where they were before the load: client connections
        # close, idle pooled connections close after the backend idle timeout.
        self.phase = "settle"
        settle_until = time.time() + max(CLIENT_IDLE, BACKEND_IDLE) + args.settle
        baseline = soak_report.idle_baseline(self.samples)
        log(
            f"waiting up to {settle_until - time.time():.0f} s for the descriptors to come back to {baseline}"
        )
        while time.time() < settle_until and fulcrum.poll() is None:
            recent = [s[3] for s in self.samples[-3:] if s[1] == "settle"]
            if len(recent) == 3 and max(recent) <= baseline + soak_report.FD_SLACK:
                break
            time.sleep(args.sample_interval)
        self.sampling_done.set()
        sampler.join()

        fulcrum_alive = fulcrum.poll() is None
        metrics = self.admin("GET", "/metrics")[1].decode(errors="replace") if fulcrum_alive else ""
        stopped_cleanly = None
        if fulcrum_alive:
            fulcrum.terminate()
            try:
                stopped_cleanly = fulcrum.wait(15) == 0
            except subprocess.TimeoutExpired:
                stopped_cleanly = False
        self.write_results(began, fulcrum, fulcrum_alive, stopped_cleanly, stuck, metrics)

    def write_results(self, began, fulcrum, fulcrum_alive, stopped_cleanly, stuck, metrics):
        version = subprocess.run(
            [self.args.fulcrum, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        meta = {
            "command": self.args.command_line,
            "fulcrum": self.args.fulcrum,
            "version": version,
            "seconds": self.args.seconds,
            "began": began,
            "chaos_interval": self.args.chaos_interval,
            "fulcrum_alive_at_end": fulcrum_alive,
            "fulcrum_exit": fulcrum.returncode,
            "stopped_cleanly": stopped_cleanly,
            "stuck_clients": stuck,
            "cpus": os.cpu_count(),
            "loadavg": open("/proc/loadavg").read().split()[:3],
        }
        with open(os.path.join(self.out, "meta.json"), "w") as file:
            json.dump(meta, file, indent=1)
        with open(os.path.join(self.out, "events.json"), "w") as file:
            json.dump(self.events, file, indent=1)
        with open(os.path.join(self.out, "exchanges.json"), "w") as file:
            json.dump({"ok": self.rec.ok, "failures": self.rec.failures}, file, indent=1)
        with open(os.path.join(self.out, "samples.tsv"), "w") as file:
            file.write("time\tphase\trss_kb\tfds\tthreads\n")
            for sample in self.samples:
                file.write("\t".join(map(str, sample)) + "\n")
        with open(os.path.join(self.out, "metrics.txt"), "w") as file:
            file.write(metrics)


class CannotRun(Exception):
    """The soak could not be set up: exit status 2, no verdict."""


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5):
            return True
    except OSError:
        return False


def wait_for_port(port, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if port_open(port):
            return True
        time.sleep(0.05)
    return False


def main():
    parser = argparse.ArgumentParser(description="bench/soak.sh's driver; run bench/soak.sh instead")
    parser.add_argument("--fulcrum", required=True)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--out", required=True)
    parser.add_argument("--port-base", type=int, default=18500)
    parser.add_argument("--chaos-interval", type=float, default=3.5)
    parser.add_argument("--sample-interval", type=float, default=1.0)
    parser.add_argument(
        "--settle", type=int, default=15, help="extra seconds allowed for descriptors to come back"
    )
    parser.add_argument("--command-line", default="")
    args = parser.parse_args()
    args.fulcrum = os.path.abspath(args.fulcrum)
    soak = Soak(args)

    def terminate(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    try:
        soak.run()
    except CannotRun as error:
        print(f"soak: error: {error}", file=sys.stderr)
        sys.exit(2)
    finally:
        soak.stop_all()
        for name in os.listdir(soak.run_dir):
            if name.endswith(".yaml"):
                shutil.copy(os.path.join(soak.run_dir, name), os.path.join(soak.out, "fulcrum-end.yaml"))
        shutil.rmtree(soak.run_dir, ignore_errors=True)
    report, passed = soak_report.report(args.out)
    print(report)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
