#!/usr/bin/env python3
"""The idle-connection probe of bench/run.sh --idle N (Python 3 standard library only).

Opens N keep-alive client connections to a proxy on 127.0.0.1, one after the other, sends one
request on each and reads its whole response (so each connection has been through a request,
as a browser's would have), then leaves them open and idle. It reads the resident set size of
the proxy's process tree (VmRSS of the PID and its descendants: nginx's worker is a child of its
master) before, once all are open and idle for --settle seconds, and after closing them, and
prints one JSON line:

  {"connections": N, "rss_before_kib": ..., "rss_idle_kib": ..., "rss_closed_kib": ...,
   "per_connection_kib": (idle - before) / N, "open_seconds": ...}

Usage: idle.py --port PORT --pid PID --connections N [--tls] [--h2] [--settle SECONDS]
               [--path PATH] [--upload BYTES]

--h2 speaks HTTP/2 instead: with prior knowledge (h2c), or with --tls by ALPN; each connection
sends the preface and one GET on stream 1, reads the whole response, and then sits idle (it
acknowledges the server's SETTINGS, as a client must).

--upload BYTES makes each connection's one request a POST of that many bytes (to a --path
that takes a body): what an idle connection keeps after a large read.
"""

import argparse
import json
import os
import resource
import socket
import ssl
import sys
import time


def rss_kib(root):
    """VmRSS of root and all its descendants, in KiB."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read().decode("ascii", "replace")
        except OSError:
            continue
        ppid = int(data[data.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def read_response(sock):
    """Reads one HTTP/1.1 response with a Content-Length body (the benchmark backends' kind)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if b" 200 " not in status + b" ":
        raise ConnectionError(f"not a 200: {status!r}")
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None:
        raise ConnectionError("no Content-Length in the response")
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the middle of the body")
        body += chunk


def h2_frame(kind, flags, stream, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def h2_string(text):
    """An HPACK string literal, not Huffman-coded (RFC 7541 §5.2), for values under 127 bytes."""
    data = text.encode()
    if len(data) >= 127:
        raise ValueError("an HPACK string this long needs a multi-byte length")
    return bytes([len(data)]) + data


def h2_request(path, tls):
    """The client preface, an empty SETTINGS, and a GET on stream 1 ending the stream."""
    # HPACK: :method GET (static 2), :scheme http/https (6/7), :path (4, or literal with that
    # name), :authority (literal without indexing, name index 1).
    block = b"\x82" + (b"\x87" if tls else b"\x86")
    block += b"\x84" if path == "/" else b"\x04" + h2_string(path)
    block += b"\x01" + h2_string("localhost")
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    return preface + h2_frame(4, 0, 0) + h2_frame(1, 0x5, 1, block)


def read_h2_response(sock):
    """Reads frames until stream 1 ends; acknowledges SETTINGS and PING on the way."""
    data = b""
    status_seen = False
    while True:
        while len(data) < 9 or len(data) < 9 + int.from_bytes(data[:3], "big"):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the response ended")
            data += chunk
        length = int.from_bytes(data[:3], "big")
        kind, flags = data[3], data[4]
        stream = int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
        payload, data = data[9 : 9 + length], data[9 + length :]
        if kind == 4 and not flags & 0x1:
            sock.sendall(h2_frame(4, 0x1, 0))
        elif kind == 6 and not flags & 0x1:
            sock.sendall(h2_frame(6, 0x1, 0, payload))
        elif kind == 7:
            raise ConnectionError("the server sent GOAWAY")
        elif kind == 3 and stream == 1:
            raise ConnectionError("the server reset the stream")
        elif kind == 1 and stream == 1:
            # :status 200 is static-table entry 8, which every encoder indexes. (No padding or
            # priority is expected on a response HEADERS frame here.)
            if not status_seen and payload[:1] != b"\x88":
                raise ConnectionError(f"not a 200: {payload[:8]!r}")
            status_seen = True
        if stream == 1 and kind in (0, 1) and flags & 0x1:
            return


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--h2", action="store_true", help="HTTP/2: h2c, or h2 by ALPN with --tls")
    parser.add_argument("--settle", type=float, default=2.0)
    parser.add_argument("--path", default="/", help="what each connection asks for (a 200 with Content-Length)")
    parser.add_argument("--upload", type=int, default=0, help="POST this many bytes instead of a GET")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = args.connections + 64
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            sys.exit(f"idle.py: {args.connections} connections need {needed} descriptors; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))

    context = None
    if args.tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["h2"] if args.h2 else ["http/1.1"])
    if args.h2 and args.upload:
        sys.exit("idle.py: --upload is for HTTP/1.1")
    if args.h2:
        request = h2_request(args.path, args.tls)
    elif args.upload:
        request = f"POST {args.path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {args.upload}\r\n\r\n".encode()
        request += b"x" * args.upload
    else:
        request = f"GET {args.path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()

    before = rss_kib(args.pid)
    started = time.monotonic()
    held = []
    for _ in range(args.connections):
        sock = socket.create_connection(("127.0.0.1", args.port), timeout=10)
        # As browsers, curl and Go's client do. With Nagle on, a TLS 1.3 client's request waits
        # for the ACK of its Finished, which BoringSSL's server (Fulcrum's) sends with its first
        # write, not at once as OpenSSL's (HAProxy's, nginx's) does: 40 ms per connection.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname="localhost")
        if args.h2 and context is not None and sock.selected_alpn_protocol() != "h2":
            sys.exit("idle.py: the proxy did not negotiate h2")
        sock.sendall(request)
        if args.h2:
            read_h2_response(sock)
        else:
            read_response(sock)
        held.append(sock)
    opened = time.monotonic() - started
    time.sleep(args.settle)
    idle = rss_kib(args.pid)
    # Every connection must still be open: a proxy that closed some would look cheaper.
    for sock in held:
        sock.setblocking(False)
        try:
            if sock.recv(1) == b"":
                sys.exit("idle.py: the proxy closed an idle connection during the probe")
        except (BlockingIOError, ssl.SSLWantReadError):
            pass
    for sock in held:
        sock.close()
    time.sleep(args.settle)
    closed = rss_kib(args.pid)
    print(
        json.dumps(
            {
                "connections": args.connections,
                "rss_before_kib": before,
                "rss_idle_kib": idle,
                "rss_closed_kib": closed,
                "per_connection_kib": round((idle - before) / args.connections, 2),
                "open_seconds": round(opened, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
