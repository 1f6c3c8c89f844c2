"""The ``websocket-client`` profile: the real library performs the handshake.

An I/O edge. wsdiag opens the stream itself (same DNS, proxy and TLS handling and the
same deadline as every other profile) and hands the connected socket to the library, which
then writes its own request, reads and checks the answer and follows redirects exactly as
it would for a user.  A thin recorder around the socket keeps the bytes both ways, so the
diagnosis sees the same evidence as for raw profiles, plus the library's own verdict.
"""

from __future__ import annotations

import socket
import time

from wsdiag.core.findings import AfterUpgrade, Exchange
from wsdiag.core.handshake import MAX_HEAD, Target, find_head_end
from wsdiag.net.transport import (
    PING_PAYLOAD,
    TEXT_PAYLOAD,
    Clock,
    ExchangeError,
    Settings,
    classify,
    describe,
    open_stream,
)


class HeadTooLarge(OSError):
    """The answer's head grew past MAX_HEAD before the library finished reading it."""


class _Recorder:
    """Socket stand-in that records bytes and enforces wsdiag's bounds on the library.

    websocket-client's timeout is per read, so a server dripping one byte a second would
    keep it waiting forever; every read here is cut at ``deadline`` (absolute, monotonic),
    and the head may not grow past MAX_HEAD while ``handshaking``.
    """

    def __init__(self, sock: socket.socket, deadline: float):
        self._sock = sock
        self.sent = bytearray()
        self.received = bytearray()
        self.deadline = deadline
        self.handshaking = True

    def send(self, data) -> int:
        n = self._sock.send(data)
        self.sent += bytes(data[:n])
        return n

    def sendall(self, data) -> None:
        self._sock.sendall(data)
        self.sent += bytes(data)

    def recv(self, n: int) -> bytes:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("wsdiag deadline reached")
        if self.handshaking and len(self.received) > MAX_HEAD:
            raise HeadTooLarge(f"response head exceeds {MAX_HEAD} bytes")
        current = self._sock.gettimeout()
        self._sock.settimeout(left if current is None else min(current, left) or left)
        try:
            data = self._sock.recv(n)
        finally:
            self._sock.settimeout(current)
        if len(self.received) < 70000:
            self.received += data
        return data

    def __getattr__(self, name):
        return getattr(self._sock, name)


def run_library_exchange(
    name: str,
    target: Target,
    settings: Settings,
    *,
    origin: str | None = None,
    subprotocols: tuple[str, ...] = (),
    extra_headers: tuple[tuple[str, str], ...] = (),
) -> Exchange:
    """Connect with websocket-client over a recorded socket; watch like the raw profiles."""
    import websocket  # imported here: only this profile needs it

    ex = Exchange(name=name, url=target.url, driver="websocket-client")
    clock = Clock(settings.timeout)
    try:
        sock = open_stream(target, settings, clock, ex.timings)
    except ExchangeError as exc:
        ex.error_phase, ex.error_kind, ex.error_detail = exc.phase, exc.kind, exc.detail
        ex.timings["total_ms"] = clock.ms()
        return ex
    rec = _Recorder(sock, clock.deadline)
    ws = websocket.WebSocket(enable_multithread=False)
    options: dict = {
        "socket": rec,
        "timeout": max(clock.left(), 0.05),
        "header": [f"{n}: {v}" for n, v in extra_headers if v != ""],
        "redirect_limit": 3,
    }
    if origin:
        options["origin"] = origin
    if subprotocols:
        options["subprotocols"] = list(subprotocols)
    try:
        ws.connect(target.url, **options)
        ex.timings["head_ms"] = clock.ms()
        _split(ex, rec)
        rec.handshaking = False
        rec.deadline = time.monotonic() + settings.watch + 0.25
        ex.after = _watch(ws, settings.watch)
    except HeadTooLarge as exc:
        _split(ex, rec)
        ex.error_phase, ex.error_kind, ex.error_detail = "response", "response-head-too-large", str(exc)
        ex.received_before_error = len(rec.received)
    except websocket.WebSocketBadStatusException as exc:
        _split(ex, rec)
        ex.library_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    except websocket.WebSocketTimeoutException as exc:
        _split(ex, rec)
        ex.error_phase, ex.error_kind, ex.error_detail = "response", "no-response", describe(exc)
        ex.received_before_error = len(rec.received)
    except websocket.WebSocketConnectionClosedException as exc:
        _split(ex, rec)
        if ex.response_head:
            ex.library_error = f"{type(exc).__name__}: {exc}"
        else:
            ex.error_phase, ex.error_kind, ex.error_detail = "response", "closed-before-response", describe(exc)
            ex.received_before_error = len(rec.received)
    except websocket.WebSocketException as exc:
        _split(ex, rec)
        ex.library_error = f"{type(exc).__name__}: {str(exc)[:200]}"
    except OSError as exc:
        _split(ex, rec)
        ex.error_phase, ex.error_kind, ex.error_detail = "response", classify(exc, "response"), describe(exc)
        ex.received_before_error = len(rec.received)
    except Exception as exc:  # the library can raise odd things on odd bytes; keep the evidence
        _split(ex, rec)
        ex.library_error = f"{type(exc).__name__}: {str(exc)[:200]}"
    finally:
        try:
            sock.close()
        except OSError:
            pass
        ex.timings["total_ms"] = clock.ms()
    return ex


