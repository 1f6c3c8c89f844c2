"""The floor: wsdiag's handshakes done with the Python standard library alone.

Raw sockets and hand-made frames, no third-party code and nothing imported that the job does
not need, so the benchmark can show how far ``wsdiag`` is from the cheapest way to do the
same wire work in the same language.

    python benchmarks/floor.py one ws://127.0.0.1:PORT/ws
    python benchmarks/floor.py batch --from-file urls.txt --concurrency 16 [--no-ping]

Per URL, the exchange is the wire work of a ``wsdiag probe -p minimal --no-controls``
exchange: connect, send the RFC 6455 section 4.1 minimal handshake, check the 101 and
Sec-WebSocket-Accept, send a masked ping and a masked text message, read frames until both the
pong and the echoed text have come back, send close 1000 and read until the server's close and
its EOF (bounded).  Like wsdiag, it acknowledges what it reads at once (``TCP_QUICKACK``, Linux):
the benchmark server (gevent-websocket) writes the pong and the echo as two small segments
without TCP_NODELAY, so Nagle's algorithm holds the second until the first is acknowledged,
and with delayed ACKs that costs ~40 ms per exchange (measured in RESULTS.md's analysis).
``--no-ping`` is the lighter exchange of earlier floors (and of websocat/wscat): a text and its
echo only, no ping.  ``one`` prints the echoed text; ``batch`` prints ``N ok, M failed`` and
exits 1 if any failed.  Every wait is bounded by --timeout.
"""

import base64
import hashlib
import os
import socket
import struct
import sys

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MESSAGE = b"hello"
PING = b"floor-ping"
QUICKACK = getattr(socket, "TCP_QUICKACK", 0)


def _ack_now(sock):
    if QUICKACK:
        sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)


def _parse(url):
    """ws://host:port/path?query -> (host, port, resource). Plain ws:// only (loopback)."""
    if not url.startswith("ws://"):
        raise ValueError(f"floor.py handles ws:// URLs only: {url!r}")
    rest = url[5:]
    hostport, slash, path = rest.partition("/")
    host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "80")
    return host, int(port), "/" + path if slash else "/"


def _frame(opcode, payload):
    """A masked, final client frame (payloads < 126 bytes are all this script sends)."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + mask + masked


def _read_frame(sock, buf):
    """Read one unmasked server frame -> (opcode, payload, rest of buffer)."""
    while True:
        if len(buf) >= 2:
            n, pos = buf[1] & 0x7F, 2
            if n == 126 and len(buf) >= 4:
                n, pos = struct.unpack("!H", buf[2:4])[0], 4
            elif n == 127 and len(buf) >= 10:
                n, pos = struct.unpack("!Q", buf[2:10])[0], 10
            if n < 126 or pos > 2:
                if len(buf) >= pos + n:
                    return buf[0] & 0x0F, buf[pos:pos + n], buf[pos + n:]
        _ack_now(sock)
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("EOF before a complete frame")
        buf += chunk


def exchange(url, timeout=5.0, ping=True):
    """One handshake + (ping and) echo + closing handshake. Returns the echoed text (bytes); raises on failure."""
    host, port, resource = _parse(url)
    key = base64.b64encode(os.urandom(16))
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(
            b"GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % (resource.encode(), host.encode(), port, key)
        )
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk or len(buf) > 65536:
                raise ConnectionError("no complete response head")
            buf += chunk
        head, _, buf = buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        if lines[0].split(b" ")[1:2] != [b"101"]:
            raise ConnectionError(f"not upgraded: {lines[0]!r}")
        fields = {n.strip().lower(): v.strip() for n, _, v in (ln.partition(b":") for ln in lines[1:])}
        if fields.get(b"sec-websocket-accept") != accept:
            raise ConnectionError("bad Sec-WebSocket-Accept")
        if ping:
            sock.sendall(_frame(0x9, PING))
        sock.sendall(_frame(0x1, MESSAGE))
        payload, ponged = None, not ping
        while payload is None or not ponged:
            opcode, data, buf = _read_frame(sock, buf)
            if opcode == 0x1:
                payload = data
            elif opcode == 0xA:
                ponged = ponged or data == PING
            elif opcode == 0x8:  # (anything else, e.g. a ping from the server, is skipped)
                raise ConnectionError("closed before the echo")
        # Closing handshake (as wsdiag does): close 1000, then the server's close, then its EOF.
        sock.sendall(_frame(0x8, struct.pack("!H", 1000)))
        try:
            while True:  # frames until EOF: the close echo, then the server's FIN
                _, _, buf = _read_frame(sock, buf)
        except (ConnectionError, OSError):
            pass  # EOF (or the socket's timeout)
        return payload


def batch(urls, concurrency, timeout, ping=True):
    """Every URL once, ``concurrency`` at a time, on threads (as wsdiag does)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(url):
        try:
            return exchange(url, timeout, ping) == MESSAGE
        except (OSError, ValueError):
            return False

    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(urls)))) as pool:
        results = list(pool.map(one, urls))
    return results.count(True), results.count(False)


def main(argv):
    usage = "usage: floor.py one URL [--no-ping] | floor.py batch --from-file FILE [--concurrency N] [--timeout S] [--no-ping]"
    ping = "--no-ping" not in argv
    argv = [a for a in argv if a != "--no-ping"]
    if len(argv) == 2 and argv[0] == "one":
        print(exchange(argv[1], ping=ping).decode("utf-8", "replace"))
        return 0
    if argv[:1] == ["batch"]:
        opts = dict(zip(argv[1::2], argv[2::2]))
        if "--from-file" not in opts or len(argv) % 2 == 0:
            print(usage, file=sys.stderr)
            return 2
        with open(opts["--from-file"]) as f:
            urls = [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
        ok, failed = batch(urls, int(opts.get("--concurrency", 16)), float(opts.get("--timeout", 5.0)), ping)
        print(f"{ok} ok, {failed} failed")
        return 1 if failed else 0
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
