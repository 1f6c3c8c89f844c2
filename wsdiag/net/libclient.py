"""The ``websocket-client`` profile: the real library performs the handshake.

An I/O edge. wsdiag opens the stream itself (same DNS, proxy and TLS handling and the
same deadline as every other profile) and hands the connected socket to the library, which
then writes its own request and reads and checks the answer as it would for a user.  A thin
recorder around the socket keeps the bytes both ways, so the diagnosis sees the same evidence
as for raw profiles, plus the library's own verdict.

Bounds (issue 15): the library never follows a redirect (it would open its own socket,
outside wsdiag's deadline, to any host the server names): a 3xx is recorded as evidence,
following it is ``--follow``/bisection's job.  After the 101 the recorder stops the library
at ``MAX_BYTES`` bytes and the watch at ``MAX_FRAMES`` frames or ``MAX_EVENTS`` events
(a ping storm or a frame flood), the rest summarised in ``after.stream``.
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
    library_row,
    open_stream,
)


REDIRECT_NOT_FOLLOWED = ("WebSocketException: redirect not followed (websocket-client would follow it "
                         "on a new connection; wsdiag records it instead)")
MAX_EVENTS = 64  # events kept per watch (wsdiag.net.session keeps the same bounds)
MAX_FRAMES = 5000
MAX_BYTES = 4 << 20


class HeadTooLarge(OSError):
    """The answer's head grew past MAX_HEAD before the library finished reading it."""


class Flooded(OSError):
    """The server sent more than MAX_BYTES after the upgrade; wsdiag stopped reading."""


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
        self.after_bytes = 0  # bytes read after the handshake

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
        if not self.handshaking:
            self.after_bytes += len(data)
            if self.after_bytes > MAX_BYTES:
                raise Flooded(f"over {MAX_BYTES} bytes after the upgrade")
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
        "redirect_limit": 0,  # a redirect is evidence; never followed on the library's own socket
    }
    if origin:
        options["origin"] = origin
    if subprotocols:
        options["subprotocols"] = list(subprotocols)
    try:
        ws.connect(target.url, **options)
        ex.timings["head_ms"] = clock.ms()
        _split(ex, rec)
        status = getattr(getattr(ws, "handshake_response", None), "status", 101)
        if status != 101:  # websocket-client < 1.9.2 returns a redirect answer instead of raising
            ex.library_error = REDIRECT_NOT_FOLLOWED if 300 <= status < 400 else f"handshake answered {status}"
            return ex
        rec.handshaking = False
        rec.deadline = time.monotonic() + settings.watch + 0.25
        ex.after = _watch(ws, settings.watch, rec)
    except Exception as exc:  # noqa: BLE001  one table (transport.classify) sorts every exception
        _split(ex, rec)
        row = library_row(exc)
        closed_after_head = row == ("closed-before-response", True) and bool(ex.response_head)
        if (row is not None and row[1] and not closed_after_head) or (row is None and isinstance(exc, OSError)):
            ex.error_phase, ex.error_kind, ex.error_detail = "response", classify(exc, "response"), describe(exc)
            ex.received_before_error = len(rec.received)
        elif str(exc).startswith("Redirect limit exhausted"):
            ex.library_error = REDIRECT_NOT_FOLLOWED
        elif type(exc).__name__ == "WebSocketBadStatusException":
            # the library's text continues with the answer's headers (Set-Cookie too) and body: the
            # recorded bytes are the evidence, so only its verdict is kept
            ex.library_error = f"{type(exc).__name__}: {str(exc).split(' -+-+- ')[0].splitlines()[0][:200]}"
        else:  # the library's verdict on the answer (or odd bytes it choked on): kept as evidence
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


def _watch(ws, window: float, rec: _Recorder | None = None) -> AfterUpgrade:
    """The library's view of the socket after the 101: ping, text, first answer (bounded)."""
    try:
        return _watch_bounded(ws, window, rec)
    finally:
        if rec is not None:
            rec.handshaking = True  # the close courtesy must not count as a flood


def _watch_bounded(ws, window: float, rec: _Recorder | None) -> AfterUpgrade:
    import websocket
    from websocket import ABNF

    start = time.monotonic()
    after = AfterUpgrade(outcome="silent", window_ms=int(window * 1000))
    stream = {"frames": 0, "bytes": 0, "events_dropped": 0, "capped": False}
    after.stream = stream

    def event(kind: str, **data) -> None:
        t = round((time.monotonic() - start) * 1000.0, 2)
        if len(after.events) < MAX_EVENTS or kind in ("invalid", "note", "capped"):
            after.events.append({"t_ms": t, "event": kind, **data})
        else:
            stream["events_dropped"] += 1
        if kind in ("pong", "data", "close", "eof", "reset", "invalid") and after.first_event_ms is None:
            after.first_event_ms = t

    def capped() -> AfterUpgrade:
        stream["capped"] = True
        stream["bytes"] = rec.after_bytes if rec is not None else stream["bytes"]
        event("capped", frames=stream["frames"], bytes=stream["bytes"])
        event("note", code="WS431", frames=stream["frames"], bytes=stream["bytes"],
              window_ms=int((time.monotonic() - start) * 1000))
        return after

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
        if stream["frames"] >= MAX_FRAMES:
            return capped()
        try:
            ws.settimeout(left)
            opcode, frame = ws.recv_data_frame(True)
            stream["frames"] += 1
            stream["bytes"] = rec.after_bytes if rec is not None else 0
        except Flooded:
            return capped()
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