def _split(ex: Exchange, rec: _Recorder) -> None:
    end = find_head_end(rec.sent)
    ex.request = bytes(rec.sent[:end] if end else rec.sent)
    data = bytes(rec.received)
    end = find_head_end(data)
    ex.response_head = data[:end] if end else data[:65536]
    ex.body = data[end:][:4096] if end else b""


def _watch(ws, window: float) -> AfterUpgrade:
    """The library's view of the socket after the 101: ping, text, first answer."""
    import websocket
    from websocket import ABNF

    start = time.monotonic()
    after = AfterUpgrade(outcome="silent", window_ms=int(window * 1000))

    def event(kind: str, **data) -> None:
        t = round((time.monotonic() - start) * 1000.0, 2)
        after.events.append({"t_ms": t, "event": kind, **data})
        if kind in ("pong", "data", "close", "eof", "reset", "invalid") and after.first_event_ms is None:
            after.first_event_ms = t

    try:
        ws.ping(PING_PAYLOAD)
        event("sent", frame="ping")
        ws.send(TEXT_PAYLOAD.decode())
        event("sent", frame="text")
    except (websocket.WebSocketException, OSError) as exc:
        event("send-failed", detail=describe(exc))
    while True:
        left = window - (time.monotonic() - start)
        if left <= 0:
            event("window-ended")
            return after
        try:
            ws.settimeout(left)
            opcode, frame = ws.recv_data_frame(True)
        except websocket.WebSocketTimeoutException:
            event("window-ended")
            return after
        except websocket.WebSocketConnectionClosedException:
            event("eof")
            after.outcome = "eof"
            return after
        except websocket.WebSocketProtocolException as exc:
            event("invalid", detail=str(exc)[:200])
            after.outcome = "invalid"
            return after
        except (ConnectionResetError, BrokenPipeError) as exc:
            event("reset", detail=describe(exc))
            after.outcome = "reset"
            return after
        except (websocket.WebSocketException, OSError, ValueError) as exc:
            event("invalid", detail=f"{type(exc).__name__}: {str(exc)[:200]}")
            after.outcome = "invalid"
            return after
        if opcode == ABNF.OPCODE_PONG:
            event("pong", payload_matches=frame.data == PING_PAYLOAD)
            after.outcome = "pong"
        elif opcode == ABNF.OPCODE_CLOSE:
            data = frame.data or b""
            code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
            event("close", close_code=code, reason=data[2:120].decode("utf-8", "replace"))
            after.outcome = "close"
            return after
        elif opcode == ABNF.OPCODE_PING:
            event("ping")
            continue
        else:
            event("data", excerpt=(frame.data or b"")[:80].decode("utf-8", "replace") if isinstance(frame.data, bytes) else str(frame.data)[:80])
            after.outcome = "data"
        try:
            ws.close(timeout=0.2)
        except Exception:  # closing is a courtesy; the verdict is already known
            pass
        return after
