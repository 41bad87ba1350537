"""The Python half of bench/soak.sh's traffic: clients h2load cannot be.

Each client is a loop, run on its own thread until `stop` is set, that records every exchange
it makes with `Recorder.add`: its kind, when it started and ended, whether it went as it must,
and if not, why. What "as it must" means is written beside each client. The classification of
failures (caused by the chaos, or by Fulcrum) is soak_report.py's, from the times recorded.
"""

import hashlib
import json
import random
import select
import socket
import ssl
import subprocess
import threading
import time

import soak_ws


class Recorder:
    """Successes counted per kind; failures kept whole, with their times."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ok = {}
        self.failures = []

    def add(self, kind, start, ok, cause="", detail="", backend="app", end=None):
        with self.lock:
            if ok:
                self.ok[kind] = self.ok.get(kind, 0) + 1
                return
            self.failures.append(
                {
                    "kind": kind,
                    "start": start,
                    "end": end if end is not None else time.time(),
                    "cause": cause,
                    "detail": str(detail).strip()[:300],
                    "backend": backend,
                }
            )

    def add_many(self, kind, count):
        with self.lock:
            self.ok[kind] = self.ok.get(kind, 0) + count


class Target:
    """Where Fulcrum listens, and how to reach it."""

    def __init__(self, plain_port, tls_port, ca_file, host="localhost"):
        self.plain_port = plain_port
        self.tls_port = tls_port
        self.host = host
        self.tls_context = ssl.create_default_context(cafile=ca_file)
        self.tls_context.set_alpn_protocols(["http/1.1"])

    def connect(self, tls, timeout=10.0, handshake=True):
        sock = socket.create_connection(("127.0.0.1", self.tls_port if tls else self.plain_port), timeout)
        if tls and handshake:
            sock = self.tls_context.wrap_socket(sock, server_hostname=self.host)
        return sock


class Expected:
    """What the workers answer directly: the soak compares what comes through Fulcrum to it."""

    def __init__(self, upload_body, sink_answer, download_n, download_sha256):
        self.upload_body = upload_body
        self.sink_answer = sink_answer  # {"bytes": N, "checksum": "..."}
        self.download_n = download_n
        self.download_sha256 = download_sha256


# ---------------------------------------------------------------------------------------------
# a minimal HTTP/1.1 client on a raw socket: the soak wants to see every byte and every close


class Response:
    def __init__(self, status, fields, body_reader):
        self.status = status
        self.fields = fields
        self.body_reader = body_reader


def read_response_head(sock, pending=b""):
    data = pending
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response head ({len(data)} bytes)")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower().decode()] = value.strip().decode(errors="replace")
    return status, fields, rest


def read_body(sock, fields, rest, sink, pause=None):
    """Reads a Content-Length or chunked body into `sink(bytes)`; `pause(received)` may sleep."""
    received = 0
    if "content-length" in fields:
        remaining = int(fields["content-length"])
        if rest:
            sink(rest[:remaining])
            received += len(rest[:remaining])
            remaining -= len(rest[:remaining])
        while remaining > 0:
            if pause:
                pause(received)
            chunk = sock.recv(min(remaining, 65536))
            if not chunk:
                raise ConnectionError(f"body cut after {received} bytes")
            sink(chunk)
            received += len(chunk)
            remaining -= len(chunk)
        return received
    if fields.get("transfer-encoding", "").lower() == "chunked":
        buffer = bytearray(rest)

        def need_line():
            while b"\r\n" not in buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError(f"chunked body cut after {received} bytes")
                buffer.extend(chunk)
            line, _, tail = bytes(buffer).partition(b"\r\n")
            buffer[:] = tail
            return line

        while True:
            size = int(need_line().split(b";")[0], 16)
            if size == 0:
                while need_line():
                    pass
                return received
            while len(buffer) < size + 2:
                if pause:
                    pause(received)
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError(f"chunked body cut after {received} bytes")
                buffer.extend(chunk)
            sink(bytes(buffer[:size]))
            received += size
            del buffer[: size + 2]
    while True:  # until close
        chunk = sock.recv(65536)
        if not chunk:
            return received
        sink(chunk + b"")
        received += len(chunk)


def request(target, tls, method, path, body=b"", fields=(), timeout=30.0, sink=None, pause=None):
    """One request on a new connection (Connection: close); returns (status, body bytes or count)."""
    sock = target.connect(tls, timeout)
    try:
        head = f"{method} {path} HTTP/1.1\r\nHost: {target.host}\r\nConnection: close\r\n"
        for name, value in fields:
            head += f"{name}: {value}\r\n"
        if body or method in ("POST", "PUT"):
            head += f"Content-Length: {len(body)}\r\n"
        sock.sendall(head.encode() + b"\r\n" + body)
        status, response_fields, rest = read_response_head(sock)
        if sink is not None:
            return status, read_body(sock, response_fields, rest, sink, pause)
        parts = []
        read_body(sock, response_fields, rest, parts.append)
        return status, b"".join(parts)
    finally:
        sock.close()


def failure_cause(error):
    if isinstance(error, socket.timeout):
        return "client timeout"
    if isinstance(error, ssl.SSLError):
        return "TLS error"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError):
        return "connection reset"
    if isinstance(error, (ConnectionError, BrokenPipeError)):
        return "connection closed"
    return type(error).__name__


class EndOfRun(Exception):
    """A slow client stopping part way because the run ended."""


def run_loop(stop, pace, body):
    """Calls body() until stop, `pace` seconds apart at most; errors are body's to record."""
    while not stop.is_set():
        began = time.time()
        body()
        stop.wait(max(0.0, pace - (time.time() - began)))


