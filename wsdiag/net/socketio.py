"""The Socket.IO probe: Engine.IO over WebSocket and over polling, the connect, the upgrade.

An I/O edge like ``transport``: every request runs under its own deadline through
``transport.open_stream`` (same DNS/proxy/TLS code and error table), and what crossed the
wire is recorded in ``Exchange`` objects.  Judging is left to ``core.engineio.diagnose``.

What it sends is what the JavaScript client sends, nothing a Socket.IO server would reject:
the WebSocket transport (``0`` OPEN, ``40`` connect, pongs to ``2`` pings, ``41`` + ``1`` to
leave); the JS client's path (polling OPEN, ``40`` by POST, one poll, then the upgrade on the
same sid with ``2probe`` / ``3probe`` / ``5``); and, when asked, several polling sessions
addressed again by sid (``3`` then ``1`` by POST) to tell several processes apart.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from wsdiag.core import engineio as eio_
from wsdiag.core import frames as fr
from wsdiag.core.findings import AfterUpgrade, Exchange
from wsdiag.core.record import replace
from wsdiag.core.handshake import (
    MAX_HEAD,
    Target,
    build_request,
    find_head_end,
    new_key,
    parse_response_head,
)
from wsdiag.core.profiles import PROFILES
from wsdiag.core.engineio import SioOptions, parse_auth  # noqa: F401  (the options are core data)
from wsdiag.net.transport import Clock, ExchangeError, Settings, classify, describe, open_stream

MAX_BODY = 64 * 1024



@dataclass
class HttpAnswer:
    ex: Exchange
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def message(self) -> str | None:
        return eio_.server_message(self.body) if self.status == 400 else None


# -- plain HTTP (polling) --------------------------------------------------------------


def _head_lines(target: Target, method: str, resource: str, origin: str | None,
                extra: tuple[tuple[str, str], ...], body: bytes) -> bytes:
    lines = [("Host", target.host_header), ("User-Agent", "wsdiag"), ("Accept", "*/*")]
    if origin:
        lines.append(("Origin", origin))
    if method == "POST":
        lines += [("Content-Type", "text/plain;charset=UTF-8"), ("Content-Length", str(len(body)))]
    lines.append(("Connection", "close"))
    for name, value in extra:
        if name.lower() in ("upgrade", "connection", "sec-websocket-key", "sec-websocket-version",
                            "sec-websocket-extensions", "content-length"):
            continue
        lines = [(n, v) for n, v in lines if n.lower() != name.lower()]
        if value:
            lines.append((name, value))
    head = f"{method} {resource} HTTP/1.1\r\n" + "".join(f"{n}: {v}\r\n" for n, v in lines) + "\r\n"
    return head.encode("latin-1", "replace") + body


def http(name: str, target: Target, settings: Settings, method: str, resource: str, *,
         origin: str | None, extra=(), body: bytes = b"") -> HttpAnswer:
    """One HTTP request on its own connection; the whole body is read (bounded)."""
    url = f"{'https' if target.secure else 'http'}://{target.host_header}{resource}"
    req = _head_lines(target, method, resource, origin, extra, body)
    _, ans = _request(HttpAnswer(Exchange(name=name, url=url, request=req)), target, settings, req)
    return ans


def _request(ans: HttpAnswer, target: Target, settings: Settings, raw: bytes, eio: int | None = None):
    """Send ``raw`` on a new connection and read the answer under one deadline.

    The one exchange loop of the Socket.IO mode (polling requests and the WebSocket handshake):
    after a 101 with ``eio`` given, the open socket comes back as a WsConn; otherwise the body is
    read (bounded) and the socket closed.  Errors land on the Exchange, never raise.
    """
    ex = ans.ex
    clock = Clock(settings.timeout)
    sock = None
    buf = b""
    phase = "dns"
    try:
        sock = open_stream(target, settings, clock, ex.timings)
        phase = "send"
        sock.settimeout(clock.check("send"))
        sock.sendall(raw)
        phase = "response"
        while (end := find_head_end(buf)) is None:
            if len(buf) > MAX_HEAD:
                raise ExchangeError("response", "response-head-too-large", str(MAX_HEAD))
            sock.settimeout(max(clock.check("response"), 0.001))
            chunk = sock.recv(65536)
            if not chunk:
                raise ExchangeError("response", "closed-before-response", "EOF")
            buf += chunk
        ex.timings["head_ms"] = clock.ms()
        ex.response_head, rest = buf[:end], buf[end:]
        head = parse_response_head(ex.response_head)
        if head is None:
            raise ExchangeError("response", "closed-before-response", "not HTTP")
        ans.status = head.status
        ans.headers = {n.lower(): v for n, v in head.headers}
        if eio is not None and head.status == 101:
            conn = WsConn(sock, rest, ex, eio, clock.t0)
            sock = None
            return conn, ans
        ans.body = _read_http_body(sock, rest, ans.headers, clock)
        ex.body = ans.body[:4096]
    except ExchangeError as exc:
        ex.error_phase, ex.error_kind, ex.error_detail = exc.phase, exc.kind, exc.detail
    except (OSError, ValueError) as exc:
        ex.error_phase = phase
        ex.error_kind = classify(exc, phase) if isinstance(exc, OSError) else "reset-before-response"
        ex.error_detail = describe(exc)
    finally:
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
        ex.timings["total_ms"] = clock.ms()
    return None, ans


def _read_http_body(sock, rest: bytes, headers: dict[str, str], clock: Clock) -> bytes:
    length = headers.get("content-length")
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    buf = rest
    want = int(length) if length and length.strip().isdigit() else None

    def done() -> bool:
        if want is not None:
            return len(buf) >= want
        if chunked:
            return _dechunk(buf) is not None
        return False

    while not done() and len(buf) < MAX_BODY:
        sock.settimeout(max(clock.check("response"), 0.001))
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    if want is not None:
        return buf[:want]
    if chunked:
        return _dechunk(buf) or b""
    return buf


def _dechunk(buf: bytes) -> bytes | None:
    """The body of a complete chunked message, or None while incomplete."""
    out = b""
    i = 0
    while True:
        nl = buf.find(b"\r\n", i)
        if nl < 0:
            return None
        try:
            n = int(buf[i:nl].split(b";")[0], 16)
        except ValueError:
            return out
        if n == 0:
            return out
        if len(buf) < nl + 2 + n + 2:
            return None
        out += buf[nl + 2:nl + 2 + n]
        i = nl + 2 + n + 2


# -- WebSocket -------------------------------------------------------------------------


class WsConn:
    """An upgraded connection speaking Engine.IO text packets; answers pings itself."""

    def __init__(self, sock, rest: bytes, ex: Exchange, eio: int, clock_start: float):
        self.sock, self.buf, self.ex, self.eio = sock, rest, ex, eio
        self.t0 = clock_start
        self.closed: tuple | None = None  # ("close", code, reason) | ("eof",) | ("reset", detail)
        self.after = ex.after = AfterUpgrade(outcome="silent")

    def _event(self, kind: str, **data) -> None:
        ev = {"t_ms": round((time.monotonic() - self.t0) * 1000, 2), "event": kind, **data}
        self.after.events.append(ev)
        if self.after.first_event_ms is None and kind in ("data", "close", "eof", "reset"):
            self.after.first_event_ms = ev["t_ms"]

    def send(self, text: str, shown: str | None = None) -> bool:
        """Send one Engine.IO packet; ``shown`` is what the report records instead (secrets)."""
        try:
            self.sock.settimeout(2.0)
            self.sock.sendall(fr.encode(fr.OP_TEXT, text.encode("utf-8"), os.urandom(4)))
            self._event("sent", text=(text if shown is None else shown)[:120])
            return True
        except OSError as exc:
            self._event("send-failed", detail=describe(exc))
            self.closed = ("reset", describe(exc))
            return False

    def recv(self, timeout: float) -> str | None:
        """The next Engine.IO packet that is not a ping/noop; None at timeout or once closed."""
        end = time.monotonic() + timeout
        while self.closed is None:
            frames, self.buf, problems = fr.decode(self.buf)
            if problems:
                self._event("invalid", code=problems[0].code)
                self.closed = ("invalid", problems[0].code)
                self.after.outcome = "invalid"
                return None
            for i, f in enumerate(frames):
                if f.opcode == fr.OP_CLOSE:
                    code, reason = fr.parse_close(f.payload)
                    self._event("close", close_code=code, reason=reason[:120])
                    self.closed = ("close", code, reason)
                    self.after.outcome = "close"
                    return None
                if f.opcode == fr.OP_PING:
                    self._raw(fr.encode(fr.OP_PONG, f.payload[:125], os.urandom(4)))
                    continue
                if f.opcode != fr.OP_TEXT:
                    self._event("data", frame=f.name, length=len(f.payload))
                    continue
                text = f.payload.decode("utf-8", "replace")
                self._event("data", text=text[:200])
                self.after.outcome = "data"
                if text == str(eio_.PING) and self.eio >= 4:
                    self.send(str(eio_.PONG))
                    continue
                if text == str(eio_.NOOP):
                    continue
                rest = frames[i + 1:]
                if rest:  # keep frames not consumed yet
                    self.buf = b"".join(_reencode(g) for g in rest) + self.buf
                return text
            left = end - time.monotonic()
            if left <= 0:
                return None
            try:
                self.sock.settimeout(left)
                chunk = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                return None
            except OSError as exc:
                self._event("reset", detail=describe(exc))
                self.closed = ("reset", describe(exc))
                self.after.outcome = "reset"
                return None
            if not chunk:
                self._event("eof")
                self.closed = ("eof",)
                self.after.outcome = "eof"
                return None
            self.buf += chunk
        return None

    def _raw(self, data: bytes) -> None:
        try:
            self.sock.settimeout(2.0)
            self.sock.sendall(data)
        except OSError:
            pass

    def close(self, goodbye: tuple[str, ...] = ()) -> None:
        """Leave as the JS client does (``41``, ``1``), then close 1000; bounded."""
        if self.closed is None:
            for text in goodbye:
                if not self.send(text):
                    break
        if self.closed is None:
            self._raw(fr.encode(fr.OP_CLOSE, fr.close_payload(1000), os.urandom(4)))
            deadline = time.monotonic() + 0.5
            try:  # until the server's close frame (the closing handshake is complete) or EOF
                while time.monotonic() < deadline:
                    frames, self.buf, problems = fr.decode(self.buf)
                    if problems or any(f.opcode == fr.OP_CLOSE for f in frames):
                        break
                    self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
                    chunk = self.sock.recv(4096)
                    if not chunk:
                        break
                    self.buf += chunk
            except OSError:
                pass
        try:
            self.sock.close()
        except OSError:
            pass


def _reencode(f: fr.Frame) -> bytes:
    """A decoded server frame back into bytes (unmasked), to keep it in the buffer."""
    n = len(f.payload)
    head = bytes([(0x80 if f.fin else 0) | (f.rsv << 4) | f.opcode])
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + n.to_bytes(2, "big")
    else:
        head += bytes([127]) + n.to_bytes(8, "big")
    return head + f.payload


def ws_open(name: str, target: Target, settings: Settings, resource: str, *, origin: str | None,
            extra=(), eio: int = 4) -> tuple[WsConn | None, HttpAnswer]:
    """The WebSocket handshake for an Engine.IO URL; a WsConn after a 101."""
    req = build_request(PROFILES["minimal"], target, new_key(), origin=origin,
                        extra_headers=tuple(extra) + (("User-Agent", "wsdiag"),), resource=resource)
    url = f"{target.scheme}://{target.host_header}{resource}"
    return _request(HttpAnswer(Exchange(name=name, url=url, request=req.raw)), target, settings, req.raw, eio)


# -- the probe -------------------------------------------------------------------------


def _wait_connect_answer(conn: WsConn, namespace: str, wait: float, eio: int):
    """Read until the CONNECT / CONNECT_ERROR for ``namespace``; (kind, value) or None."""
    end = time.monotonic() + wait
    while (left := end - time.monotonic()) > 0:
        text = conn.recv(left)
        if text is None:
            return None
        got = _connect_answer(text, namespace)
        if got is not None:
            return got
    return None


def _connect_answer(text: str, namespace: str):
    try:
        ptype, data = eio_.parse_packet(text)
        if ptype != eio_.MESSAGE:
            return None
        pkt = eio_.parse_socketio(data)
    except eio_.EngineIOError:
        return None
    if pkt.namespace != eio_.normalize_namespace(namespace):
        return None
    if pkt.ptype == eio_.SIO_CONNECT:
        return ("40", pkt.data)
    if pkt.ptype == eio_.SIO_CONNECT_ERROR:
        return ("44", eio_.connect_error_message(pkt))
    return None


def _connect_over_ws(conn: WsConn, eio: int, opts: SioOptions, run: eio_.PathRun) -> None:
    ns = eio_.normalize_namespace(opts.namespace)
    if not (eio < 4 and ns == "/"):  # Socket.IO rev 4 connects the default namespace itself
        packet = eio_.encode_connect(ns, opts.auth, eio)
        shown = eio_.encode_connect(ns, None, eio) + ("{auth: redacted}" if opts.auth is not None else "")
        if not conn.send(packet, shown):
            run.stop("connect", "the connection failed while sending the connect")
            return
    got = _wait_connect_answer(conn, ns, opts.connect_wait, eio)
    if got is None:
        if conn.closed is not None:
            run.stop("connect", f"the server ended the socket after the connect ({conn.closed[0]})")
        else:
            run.stop("connect", f"no answer to the connect within {opts.connect_wait:g}s", no_answer=True)
        return
    run.connect = got
    run.reached = "connected" if got[0] == "40" else "connect refused"


def websocket_path(target: Target, settings: Settings, opts: SioOptions, eio: int, origin: str,
                   extra) -> tuple[eio_.PathRun, list[Exchange]]:
    """The WebSocket transport directly (what ``transports: ['websocket']`` clients do)."""
    run = eio_.PathRun("websocket")
    resource = eio_.engineio_resource(target.resource, eio=eio, transport="websocket", path=opts.path,
                                      keep_eio=not opts.eio_forced)
    conn, ans = ws_open("socketio-websocket", target, settings, resource, origin=origin, extra=extra, eio=eio)
    run.http = [_http_fact("websocket handshake", ans)]
    if conn is None:
        run.stop("handshake", _answer_detail(ans), status=ans.status, message=ans.message,
                 error=ans.ex.error_kind, server=ans.headers.get("server"), exchange=ans.ex)
        return run, [ans.ex]
    run.reached = "101"
    try:
        text = conn.recv(settings.timeout)
        if text is None:
            run.stop("open", "101, then " + _closed_detail(conn), abandoned=True)
            return run, [ans.ex]
        try:
            ptype, data = eio_.parse_packet(text)
            if ptype != eio_.OPEN:
                raise eio_.EngineIOError(f"first packet is {eio_.PACKET_NAMES[ptype]}, not open")
            run.open = eio_.parse_open(data)
        except eio_.EngineIOError as exc:
            run.stop("open", f"not an Engine.IO OPEN packet: {text[:60]!r} ({exc})", not_engineio=True)
            return run, [ans.ex]
        run.reached = "open"
        _connect_over_ws(conn, eio, opts, run)
    finally:
        ns = eio_.normalize_namespace(opts.namespace)
        bye = ((eio_.encode_disconnect(ns),) if run.connect and run.connect[0] == "40" else ()) + (str(eio_.CLOSE),)
        conn.close(bye if run.open is not None else ())
    return run, [ans.ex]


def polling_path(target: Target, settings: Settings, opts: SioOptions, eio: int, origin: str,
                 extra, upgrade: bool = True) -> tuple[eio_.PathRun, list[Exchange]]:
    """The JavaScript client's path: polling OPEN, connect, one poll, then the upgrade on that sid."""
    run = eio_.PathRun("polling")
    exs: list[Exchange] = []
    keep = not opts.eio_forced

    def res(transport, sid=None):
        return eio_.engineio_resource(target.resource, eio=eio, transport=transport, sid=sid, path=opts.path,
                                      keep_eio=keep)

    def post(step: str, sid: str, packets: list[str]) -> HttpAnswer:
        body = eio_.encode_payload(packets, eio).encode("utf-8")
        a = http(f"socketio-{step}", target, settings, "POST", res("polling", sid), origin=origin, extra=extra, body=body)
        exs.append(a.ex)
        run.http.append(_http_fact(step, a))
        return a

    a = http("socketio-polling", target, settings, "GET", res("polling"), origin=origin, extra=extra)
    exs.append(a.ex)
    run.http.append(_http_fact("polling handshake", a))
    if a.status != 200:
        run.stop("handshake", _answer_detail(a), status=a.status, message=a.message, error=a.ex.error_kind,
                 server=a.headers.get("server"), exchange=a.ex)
        return run, exs
    try:
        packets = eio_.decode_payload(a.body.decode("utf-8", "replace"), eio)
        ptype, data = eio_.parse_packet(packets[0] if packets else "")
        if ptype != eio_.OPEN:
            raise eio_.EngineIOError("the first packet is not open")
        run.open = eio_.parse_open(data)
    except eio_.EngineIOError as exc:
        run.stop("open", f"200 without an Engine.IO OPEN packet ({exc}): {a.body[:60]!r}", not_engineio=True)
        return run, exs
    early = [_connect_answer(t, opts.namespace) for t in packets[1:]]  # rev 4 servers: "40" rides along
    run.reached = "open"
    sid = run.open.sid
    ns = eio_.normalize_namespace(opts.namespace)
    # the connect (rev 4 servers connect the default namespace themselves)
    if not (eio < 4 and ns == "/"):
        p = post("connect", sid, [eio_.encode_connect(ns, opts.auth, eio)])
        if opts.auth is not None:  # keep the auth payload (often a token) out of the report
            head, _, _ = p.ex.request.partition(b"\r\n\r\n")
            p.ex.request = head + b"\r\n\r\n" + eio_.encode_connect(ns, None, eio).encode() + b"{auth: redacted}"
        if p.status != 200:
            run.stop("connect", _answer_detail(p), status=p.status, message=p.message, error=p.ex.error_kind,
                     exchange=p.ex)
            return run, exs
    got = next((x for x in early if x is not None), None)
    if got is None:
        wait = replace(settings, timeout=min(settings.timeout, opts.connect_wait))
        g = http("socketio-poll", target, wait, "GET", res("polling", sid), origin=origin, extra=extra)
        exs.append(g.ex)
        run.http.append(_http_fact("poll", g))
        if g.status is None and g.ex.error_kind == "no-response":  # the poll waited: no answer to the connect
            run.stop("connect", f"no answer to the connect within {opts.connect_wait:g}s", no_answer=True)
            post("close", sid, [str(eio_.CLOSE)])
            return run, exs
        if g.status != 200:
            run.stop("connect", _answer_detail(g), status=g.status, message=g.message, error=g.ex.error_kind,
                     exchange=g.ex)
            return run, exs
        try:
            for text in eio_.decode_payload(g.body.decode("utf-8", "replace"), eio):
                got = got or _connect_answer(text, ns)
        except eio_.EngineIOError:
            pass
    if got is None:
        run.stop("connect", f"the poll did not carry the connect answer: {g.body[:80]!r}", no_answer=True)
        post("close", sid, [str(eio_.CLOSE)])
        return run, exs
    run.connect = got
    if got[0] != "40":
        run.reached = "connect refused"
        post("close", sid, [str(eio_.CLOSE)])
        return run, exs
    run.reached = "connected"
    if not upgrade:
        post("close", sid, [eio_.encode_disconnect(ns), str(eio_.CLOSE)])
        return run, exs
    if "websocket" not in run.open.upgrades:
        run.stop("upgrade", f"the OPEN packet offers no WebSocket upgrade (upgrades {run.open.upgrades})",
                 no_upgrade=True)
        post("close", sid, [eio_.encode_disconnect(ns), str(eio_.CLOSE)])
        return run, exs
    conn, w = ws_open("socketio-upgrade", target, settings, res("websocket", sid), origin=origin, extra=extra, eio=eio)
    exs.append(w.ex)
    run.http.append(_http_fact("upgrade handshake", w))
    if conn is None:
        run.stop("upgrade handshake", _answer_detail(w), status=w.status, message=w.message, error=w.ex.error_kind,
                 server=w.headers.get("server"), exchange=w.ex)
        _replay_sid(run, post, sid, how=f"refused ({w.status})" if w.status else "not answered")
        return run, exs
    run.reached = "upgrade 101"
    upgraded = False
    try:
        conn.send("2probe")
        answer = conn.recv(settings.timeout)
        if answer != "3probe":
            detail = _closed_detail(conn) if answer is None else f"got {answer[:40]!r} instead of 3probe"
            run.stop("upgrade probe", "101, then " + detail, abandoned=answer is None and conn.closed is not None)
            return run, exs
        run.reached = "3probe"
        if not conn.send(str(eio_.UPGRADE)):
            run.stop("upgrade", "the connection failed while sending the upgrade packet (5)")
            return run, exs
        upgraded = True
        run.reached = "upgraded"
    finally:
        conn.close((eio_.encode_disconnect(ns), str(eio_.CLOSE)) if upgraded else ())
        if not upgraded and run.stop_step in ("upgrade probe",) and conn.closed is not None:
            _replay_sid(run, post, sid, how="101 then abandoned")
        elif not upgraded:
            post("close", sid, [str(eio_.CLOSE)])
    return run, exs


