"""Hold an upgraded session idle (``probe --hold SECONDS``) and record who ends it, and when.

An I/O edge beside ``transport``: it reuses ``open_stream`` (one connect path, one error
table) and the core's request and frame code, and judges nothing (``core.holding`` does).
Two sessions run side by side: one silent, one that pings every few seconds, so the report
can say whether pings keep the connection alive (FAILURES.md FM-08). Every wait is bounded
by the hold plus the exchange timeout.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time

from wsdiag.core import frames as fr
from wsdiag.core.handshake import Target, build_request, find_head_end, new_key, parse_response_head
from wsdiag.core.holding import HoldResult
from wsdiag.core.profiles import PROFILES
from wsdiag.net.transport import Clock, ExchangeError, Settings, open_stream


def ping_interval(seconds: float) -> float:
    """Pings often enough to beat a timeout shorter than the hold (at most every 20 s)."""
    return max(0.5, min(20.0, seconds / 4.0))


def hold(target: Target, settings: Settings, seconds: float, ping_every: float | None = None,
         extra_headers: tuple = ()) -> HoldResult:
    """Upgrade (minimal handshake), then stay idle (or only ping) until the peer ends it or ``seconds`` pass."""
    result = HoldResult(target.url, seconds, "error", ping_every=ping_every)
    clock = Clock(settings.timeout)
    sock = None
    try:
        sock = open_stream(target, settings, clock, {})
        req = build_request(PROFILES["minimal"], target, new_key(), extra_headers=extra_headers)
        sock.settimeout(max(clock.left(), 0.01))
        sock.sendall(req.raw)
        buf = b""
        while find_head_end(buf) is None:
            sock.settimeout(max(clock.left(), 0.01))
            chunk = sock.recv(65536)
            if not chunk:
                result.line = "closed before the handshake answer"
                return result
            buf += chunk
        end = find_head_end(buf)
        head = parse_response_head(buf[:end])
        if head is None or head.status != 101:
            result.ended, result.line = "not-upgraded", buf.split(b"\r\n", 1)[0].decode("latin-1")
            return result
        _idle(sock, buf[end:], result, seconds, ping_every)
    except ExchangeError as exc:
        result.line = f"{exc.kind}: {exc.detail}"
    except OSError as exc:
        result.line = f"{type(exc).__name__}: {exc}"
    finally:
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
    return result


def _idle(sock: socket.socket, rest: bytes, result: HoldResult, seconds: float, ping_every: float | None) -> None:
    t0 = time.monotonic()
    deadline = t0 + seconds
    next_ping = t0 + ping_every if ping_every else None
    buf = rest
    sock.setblocking(True)
    while True:
        now = time.monotonic()
        if now >= deadline:
            result.ended = "survived"
            _send(sock, fr.encode(fr.OP_CLOSE, fr.close_payload(1000), os.urandom(4)))
            return
        if next_ping is not None and ping_every and now >= next_ping:
            _send(sock, fr.encode(fr.OP_PING, b"wsdiag-hold", os.urandom(4)))
            next_ping = now + ping_every
        wait = min(deadline, next_ping or deadline) - now
        readable, _, _ = select.select([sock], [], [], max(wait, 0.0))
        if not readable:
            continue
        try:
            sock.settimeout(1.0)
            chunk = sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError):
            result.ended, result.after_s = "reset", time.monotonic() - t0
            return
        except socket.timeout:
            continue
        if not chunk:
            result.ended, result.after_s = "eof", time.monotonic() - t0
            return
        buf += chunk
        if buf.startswith(b"HTTP/"):
            result.ended, result.after_s = "http", time.monotonic() - t0
            result.line = buf.split(b"\r\n", 1)[0].decode("latin-1")[:120]
            return
        frames, buf, _problems = fr.decode(buf, rsv_allowed=0b100)
        for f in frames:
            if f.opcode == fr.OP_PONG:
                result.pongs += 1
            elif f.opcode == fr.OP_PING:
                _send(sock, fr.encode(fr.OP_PONG, f.payload, os.urandom(4)))
            elif f.opcode == fr.OP_CLOSE:
                result.ended, result.after_s = "close", time.monotonic() - t0
                result.close_code = fr.parse_close(f.payload)[0]
                _send(sock, fr.encode(fr.OP_CLOSE, f.payload[:2], os.urandom(4)))
                return
        if buf.startswith(b"HTTP/") or b"\r\nHTTP/1." in buf[:64]:
            result.ended, result.after_s = "http", time.monotonic() - t0
            result.line = buf[buf.find(b"HTTP/"):].split(b"\r\n", 1)[0].decode("latin-1")[:120]
            return


def _send(sock: socket.socket, data: bytes) -> None:
    try:
        sock.settimeout(1.0)
        sock.sendall(data)
    except OSError:
        pass


def hold_pair(target: Target, settings: Settings, seconds: float, extra_headers: tuple = ()) -> tuple[HoldResult, HoldResult]:
    """An idle session and a pinging one, side by side; both bounded by ``seconds`` + timeout."""
    out: dict[str, HoldResult] = {}

    def run(name: str, every: float | None) -> None:
        out[name] = hold(target, settings, seconds, every, extra_headers)

    threads = [threading.Thread(target=run, args=("idle", None), daemon=True, name="wsdiag-hold"),
               threading.Thread(target=run, args=("pinged", ping_interval(seconds)), daemon=True, name="wsdiag-hold")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + settings.timeout + 2)
    missing = HoldResult(target.url, seconds, "error", line="hold did not finish")
    return out.get("idle", missing), out.get("pinged", missing)


__all__ = ["hold", "hold_pair", "ping_interval"]