# ---------------------------------------------------------------------------------------------
# the clients


def tls_new_connections(stop, rec, target, pace=0.2):
    """A full TLS handshake per request: `GET /work`, Connection: close; must be 200."""

    def once():
        start = time.time()
        try:
            status, _ = request(target, True, "GET", "/work")
            rec.add("tls-new-connection", start, status == 200, f"status {status}")
        except Exception as error:  # noqa: BLE001 - every failure is recorded, none is fatal
            rec.add("tls-new-connection", start, False, failure_cause(error), error)

    run_loop(stop, pace, once)


def websockets(stop, rec, target, tls, pace=0.3):
    """A WebSocket session through Fulcrum to the echo backend: 101, then 10 messages of up to
    64 KB each echoed byte for byte, then a clean close."""
    kind = "websocket-tls" if tls else "websocket"
    rng = random.Random(tls)

    def once():
        start = time.time()
        try:
            sock = target.connect(tls)
            try:
                status, frames = soak_ws.handshake(sock, target.host)
                if frames is None:
                    rec.add(kind, start, False, f"status {status}", backend="ws")
                    return
                for _ in range(10):
                    payload = rng.randbytes(rng.choice((10, 1000, 20000, 65000)))
                    frames.write(2, payload)
                    opcode, echoed = frames.read()
                    if opcode != 2 or echoed != payload:
                        rec.add(kind, start, False, "echo differs", f"opcode {opcode}", backend="ws")
                        return
                frames.write(8, b"\x03\xe8")
                opcode, _ = frames.read()
                rec.add(kind, start, opcode == 8, "no close frame", backend="ws")
            finally:
                sock.close()
        except Exception as error:  # noqa: BLE001
            rec.add(kind, start, False, failure_cause(error), error, backend="ws")

    run_loop(stop, pace, once)


def large_bodies_h1(stop, rec, target, expected, pace=0.5):
    """HTTP/1.1, plain and TLS in turn: a 4 MiB upload to `/sink` whose size and checksum must
    be the worker's own answer, then an 8 MiB download from `/bytes` whose SHA-256 must be."""
    turn = [0]

    def once():
        tls = turn[0] % 2 == 1
        turn[0] += 1
        suffix = "-tls" if tls else ""
        start = time.time()
        try:
            status, body = request(target, tls, "POST", "/sink", expected.upload_body, timeout=60)
            good = status == 200 and json.loads(body) == expected.sink_answer
            rec.add(
                "upload-h1" + suffix,
                start,
                good,
                f"status {status}" if status != 200 else "sink answer differs",
                body[:200],
            )
        except Exception as error:  # noqa: BLE001
            rec.add("upload-h1" + suffix, start, False, failure_cause(error), error)
        start = time.time()
        digest = hashlib.sha256()
        try:
            status, size = request(
                target, tls, "GET", f"/bytes?n={expected.download_n}&seed=7", timeout=60, sink=digest.update
            )
            good = (
                status == 200
                and size == expected.download_n
                and digest.hexdigest() == expected.download_sha256
            )
            rec.add(
                "download-h1" + suffix,
                start,
                good,
                f"status {status}" if status != 200 else "body differs",
                f"{size} bytes",
            )
        except Exception as error:  # noqa: BLE001
            rec.add("download-h1" + suffix, start, False, failure_cause(error), error)

    run_loop(stop, pace, once)