def _replay_sid(run: eio_.PathRun, post, sid: str, how: str) -> None:
    """After a failed upgrade, ask the same session over polling (closing it): Engine.IO's reason."""
    p = post("replay", sid, [str(eio_.CLOSE)])
    run.replay = {"how": how, "status": p.status, "message": p.message, "sid": sid}


def replay_polling(target: Target, settings: Settings, opts: SioOptions, eio: int, origin: str | None, extra,
                   how: str) -> tuple[dict, list[Exchange]]:
    """Replay a refused/abandoned WebSocket request as transport=polling (same Origin, EIO)."""
    resource = eio_.engineio_resource(target.resource, eio=eio, transport="polling", path=opts.path,
                                      keep_eio=not opts.eio_forced)
    a = http("socketio-replay", target, settings, "GET", resource, origin=origin, extra=extra)
    out: dict[str, Any] = {"how": how, "status": a.status, "message": a.message, "error": a.ex.error_kind,
                           "opened": False}
    exs = [a.ex]
    if a.status == 200:
        try:
            packets = eio_.decode_payload(a.body.decode("utf-8", "replace"), eio)
            ptype, data = eio_.parse_packet(packets[0] if packets else "")
            if ptype == eio_.OPEN:
                info = eio_.parse_open(data)
                out["opened"] = True
                out["upgrades"] = info.upgrades
                c = http("socketio-replay-close", target, settings, "POST",
                         eio_.engineio_resource(target.resource, eio=eio, transport="polling", sid=info.sid,
                                                path=opts.path, keep_eio=not opts.eio_forced),
                         origin=origin, extra=extra, body=eio_.encode_payload([str(eio_.CLOSE)], eio).encode())
                exs.append(c.ex)
        except eio_.EngineIOError:
            pass
    return out, exs


