"""After the 101: the service check, then the closing handshake, under the exchange's deadline.

An I/O edge (it owns no judgement; ``diagnose`` reads what it records):

1. Service check: ping and a text message, then watch for a bounded window and stop at the
   first answer (``pong``/``data`` served; ``close``/``eof``/``reset`` ended; ``invalid`` a
   frame a browser rejects; ``silent``).  Frames are read as a browser reads them
   (``core.messages``): permessage-deflate inflated when the handshake negotiated it (with
   the same ``core.deflate`` reading of the handshake that ``diagnose`` validates),
   fragmentation and UTF-8 checked.
2. Closing handshake, after a served check and a short wait for the other answer (the pong
   or the text's echo, ``SETTLE_WAIT``: closing mid-echo makes healthy servers log errors;
   read with immediate ACKs, see ``_Session.ack_now``), then, when the probe has later
   exchanges, a short idle (``IDLE_BEFORE_CLOSE``, see ``_Session.idle``):
   send close 1000, expect the close echoed, keep
   reading briefly and record what follows: EOF, a reset, silence, or bytes that are not
   frames (an HTTP response written into the stream, FAILURES.md FM-12/FM-13).  Every frame
   seen meanwhile is still validated, so a garbled close that races the pong (FM-05) is seen
   whatever the order.
3. Bounds: everything ends by the exchange's deadline plus the watch window (the bound the
   transport has always given a 101 exchange); events, frames and bytes recorded are capped
   (``MAX_EVENTS``, ``MAX_FRAMES``, ``MAX_BYTES``) and the rest is summarised.

Rule violations that do not end the service check are recorded as ``note`` events with a
finding code; the ones that do are ``invalid`` events (the verdict ``invalid``).
"""

from __future__ import annotations

import os
import socket
import time

from wsdiag.core import frames as fr
from wsdiag.core.deflate import negotiate
from wsdiag.core.findings import AfterUpgrade
from wsdiag.core.handshake import parse_response_head
from wsdiag.core.messages import Message, MessageReader
from wsdiag.net.transport import PING_PAYLOAD, TEXT_PAYLOAD, describe

CLOSE_CODE, CLOSE_REASON = 1000, "wsdiag"
CLOSE_WAIT = 1.0  # seconds to wait for the close echo
TRAIL_WAIT = 0.3  # seconds to keep reading after the echo (trailing bytes, the server's FIN)
SETTLE_WAIT = 0.25  # after the first answer, seconds to wait for the other one before closing
IDLE_BEFORE_CLOSE = 0.02  # seconds idle after both answers before closing, when the probe has later exchanges
MAX_EVENTS = 64  # events kept per session; later ones are counted
MAX_FRAMES = 5000  # frames read per session before wsdiag stops reading
MAX_BYTES = 4 << 20  # bytes read per session before wsdiag stops reading
MAX_TRAIL = 4096  # trailing non-frame bytes kept
RECEIVED_KEPT = 4096
QUICKACK = getattr(socket, "TCP_QUICKACK", 0)  # Linux only; 0: not available


def offered_extensions(request: bytes) -> list[str]:
    """The Sec-WebSocket-Extensions values of a raw request head."""
    out = []
    for line in request.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-extensions":
            out.append(value.strip().decode("latin-1"))
    return out