def large_bodies_h2(stop, rec, target, expected, upload_file, ca_file, pace=0.5):
    """HTTP/2 with curl, over TLS (ALPN) and h2c (prior knowledge) in turn: the same upload and
    download as large_bodies_h1, checked the same way."""
    turn = [0]

    def curl(tls, extra):
        if tls:
            url = f"https://localhost:{target.tls_port}"
            base = ["--http2", "--cacert", ca_file, "--resolve", f"localhost:{target.tls_port}:127.0.0.1"]
        else:
            url = f"http://127.0.0.1:{target.plain_port}"
            base = ["--http2-prior-knowledge"]
        return ["curl", "-sS", "--max-time", "60", "-w", "\n%{http_code} %{http_version}"] + base + extra(url)

    def once():
        tls = turn[0] % 2 == 1
        turn[0] += 1
        suffix = "-tls" if tls else "c"
        start = time.time()
        upload = curl(tls, lambda url: ["--data-binary", "@" + upload_file, url + "/sink"])
        result = subprocess.run(upload, capture_output=True, timeout=90, check=False)
        body, _, trailer = result.stdout.rpartition(b"\n")
        code, _, version = trailer.decode().partition(" ")
        if result.returncode != 0:
            rec.add(
                "upload-h2" + suffix,
                start,
                False,
                f"curl exit {result.returncode}",
                result.stderr.decode()[-200:],
            )
        elif version != "2":
            rec.add("upload-h2" + suffix, start, False, f"HTTP/{version}, not HTTP/2")
        else:
            good = code == "200" and json.loads(body) == expected.sink_answer
            rec.add(
                "upload-h2" + suffix,
                start,
                good,
                f"status {code}" if code != "200" else "sink answer differs",
                body[:200],
            )
        start = time.time()
        download = curl(tls, lambda url: ["-o", "-", url + f"/bytes?n={expected.download_n}&seed=7"])
        result = subprocess.run(download, capture_output=True, timeout=90, check=False)
        body, _, trailer = result.stdout.rpartition(b"\n")
        code, _, version = trailer.decode().partition(" ")
        if result.returncode != 0:
            rec.add(
                "download-h2" + suffix,
                start,
                False,
                f"curl exit {result.returncode}",
                result.stderr.decode()[-200:],
            )
        else:
            good = (
                code == "200"
                and version == "2"
                and hashlib.sha256(body).hexdigest() == expected.download_sha256
            )
            rec.add(
                "download-h2" + suffix,
                start,
                good,
                f"status {code} HTTP/{version}" if code != "200" else "body differs",
                f"{len(body)} bytes",
            )

    run_loop(stop, pace, once)


def slow_readers(stop, rec, target, expected, pause_at=None, pause=6.0, pace=0.5):
    """Reads an 8 MiB download at about 1 MB/s (64 KiB every 60 ms), or, with `pause_at`, reads
    that many bytes, stops reading for `pause` seconds and then reads the rest. The body must
    be whole. The pause is longer than the backend's response timeout (4 s) and shorter than
    client_idle (10 s): the proxy, not the server, is the one waiting."""
    kind = "paused-reader" if pause_at else "slow-reader"
    turn = [0]

    def once():
        tls = turn[0] % 2 == 1
        turn[0] += 1
        paused = [False]

        def wait(received):
            if pause_at is None:
                if stop.wait(0.06):
                    raise EndOfRun
            elif received >= pause_at and not paused[0]:
                paused[0] = True
                if stop.wait(pause):
                    raise EndOfRun

        start = time.time()
        digest = hashlib.sha256()
        try:
            status, size = request(
                target,
                tls,
                "GET",
                f"/bytes?n={expected.download_n}&seed=7",
                timeout=30,
                sink=digest.update,
                pause=wait,
            )
            good = (
                status == 200
                and size == expected.download_n
                and digest.hexdigest() == expected.download_sha256
            )
            rec.add(
                kind, start, good, f"status {status}" if status != 200 else "body differs", f"{size} bytes"
            )
        except EndOfRun:
            pass  # cut short by the end of the run: neither a success nor a failure
        except Exception as error:  # noqa: BLE001
            rec.add(kind, start, False, failure_cause(error), error)

    run_loop(stop, pace, once)