def several_processes(target: Target, settings: Settings, opts: SioOptions, eio: int, origin: str,
                      extra) -> tuple[dict, list[Exchange]]:
    """Open ``opts.sessions`` polling sessions at once, then address each again by its sid, at once.

    Each sid gets two heartbeat packets (``3`` pong in EIO 4, ``2`` ping in EIO 3, where the
    client pings) and a close (``1``): requests a server accepts for a session it knows. One process answers all of them alike; several without stickiness answer
    some with ``Invalid session``.
    """
    n = opts.sessions
    opened: list = [None] * n
    exs: list[Exchange] = []
    lock = threading.Lock()

    def res(sid=None):
        return eio_.engineio_resource(target.resource, eio=eio, transport="polling", sid=sid, path=opts.path,
                                      keep_eio=not opts.eio_forced)

    def open_one(i):
        a = http("socketio-session", target, settings, "GET", res(), origin=origin, extra=extra)
        with lock:
            exs.append(a.ex)
        if a.status == 200:
            try:
                packets = eio_.decode_payload(a.body.decode("utf-8", "replace"), eio)
                ptype, data = eio_.parse_packet(packets[0] if packets else "")
                if ptype == eio_.OPEN:
                    opened[i] = eio_.parse_open(data).sid
            except eio_.EngineIOError:
                pass

    _all(open_one, range(n))
    sids = [s for s in opened if s]
    outcomes: list[tuple[str, str, str]] = []  # (sid, request, outcome)

    def ask(job):
        sid, packet = job
        body = eio_.encode_payload([packet], eio).encode()
        a = http("socketio-session-" + ("close" if packet == "1" else "heartbeat"), target, settings, "POST", res(sid),
                 origin=origin, extra=extra, body=body)
        if a.status == 200:
            what = "200"
        elif a.message and a.message.startswith("Invalid session"):
            what = "400 Invalid session"
        else:
            what = f"{a.status} {a.message or ''}".strip() if a.status else (a.ex.error_kind or "no answer")
        with lock:
            exs.append(a.ex)
            outcomes.append((sid, "close" if packet == "1" else "heartbeat", what))

    beat = str(eio_.PONG if eio >= 4 else eio_.PING)
    _all(ask, [(s, beat) for s in sids for _ in range(2)])
    _all(ask, [(s, "1") for s in sids])
    counts: dict[str, int] = {}
    for _, _, what in outcomes:
        counts[what] = counts.get(what, 0) + 1
    per_sid: dict[str, set] = {}
    for sid, _, what in outcomes:
        per_sid.setdefault(sid, set()).add(what)
    return {"sessions": n, "opened": len(sids), "outcomes": counts,
            "mixed_within_session": sum(1 for v in per_sid.values() if len(v) > 1)}, exs