class _Session:
    def __init__(self, sock: socket.socket, window: float, hard_end: float, request: bytes, head: bytes):
        self.sock = sock
        self.start = time.monotonic()
        self.window_end = min(self.start + max(window, 0.0), hard_end)
        self.hard_end = hard_end
        parsed = parse_response_head(head) if head else None
        answered = parsed.get_all("Sec-WebSocket-Extensions") if parsed is not None else []
        neg = negotiate(offered_extensions(request), answered)
        self.reader = MessageReader(neg.agreement)
        self.after = AfterUpgrade(outcome="silent", window_ms=int(window * 1000))
        if neg.agreement is not None:
            self.after.extensions = {"permessage-deflate": neg.agreement.to_dict()}
        self.dropped = 0
        self.capped = False
        self.send_broken = False
        self.backlog: list = []  # items and problems read with the answer that ended the check
        self.backlog_problems: list = []
        self.pending: bytes | BaseException | None = None  # EOF or a reset met while settling

    # -- recording ----------------------------------------------------------------------

    def now_ms(self) -> float:
        return (time.monotonic() - self.start) * 1000.0

    def event(self, kind: str, **data) -> None:
        data = {"t_ms": round(self.now_ms(), 2), "event": kind, **data}
        if kind in ("pong", "data", "close", "eof", "reset", "invalid") and self.after.first_event_ms is None:
            self.after.first_event_ms = data["t_ms"]
        if len(self.after.events) < MAX_EVENTS or kind in ("invalid", "note", "capped"):
            self.after.events.append(data)
        else:
            self.dropped += 1

    def send(self, frame: bytes, label: str) -> bool:
        left = min(self.hard_end - time.monotonic(), 0.5)
        if self.send_broken or left <= 0:  # one failed or late write ends writing: bounded, like a browser
            return False
        try:
            self.sock.settimeout(left)
            self.sock.sendall(frame)
            self.event("sent", frame=label)
            return True
        except OSError as exc:
            self.send_broken = True
            self.event("send-failed", frame=label, detail=describe(exc))
            return False

    def ack_now(self) -> None:
        """Acknowledge what was read at once (TCP_QUICKACK, Linux), not after the ~40 ms delayed ACK.

        Waiting for the second answer, the server's pong and echo are two small writes; a server
        without TCP_NODELAY (gevent pywsgi, gevent-websocket) holds the second by Nagle's
        algorithm until the first is acknowledged, and the kernel delays that ACK (measured:
        pong within a millisecond, echo ~41 ms later, right after the ACK of the pong).  Only the ACK's
        timing changes, never a byte wsdiag sends.  Re-armed before each read (the kernel
        leaves quick-ACK mode by itself).
        """
        if QUICKACK:
            try:
                self.sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
            except (OSError, AttributeError):  # not TCP (a TLS object passes it through), or not Linux
                pass

    def recv(self, until: float) -> bytes | None | BaseException:
        """Bytes, b"" at EOF, None when ``until`` passed, or the OSError."""
        left = min(until, self.hard_end) - time.monotonic()
        if left <= 0:
            return None
        try:
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return None
        except OSError as exc:
            return exc
        if chunk and len(self.after.received) < RECEIVED_KEPT:
            self.after.received += chunk[: RECEIVED_KEPT - len(self.after.received)]
        return chunk

    def over_limit(self) -> bool:
        r = self.reader
        if not self.capped and (r.frames_seen >= MAX_FRAMES or r.bytes_seen >= MAX_BYTES):
            self.capped = True
            self.event("capped", frames=r.frames_seen, bytes=r.bytes_seen)
            self.event("note", code="WS431", frames=r.frames_seen, bytes=r.bytes_seen,
                       window_ms=int(self.now_ms()))
        return self.capped

    def summary(self) -> dict:
        return {"frames": self.reader.frames_seen, "bytes": self.reader.bytes_seen,
                "events_dropped": self.dropped, "capped": self.capped}

    # -- 1. the service check ----------------------------------------------------------

    def service(self, rest: bytes) -> None:
        after = self.after
        self.send(fr.encode(fr.OP_PING, PING_PAYLOAD, os.urandom(4)), "ping")
        self.send(fr.encode(fr.OP_TEXT, TEXT_PAYLOAD, os.urandom(4)), "text")
        chunk = rest
        while True:
            if chunk:
                out = self.reader.feed_ordered(chunk)
                for i, item in enumerate(out):
                    if isinstance(item, fr.FrameProblem):  # before any answer: the browser fails here
                        for p in out[i:]:
                            if isinstance(p, fr.FrameProblem):
                                self.event("invalid", code=p.code, **p.evidence)
                        after.outcome = "invalid"
                        return
                    if self._service_item(item):
                        rest_ = out[i + 1:]
                        self.backlog = [x for x in rest_ if not isinstance(x, fr.FrameProblem)]
                        self.backlog_problems = [x for x in rest_ if isinstance(x, fr.FrameProblem)]
                        return
                if self.over_limit():
                    return
            got = self.recv(self.window_end)
            if got is None:
                return
            if isinstance(got, BaseException):
                self.event("reset", detail=describe(got))
                after.outcome = "reset"
                return
            chunk = got
            if not chunk:
                self.event("eof")
                after.outcome = "eof"
                return

    def _service_item(self, item) -> bool:
        """Record one control frame or message; True when it is the answer that ends the check."""
        after = self.after
        if isinstance(item, Message):
            self.event("data", frame=item.name, opcode=item.opcode, length=item.length, frames=item.frames,
                       compressed=item.compressed, excerpt=item.data[:80].decode("utf-8", "replace"))
            after.outcome = "data"
            return True
        info = {"opcode": item.opcode, "frame": item.name, "length": len(item.payload)}
        if item.opcode == fr.OP_CLOSE:
            code, reason = fr.parse_close(item.payload)
            self.event("close", close_code=code, reason=reason[:120], **info)
            after.outcome = "close"
            return True
        if item.opcode == fr.OP_PONG:
            self.event("pong", payload_matches=item.payload == PING_PAYLOAD, **info)
            after.outcome = "pong"
            return True
        if item.opcode == fr.OP_PING:
            self.event("ping", **info)
            self.send(fr.encode(fr.OP_PONG, item.payload[:125], os.urandom(4)), "pong")
        return False

    def settle(self) -> None:
        """After the first answer, wait briefly (``SETTLE_WAIT``) for the other one (the pong, or
        the echo of the text) before closing, as a browser's page would not close mid-reply.

        Closing while the server is still writing its echo races the server's own reader:
        flask-sock (simple-websocket) on gunicorn gthread then writes to the socket its reader
        thread has just closed and logs two EBADF tracebacks, from a healthy server.  Whatever
        arrives meanwhile joins the backlog that the closing handshake reads first, so nothing
        seen here is judged differently; a close, a frame problem, EOF or a reset ends the wait.
        """
        def is_pong(x) -> bool:
            return not isinstance(x, Message) and x.opcode == fr.OP_PONG

        def is_close(x) -> bool:
            return not isinstance(x, Message) and x.opcode == fr.OP_CLOSE

        wanted = (lambda x: isinstance(x, Message)) if self.after.outcome == "pong" else is_pong
        until = time.monotonic() + SETTLE_WAIT
        while not any(wanted(x) or is_close(x) for x in self.backlog) and not self.backlog_problems:
            self.ack_now()
            if not self._read_into_backlog(until):
                return

    def idle(self, seconds: float) -> None:
        """After the answers, leave the session idle for ``seconds`` before closing, as a page would.

        A server that cannot wait for a client's next frame breaks only when it has to wait: FM-14
        (flask-sock on unpatched gevent: simple-websocket's reader thread dies on its first read
        that would block, the hub stays blocked, and every later request goes unanswered, WS726).
        Closing at once lets such a server escape by a race it runs with wsdiag's close (measured:
        a third of the sessions escaped with the close sent ~0.5 ms after the echo, none with
        10 or 20 ms idle), so the probe idles when it has later exchanges that would show the
        stall.  Whatever arrives meanwhile joins the backlog, as in ``settle``; a close, a frame
        problem, EOF or a reset ends the wait.
        """
        if seconds <= 0 or self.pending is not None or self.backlog_problems:
            return
        until = time.monotonic() + seconds
        while not any(not isinstance(x, Message) and x.opcode == fr.OP_CLOSE for x in self.backlog):
            if not self._read_into_backlog(until) or self.backlog_problems:
                return

    def _read_into_backlog(self, until: float) -> bool:
        """One bounded read for ``settle``/``idle``: what arrives joins the backlog that the closing
        handshake reads first. False when the wait must end: the cap, a reader failure, the
        deadline, or EOF/reset (kept in ``pending`` for the closing handshake)."""
        if self.capped or self.reader.failed:
            return False
        got = self.recv(until)
        if got is None:
            return False
        if not got or isinstance(got, BaseException):  # EOF, reset: the closing handshake reads it
            self.pending = got
            return False
        items, problems = self.reader.feed(got)
        self.backlog += items
        self.backlog_problems += problems
        self.over_limit()
        return True

    # -- 2. the closing handshake --------------------------------------------------------

    def closing(self, backlog: list, backlog_problems: list) -> None:
        close: dict = {"sent_code": CLOSE_CODE, "sent_reason": CLOSE_REASON, "echoed": False, "echo_code": None,
                       "echo_ms": None, "then": None, "messages_after": 0, "trailing_bytes": 0}
        self.after.closing = close
        if self.capped:
            close["then"] = "not-attempted"
            return
        sent_at = time.monotonic()
        if not self.send(fr.encode(fr.OP_CLOSE, fr.close_payload(CLOSE_CODE, CLOSE_REASON), os.urandom(4)), "close"):
            close["then"] = "send-failed"
            return
        until = sent_at + CLOSE_WAIT
        trailing = b""
        items, problems = backlog, backlog_problems
        chunk = b""
        while True:
            if chunk and trailing:  # the stream stopped being frames: keep the rest as evidence
                trailing += chunk[: max(MAX_TRAIL - len(trailing), 0)]
                close["trailing_bytes"] += len(chunk)
            elif chunk and self.reader.failed:
                close["ignored_bytes"] = close.get("ignored_bytes", 0) + len(chunk)
            elif chunk:
                items, problems = self.reader.feed(chunk)
            for item in items:
                if isinstance(item, Message):
                    close["messages_after"] += 1
                    self.event("data", frame=item.name, opcode=item.opcode, length=item.length, frames=item.frames,
                               compressed=item.compressed, excerpt=item.data[:80].decode("utf-8", "replace"))
                elif item.opcode == fr.OP_CLOSE and not close["echoed"]:
                    code, reason = fr.parse_close(item.payload)
                    close.update(echoed=True, echo_code=code, echo_reason=reason[:120],
                                 echo_ms=round((time.monotonic() - sent_at) * 1000, 2))
                    self.event("close-echo", close_code=code, reason=reason[:120])
                    until = time.monotonic() + TRAIL_WAIT
            for p in problems:
                if p.code == "WS409":  # HTTP where frames belong
                    at = chunk.find(b"HTTP/")
                    tail = chunk[at:] if at >= 0 else str(p.evidence.get("line", "")).encode("latin-1")
                    trailing = tail[:MAX_TRAIL] or b"HTTP/"
                    close["trailing_bytes"] += len(tail)
                    until = time.monotonic() + TRAIL_WAIT
                elif p.code == "WS407":  # an invalid code in the close that answers ours (FM-05)
                    reason = str(p.evidence.get("reason", ""))
                    echo = CLOSE_REASON in reason  # gevent-websocket 0.10.1 echoes our reason's repr
                    self.event("note", code="WS437" if echo else "WS433", close_code=p.evidence.get("close_code"),
                               reason=reason, sent_reason=CLOSE_REASON)
                else:
                    self.event("note", code=p.code, **p.evidence)
            items, problems = [], []
            if self.reader.failed and not trailing:
                until = min(until, time.monotonic() + TRAIL_WAIT)  # a browser has failed the connection
            if self.over_limit():
                close["then"] = "capped"
                break
            got = self.recv(until) if self.pending is None else self.pending
            self.pending = None
            if got is None:
                close["then"] = "open"
                break
            if isinstance(got, BaseException):
                close["then"] = "reset"
                break
            chunk = got
            if not chunk:
                close["then"] = "eof"
                break
        if trailing:
            self._trailing(trailing, close)
        elif not close["echoed"] and not self.reader.failed:
            wait_ms = round((time.monotonic() - sent_at) * 1000)
            if close["then"] == "eof":  # racy in simple-websocket on threaded servers: a fact, not a defect
                self.event("note", code="WS436", wait_ms=wait_ms)
            else:
                what = {"reset": "the connection was reset", "open": "no answer, the connection stays open"}.get(
                    close["then"], str(close["then"]))
                self.event("note", code="WS432", outcome=what, wait_ms=wait_ms)

    def _trailing(self, data: bytes, close: dict) -> None:
        head = parse_response_head(data)
        line = data.split(b"\n", 1)[0].rstrip(b"\r")[:80].decode("latin-1")
        server = head.get("Server") if head is not None else None
        status = head.status if head is not None else None
        close["trailing"] = {"line": line, "status": status, "server": server,
                             "excerpt": data[:200].decode("latin-1")}
        code = "WS435" if status is not None and status >= 500 else "WS434"
        self.event("note", code=code, line=line, status=status, server=server,
                   server_hint=f"; Server: {server}" if server else "")


def watch_session(sock: socket.socket, rest: bytes, window: float, hard_end: float,
                  request: bytes = b"", head: bytes = b"", idle: float = 0.0) -> AfterUpgrade:
    """Service check, then (when served) the closing handshake; see the module docstring.

    ``idle``: seconds the served session stays idle before wsdiag closes it (``_Session.idle``).
    """
    s = _Session(sock, window, hard_end, request, head)
    s.service(rest)
    after = s.after
    if after.outcome in ("pong", "data"):
        s.settle()
        s.idle(idle)
        s.closing(s.backlog, s.backlog_problems)
    elif after.outcome == "silent" and not s.capped:
        s.event("window-ended")
    after.stream = s.summary()
    return after


__all__ = ["watch_session", "offered_extensions", "PING_PAYLOAD", "TEXT_PAYLOAD"]
