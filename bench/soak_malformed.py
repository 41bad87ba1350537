"""Malformed and ambiguous requests for bench/soak.sh: each must be refused, and only it."""

import time

from soak_clients import drain_and_close, failure_cause, run_loop

# Malformed and ambiguous requests on the plain port: (name, bytes, statuses allowed). Each must
# get one of those statuses as the only response, and the connection must then close: a 2xx
# means the request reached a server, two responses mean a request was smuggled through.
# (`GET  /x` with two spaces is left out: Fulcrum accepts it on purpose and forwards a request
# line of its own, see docs/http-rules.md.)
_HOST = b"Host: localhost\r\n"
MALFORMED = [
    (
        "tls-on-plain-port",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(32)) + b"\r\n\r\n",
        {400},
    ),
    ("garbage-line", b"HELLO THERE\r\n\r\n", {400}),
    (
        "cl-and-te",
        b"POST /echo HTTP/1.1\r\n"
        + _HOST
        + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n"
        + _HOST
        + b"\r\n",
        {400},
    ),
    (
        "two-content-lengths",
        b"POST /echo HTTP/1.1\r\n" + _HOST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        {400},
    ),
    (
        "te-not-chunked-last",
        b"POST /echo HTTP/1.1\r\n" + _HOST + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        {400, 501},
    ),
    (
        "te-obfuscated",
        b"POST /echo HTTP/1.1\r\n" + _HOST + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
        {400, 501},
    ),
    ("space-before-colon", b"POST /echo HTTP/1.1\r\n" + _HOST + b"Content-Length : 5\r\n\r\nhello", {400}),
    ("obs-fold", b"GET /work HTTP/1.1\r\n" + _HOST + b"X-Folded: a\r\n b\r\n\r\n", {400}),
    (
        "chunk-size-overflow",
        b"POST /sink HTTP/1.1\r\n"
        + _HOST
        + b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
        {400},
    ),
    ("no-host", b"GET /work HTTP/1.1\r\n\r\n", {400}),
    ("two-hosts", b"GET /work HTTP/1.1\r\n" + _HOST + b"Host: other\r\n\r\n", {400}),
    ("nul-in-value", b"GET /work HTTP/1.1\r\n" + _HOST + b"X-Nul: a\x00b\r\n\r\n", {400}),
    ("oversized-header", b"GET /work HTTP/1.1\r\n" + _HOST + b"X-Big: " + b"a" * 20000 + b"\r\n\r\n", {431}),
    (
        "many-headers",
        b"GET /work HTTP/1.1\r\n" + _HOST + b"".join(b"X-H%d: v\r\n" % i for i in range(2500)) + b"\r\n",
        {431},
    ),
]


def malformed_requests(stop, rec, target, pace=0.1):
    """Sends the MALFORMED requests in turn, each on a new connection."""
    turn = [0]

    def once():
        name, payload, allowed = MALFORMED[turn[0] % len(MALFORMED)]
        turn[0] += 1
        start = time.time()
        try:
            sock = target.connect(False, 10)
            try:
                try:
                    sock.sendall(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # refused part way through a large head: what it answered still counts
                data, closed = drain_and_close(sock, start + 5)
            finally:
                sock.close()
            statuses = [
                int(line[9:12])
                for line in data.split(b"\r\n")
                if line.startswith(b"HTTP/1.1 ") and line[9:12].isdigit()
            ]
            if not statuses:
                rec.add("malformed", start, False, "no response", f"{name}: closed={closed}", backend=None)
            elif len(statuses) > 1:
                rec.add(
                    "malformed", start, False, "more than one response", f"{name}: {statuses}", backend=None
                )
            elif statuses[0] not in allowed:
                rec.add(
                    "malformed",
                    start,
                    False,
                    f"status {statuses[0]}",
                    f"{name}: allowed {sorted(allowed)}",
                    backend=None,
                )
            else:
                rec.add("malformed", start, closed, "not closed after the error", name, backend=None)
        except Exception as error:  # noqa: BLE001
            rec.add("malformed", start, False, failure_cause(error), f"{name}: {error}", backend=None)

    run_loop(stop, pace, once)