def _all(fn, items) -> None:
    threads = [threading.Thread(target=fn, args=(x,), daemon=True, name="wsdiag-sio") for x in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _http_fact(step: str, a: HttpAnswer) -> dict:
    return {"step": step, "request_line": a.ex.request.split(b"\r\n", 1)[0].decode("latin-1"),
            "status": a.status, "message": a.message, "error": a.ex.error_kind,
            "body_excerpt": a.body[:120].decode("utf-8", "replace") if a.status not in (101, None) else ""}


def _answer_detail(a: HttpAnswer) -> str:
    if a.status is None:
        return f"{a.ex.error_kind} ({a.ex.error_detail})"
    msg = a.message
    if msg:
        return f"{a.status} {msg!r}"
    return f"{a.status} {a.body[:80].decode('utf-8', 'replace')!r}" if a.body else str(a.status)


def _closed_detail(conn: WsConn) -> str:
    c = conn.closed
    if c is None:
        return "silence"
    if c[0] == "close":
        return "a close frame without a code" if c[1] is None else f"close {c[1]}" + (f" {c[2]!r}" if c[2] else "")
    return c[0] + (f" ({c[1]})" if len(c) > 1 else "")


def probe_socketio(url: str, target: Target, settings: Settings, opts: SioOptions, origin: str | None,
                   extra=()) -> tuple[eio_.SioResult, list[Exchange]]:
    """Run every path for one URL; return the result the core diagnoses, and the exchanges."""
    eio = opts.eio if opts.eio_forced else (eio_.eio_of(target.resource) or opts.eio)
    origin = origin or target.origin
    result = eio_.SioResult(url=url, eio=eio, namespace=eio_.normalize_namespace(opts.namespace), origin=origin,
                            connect_wait=opts.connect_wait)
    exs: list[Exchange] = []
    box: dict = {}

    def ws():
        box["ws"] = websocket_path(target, settings, opts, eio, origin, extra)

    def poll():
        box["polling"] = polling_path(target, settings, opts, eio, origin, extra)

    _all(lambda f: f(), [ws, poll])
    result.websocket, e1 = box["ws"]
    result.polling, e2 = box["polling"]
    exs += e1 + e2
    w = result.websocket
    if not w.ok and w.stop_step in ("handshake", "open") and not w.message and not w.error:
        how = "101 then abandoned" if w.abandoned else f"refused ({w.status})"
        result.replay, e3 = replay_polling(target, settings, opts, eio, origin, extra, how)
        exs += e3
    said = {w.message, result.polling.message, (result.replay or {}).get("message")}
    if "Not an accepted origin." in said:  # the same request without Origin: is the Origin the only objection?
        bare, e5 = replay_polling(target, settings, opts, eio, None, extra, "sent without Origin")
        result.without_origin = bare
        exs += e5
    if opts.sessions > 0 and result.polling.open is not None:
        result.workers, e4 = several_processes(target, settings, opts, eio, origin, extra)
        exs += e4
    return result, exs


def _verdict(run):
    from wsdiag.core.findings import Verdict

    if run.ok:
        return Verdict.SERVICED
    if run.status is None and run.error:
        return Verdict.UNREACHABLE
    if run.abandoned:
        return Verdict.ABANDONED
    if run.connect and run.connect[0] == "44":
        return Verdict.REFUSED
    if run.status is not None and run.status not in (101, 200):
        return Verdict.REFUSED
    if run.not_engineio:
        return Verdict.INVALID
    return Verdict.SILENT if run.no_answer else Verdict.REFUSED


def socketio_report(url: str, settings: Settings, sio: SioOptions, origin: str | None = None, extra=()):
    """Probe one Socket.IO URL and build its UrlReport (with ``report.socketio``, the details)."""
    from wsdiag.core.findings import ProfileResult, UrlReport
    from wsdiag.core.handshake import parse_target

    target = parse_target(url)
    result, exs = probe_socketio(url, target, settings, sio, origin, extra)
    causes, facts = eio_.diagnose(result)
    by_name = {e.name: e for e in exs}
    rows = []
    for run, name, ex_name in ((result.websocket, "socketio-websocket", "socketio-websocket"),
                               (result.polling, "socketio-polling", "socketio-upgrade")):
        ex = run.exchange if isinstance(run.exchange, Exchange) else (
            by_name.get(ex_name) or by_name.get("socketio-polling") or Exchange(name=name, url=url))
        status = run.status if run.status is not None else (101 if run.kind == "websocket" and run.reached != "start" else None)
        rows.append(ProfileResult(name, _verdict(run), status, [], ex, phase=run.stop_step,
                                  connection="Upgrade" if run.kind == "websocket" else "polling, then Upgrade"))
    report = UrlReport(url=url, results=rows, controls=[], causes=causes, facts=facts)
    report.socketio = result.to_dict()
    return report


# -- the hook from wsdiag.net.probe ----------------------------------------------------


def wants_socketio(url: str, opts) -> bool:
    """Socket.IO mode: forced by --socketio, or the URL's path is /socket.io/ or names EIO=."""
    if getattr(opts, "socketio_forced", False):
        return True
    from wsdiag.core.handshake import parse_target

    return eio_.is_socketio_url(parse_target(url).resource)


def probe_with_socketio(urls: list[str], opts, on_report, plain_probe) -> list:
    """Socket.IO URLs through socketio_report, the others through one concurrent plain probe.

    Reports come back in URL order; ``on_report`` sees each as it is made.
    """
    sio = opts.socketio if isinstance(opts.socketio, SioOptions) else SioOptions()
    wanted = [wants_socketio(url, opts) for url in urls]
    plain = [url for url, w in zip(urls, wanted) if not w]
    plain_reports = iter(plain_probe(plain, opts, on_report) if plain else ())
    reports: list = []
    for url, w in zip(urls, wanted):
        if w:
            report = socketio_report(url, opts.settings, sio, opts.origin, opts.extra_headers)
            if on_report is not None:
                on_report(report)
            reports.append(report)
        else:
            reports.append(next(plain_reports))
    return reports