def slow_senders(stop, rec, target, expected, pace=0.5):
    """Sends the 4 MiB upload in 128 KiB pieces 40 ms apart (the head at once: header_read
    applies to the head only); the sink's answer must be the worker's own."""

    def once():
        start = time.time()
        try:
            sock = target.connect(False, 30)
            try:
                body = expected.upload_body
                sock.sendall(
                    f"POST /sink HTTP/1.1\r\nHost: {target.host}\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                )
                for offset in range(0, len(body), 131072):
                    sock.sendall(body[offset : offset + 131072])
                    time.sleep(0.04)
                status, fields, rest = read_response_head(sock)
                parts = []
                read_body(sock, fields, rest, parts.append)
                good = status == 200 and json.loads(b"".join(parts)) == expected.sink_answer
                rec.add(
                    "slow-sender", start, good, f"status {status}" if status != 200 else "sink answer differs"
                )
            finally:
                sock.close()
        except Exception as error:  # noqa: BLE001
            rec.add("slow-sender", start, False, failure_cause(error), error)

    run_loop(stop, pace, once)


def drain_and_close(sock, deadline):
    """Everything the server sends until it closes; (bytes, closed) at the deadline."""
    data = b""
    while time.time() < deadline:
        ready, _, _ = select.select([sock], [], [], max(0.0, deadline - time.time()))
        if not ready:
            break
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def slow_heads(stop, rec, target, header_read, pace=0.2):
    """Slowloris: a request line and then one header byte a second. Fulcrum must answer 408
    and close within header_read (plus 2 s of slack for the timer and the scheduler)."""

    def once():
        start = time.time()
        try:
            sock = target.connect(False)
            try:
                sock.sendall(b"GET /work HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
                deadline = start + header_read + 2
                while time.time() < deadline and not stop.is_set():
                    ready, _, _ = select.select([sock], [], [], 1.0)
                    if ready:
                        break
                    sock.sendall(b"a")  # never the end of the head
                data, closed = drain_and_close(sock, deadline)
                if stop.is_set() and not data:
                    return  # cut short by the end of the run: neither a success nor a failure
                good = data.startswith(b"HTTP/1.1 408") and closed
                cause = "still open past header_read" if not closed else f"answered {data[:12]!r}"
                rec.add("slow-head", start, good, cause, backend=None)
            finally:
                sock.close()
        except Exception as error:  # noqa: BLE001
            rec.add("slow-head", start, False, failure_cause(error), error, backend=None)

    run_loop(stop, pace, once)


def idle_connections(stop, rec, target, tls, idle_limit, pace=0.2):
    """A connection that sends nothing — on the TLS port not even a ClientHello. Fulcrum must
    close it within client_idle (plus 3 s of slack), as HAProxy's `timeout client` does."""
    kind = "idle-tls-no-hello" if tls else "idle"

    def once():
        start = time.time()
        try:
            sock = target.connect(tls, handshake=False)
            try:
                deadline = start + idle_limit + 3
                while not stop.is_set() and time.time() < deadline:
                    data, closed = drain_and_close(sock, min(deadline, time.time() + 1))
                    if closed:
                        rec.add(kind, start, True, backend=None)
                        return
                if not stop.is_set():
                    rec.add(kind, start, False, "still open past client_idle", backend=None)
            finally:
                sock.close()
        except Exception as error:  # noqa: BLE001
            rec.add(kind, start, False, failure_cause(error), error, backend=None)

    run_loop(stop, pace, once)
