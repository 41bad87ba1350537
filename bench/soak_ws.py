#!/usr/bin/env python3
"""WebSocket (RFC 6455) for bench/soak.sh, standard library only.

Run as a program it is the soak's WebSocket backend, an echo server:
    python3 bench/soak_ws.py PORT
It answers `GET /health` with 200 (so it can stand behind health checks), upgrades any
request with `Upgrade: websocket`, and echoes every data frame back unmasked; ping gets
pong, close gets close. Imported, it gives the client side: `handshake` and `Frames`.
"""

import base64
import hashlib
import os
import socket
import socketserver
import struct
import sys

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_PAYLOAD = 1 << 20


def accept_key(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


class Frames:
    """Reads and writes frames on a socket, with bytes already read past a head."""

    def __init__(self, sock, pending=b"", mask=False):
        self.sock = sock
        self.buffer = bytearray(pending)
        self.mask = mask  # clients mask, servers do not

    def _need(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed in the middle of a frame")
            self.buffer += chunk
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def read(self):
        """(opcode, payload) of the next whole message; fragments are not used here."""
        b0, b1 = self._need(2)
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._need(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._need(8))
        if length > MAX_PAYLOAD:
            raise ValueError(f"frame of {length} bytes")
        key = self._need(4) if b1 & 0x80 else None
        payload = self._need(length)
        if key:
            payload = _unmask(payload, key)
        return b0 & 0x0F, payload

    def write(self, opcode, payload):
        head = bytes([0x80 | opcode])
        mask_bit = 0x80 if self.mask else 0
        n = len(payload)
        if n < 126:
            head += bytes([mask_bit | n])
        elif n < 65536:
            head += bytes([mask_bit | 126]) + struct.pack("!H", n)
        else:
            head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
        if self.mask:
            key = os.urandom(4)
            head += key
            payload = _unmask(payload, key)
        self.sock.sendall(head + payload)


def _unmask(payload, key):
    # XOR with the 4-byte key, done on whole integers rather than byte by byte.
    n = len(payload)
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def read_head(sock, limit=65536):
    """The head up to the blank line, and whatever came after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} bytes of the head")
        data += chunk
        if len(data) > limit:
            raise ValueError("head too large")
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def handshake(sock, host, path="/ws"):
    """Upgrades a connected socket; returns (status, Frames). Frames is None unless 101."""
    key = base64.b64encode(os.urandom(16))
    sock.sendall(
        b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\n\r\n"
    )
    head, rest = read_head(sock)
    status = int(head.split(b" ", 2)[1])
    if status != 101:
        return status, None
    fields = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line)
    fields = {k.strip().lower(): v.strip() for k, v in fields.items()}
    if fields.get(b"sec-websocket-accept") != accept_key(key):
        raise ValueError("wrong Sec-WebSocket-Accept")
    return status, Frames(sock, rest, mask=True)


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.settimeout(120)
        try:
            head, rest = read_head(sock)
        except (OSError, ValueError):
            return
        lines = head.split(b"\r\n")
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip()
        target = lines[0].split(b" ")[1] if len(lines[0].split(b" ")) > 1 else b"/"
        key = fields.get(b"sec-websocket-key")
        if target.startswith(b"/health") or fields.get(b"upgrade", b"").lower() != b"websocket" or not key:
            status = b"200 OK" if target.startswith(b"/health") else b"400 Bad Request"
            sock.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 3\r\nConnection: close\r\n\r\nws\n")
            return
        sock.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(key) + b"\r\n\r\n"
        )
        frames = Frames(sock, rest)
        try:
            while True:
                opcode, payload = frames.read()
                if opcode == 8:
                    frames.write(8, payload[:2])
                    return
                frames.write(10 if opcode == 9 else opcode, payload)
        except (OSError, ValueError):
            return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


if __name__ == "__main__":
    port = int(sys.argv[1])
    with Server(("127.0.0.1", port), EchoHandler) as server:
        server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.serve_forever()
