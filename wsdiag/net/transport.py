"""Sockets: connect, TLS, proxy, send, receive, all under one deadline per exchange.

Rules this module keeps (an I/O edge; it imports the core, never the reverse):

* Every wait is bounded by the exchange's deadline; nothing here blocks longer.
* Errors are not raised to callers: OS, DNS and TLS errors are translated once, through
  ``error_table()``, into a phase and a finding code recorded on the ``Exchange``.
* It records what crossed the wire byte for byte (``Exchange``) with millisecond timings,
  and judges nothing: ``diagnose`` does that.
"""

from __future__ import annotations

import errno
import functools
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wsdiag.core import frames as fr
from wsdiag.core.findings import AfterUpgrade, Exchange
from wsdiag.core.handshake import (
    MAX_HEAD,
    Target,
    content_length,
    find_head_end,
    looks_like_tls,
    parse_response_head,
)

if TYPE_CHECKING:  # ssl and urllib.request cost milliseconds at start-up; import them when used
    import ssl

MAX_BODY = 4096  # body bytes kept from non-101 answers (evidence only)
PING_PAYLOAD = b"wsdiag-ping"
TEXT_PAYLOAD = b"wsdiag-probe"


@dataclass(frozen=True)
class Settings:
    """How to reach the server; shared by every exchange of a run."""

    timeout: float = 5.0  # seconds, per exchange, connect to complete answer
    watch: float = 1.0  # seconds to watch the socket after a 101
    insecure: bool = False
    cacert: str | None = None
    proxy: str | None = None  # http://host:port; None = from the environment
    use_env_proxy: bool = True


class ExchangeError(Exception):
    """Internal: carries a classified failure to the exchange's single handler."""

    def __init__(self, phase: str, kind: str, detail: str):
        super().__init__(detail)
        self.phase, self.kind, self.detail = phase, kind, detail


@functools.lru_cache(maxsize=1)
def error_table() -> tuple:
    """(exception class, errnos or None, phases or None, kind) rows; the first match wins.

    Every kind is the name of a finding code in codes.py (a test keeps the two in step).
    Built on first use so that importing the transport does not import ssl.
    """
    import ssl

    return (
        (socket.gaierror, None, None, "name-not-resolved"),
        (ssl.SSLCertVerificationError, None, None, "tls-certificate-rejected"),
        (ssl.SSLError, None, frozenset({"tls"}), "tls-handshake-failed"),
        (ConnectionRefusedError, None, None, "connection-refused"),
        (TimeoutError, None, frozenset({"dns", "connect"}), "connect-timeout"),
        (socket.timeout, None, frozenset({"dns", "connect"}), "connect-timeout"),
        (OSError, frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT}), None, "network-unreachable"),
        (ConnectionResetError, None, frozenset({"tls"}), "tls-handshake-failed"),
        (ConnectionResetError, None, None, "reset-before-response"),
        (BrokenPipeError, None, None, "reset-before-response"),
        (TimeoutError, None, None, "no-response"),
        (socket.timeout, None, None, "no-response"),
        (ssl.SSLError, None, None, "tls-handshake-failed"),
        (OSError, None, frozenset({"connect", "dns"}), "network-unreachable"),
        (OSError, None, None, "reset-before-response"),
    )


def classify(exc: BaseException, phase: str) -> str:
    """Map an exception raised in ``phase`` to an error kind (see error_table)."""
    for cls, errnos, phases, kind in error_table():
        if not isinstance(exc, cls):
            continue
        if errnos is not None and getattr(exc, "errno", None) not in errnos:
            continue
        if phases is not None and phase not in phases:
            continue
        return kind
    return "reset-before-response"


def describe(exc: BaseException) -> str:
    """A one-line description of an OS/SSL error for evidence."""
    verify = getattr(exc, "verify_message", None)  # ssl.SSLCertVerificationError
    if verify:
        return str(verify)
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    if getattr(exc, "reason", None) and getattr(exc, "library", None) is not None:  # ssl.SSLError
        text = str(exc.reason)
    return text.splitlines()[0][:200]


class Clock:
    """Milliseconds since the exchange started, and the time left before the deadline."""

    def __init__(self, budget: float):
        self.t0 = time.monotonic()
        self.deadline = self.t0 + budget

    def ms(self) -> float:
        return (time.monotonic() - self.t0) * 1000.0

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def check(self, phase: str) -> float:
        left = self.left()
        if left <= 0:
            raise ExchangeError(phase, "connect-timeout" if phase in ("dns", "connect") else "no-response", "deadline reached")
        return left


# -- connecting ------------------------------------------------------------------------


def proxy_for(target: Target, settings: Settings) -> str | None:
    """The proxy URL to use: --proxy, else the standard environment variables."""
    if settings.proxy:
        return settings.proxy
    if not settings.use_env_proxy or _is_loopback(target.host):
        return None  # loopback never goes through an environment proxy: decide before reading it
    if not any(k.lower().endswith("_proxy") for k in os.environ):
        return None  # the common case, without importing urllib.request
    import urllib.request

    env = urllib.request.getproxies()
    if not env or _is_loopback(target.host) or urllib.request.proxy_bypass_environment(target.host, env):
        return None
    return env.get("https" if target.secure else "http") or env.get("wss" if target.secure else "ws")


def _is_loopback(host: str) -> bool:
    """Loopback targets never go through a proxy from the environment (as NO_PROXY would)."""
    return host in ("localhost", "::1") or host.startswith("127.")


def _resolve(host: str, port: int, clock: Clock) -> list[tuple]:
    """getaddrinfo under the deadline (it has no timeout of its own)."""
    for fam in (socket.AF_INET, socket.AF_INET6):  # an IP literal: nothing to resolve, no thread
        try:
            socket.inet_pton(fam, host)
        except OSError:
            continue
        return [(fam, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port) if fam == socket.AF_INET else (host, port, 0, 0))]
    box: dict = {}

    def run() -> None:
        try:
            box["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=run, name="wsdiag-dns", daemon=True)
    worker.start()
    worker.join(clock.check("dns"))
    if worker.is_alive():
        raise ExchangeError("dns", "connect-timeout", f"name lookup for {host} did not finish")
    if "error" in box:
        exc = box["error"]
        kind = classify(exc, "dns") if isinstance(exc, OSError) else "name-not-resolved"
        raise ExchangeError("dns", kind, describe(exc))
    return box["infos"]


def _connect_tcp(host: str, port: int, clock: Clock) -> socket.socket:
    infos = _resolve(host, port, clock)
    last: BaseException | None = None
    for family, kind, proto, _, addr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(clock.check("connect"))
            sock.connect(addr)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
            if isinstance(exc, ConnectionRefusedError) and clock.left() > 0:
                continue
    assert last is not None
    raise ExchangeError("connect", classify(last, "connect"), describe(last))


def _proxy_connect(sock: socket.socket, proxy_url: str, target: Target, clock: Clock) -> None:
    """Open a tunnel with CONNECT (RFC 9110 section 9.3.6)."""
    import urllib.parse

    parsed = urllib.parse.urlsplit(proxy_url)
    authority = f"[{target.host}]:{target.port}" if ":" in target.host else f"{target.host}:{target.port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if parsed.username:
        import base64

        cred = f"{urllib.parse.unquote(parsed.username)}:{urllib.parse.unquote(parsed.password or '')}"
        lines.append("Proxy-Authorization: Basic " + base64.b64encode(cred.encode()).decode())
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    buf = b""
    while find_head_end(buf) is None and len(buf) < MAX_HEAD:
        sock.settimeout(clock.check("proxy"))
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
    head = parse_response_head(buf)
    if head is None or head.status != 200:
        status = f"{head.status} {head.reason}" if head else repr(buf[:60])
        raise ExchangeError("proxy", "proxy-refused", status)


def tls_context(settings: Settings) -> ssl.SSLContext:
    import ssl

    ctx = ssl.create_default_context(cafile=settings.cacert)
    if settings.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def open_stream(target: Target, settings: Settings, clock: Clock, timings: dict, ctx: ssl.SSLContext | None = None) -> socket.socket:
    """TCP (through a proxy if configured), then TLS for wss://. Raises ExchangeError."""
    proxy = proxy_for(target, settings)
    if proxy:
        import urllib.parse

        p = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)
        try:
            sock = _connect_tcp(p.hostname or "", p.port or 8080, clock)
        except ExchangeError as exc:
            raise ExchangeError("proxy", exc.kind, f"proxy {p.hostname}:{p.port or 8080}: {exc.detail}") from None
        try:
            _proxy_connect(sock, proxy, target, clock)
        except ExchangeError:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            raise ExchangeError("proxy", "proxy-refused", describe(exc)) from None
    else:
        sock = _connect_tcp(target.host, target.port, clock)
    timings["connect_ms"] = clock.ms()
    if not target.secure:
        return sock
    try:
        ctx = ctx or tls_context(settings)
        sni = None if _is_ip(target.host) else target.host
        sock.settimeout(clock.check("tls"))
        tls = ctx.wrap_socket(sock, server_hostname=sni if sni else (target.host if ctx.check_hostname else None))
        timings["tls_ms"] = clock.ms()
        return tls
    except ExchangeError:
        sock.close()
        raise
    except (OSError, ValueError) as exc:
        sock.close()
        kind = classify(exc, "tls") if isinstance(exc, OSError) else "tls-handshake-failed"
        if isinstance(exc, (socket.timeout, TimeoutError)):
            kind = "tls-handshake-failed"
        raise ExchangeError("tls", kind, describe(exc)) from None


def _is_ip(host: str) -> bool:
    for fam in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(fam, host)
            return True
        except OSError:
            pass
    return False


# -- one exchange ----------------------------------------------------------------------


def run_exchange(
    name: str,
    target: Target,
    request: bytes,
    settings: Settings,
    *,
    watch: bool = True,
    ctx: ssl.SSLContext | None = None,
) -> Exchange:
    """Send ``request`` and record the answer (and, after a 101, the socket's behaviour)."""
    ex = Exchange(name=name, url=target.url, request=request)
    clock = Clock(settings.timeout)
    sock: socket.socket | None = None
    buf = b""
    phase = "dns"
    try:
        sock = open_stream(target, settings, clock, ex.timings, ctx)
        phase = "send"
        sock.settimeout(clock.check("send"))
        sock.sendall(request)
        phase = "response"
        while True:
            end = find_head_end(buf)
            if end is not None:
                break
            if len(buf) >= MAX_HEAD:
                ex.response_head = buf[:MAX_HEAD]
                raise ExchangeError("response", "response-head-too-large", f"{MAX_HEAD}")
            if looks_like_tls(buf) and not target.secure:
                raise ExchangeError("response", "tls-spoken-on-plain-url", buf[:8].hex())
            sock.settimeout(max(clock.check("response"), 0.001))
            chunk = sock.recv(65536)
            if not chunk:
                if buf and parse_response_head(buf) is not None and not watch:
                    end = len(buf)  # a head cut short by EOF: keep what came
                    break
                raise ExchangeError("response", "closed-before-response", "EOF")
            if "first_byte_ms" not in ex.timings:
                ex.timings["first_byte_ms"] = clock.ms()
            buf += chunk
        ex.timings["head_ms"] = clock.ms()
        ex.response_head, rest = buf[:end], buf[end:]
        head = parse_response_head(ex.response_head)
        if head is not None and head.status == 101:
            if watch:
                ex.after = watch_socket(sock, rest, settings.watch, clock)
            else:
                ex.body = rest[:MAX_BODY]
        else:
            ex.body = _read_body(sock, rest, head, clock)
    except ExchangeError as exc:
        ex.error_phase, ex.error_kind, ex.error_detail = exc.phase, exc.kind, exc.detail
        ex.received_before_error = len(buf)
        if not ex.response_head and buf:
            ex.response_head = buf[:MAX_HEAD]
    except (OSError, ValueError) as exc:
        ex.error_phase = phase
        ex.error_kind = classify(exc, phase) if isinstance(exc, OSError) else "reset-before-response"
        ex.error_detail = describe(exc)
        ex.received_before_error = len(buf)
        if not ex.response_head and buf:
            ex.response_head = buf[:MAX_HEAD]
    finally:
        if sock is not None:
            _close(sock)
        ex.timings["total_ms"] = clock.ms()
    return ex


def _read_body(sock: socket.socket, rest: bytes, head, clock: Clock) -> bytes:
    """Keep up to MAX_BODY bytes of a non-101 body; wait at most a short, bounded time."""
    body = rest
    want = content_length(head) if head is not None else None
    limit = MAX_BODY if want is None else min(want, MAX_BODY)
    grace = time.monotonic() + min(0.5, max(clock.left(), 0))
    try:
        while len(body) < limit:
            left = grace - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    except OSError:
        pass
    return body[:MAX_BODY]


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


# -- after the 101 ---------------------------------------------------------------------


def watch_socket(sock: socket.socket, rest: bytes, window: float, clock: Clock) -> AfterUpgrade:
    """Ping, send a text message, and watch for a bounded window; stop at the first answer.

    The outcome is ``pong``/``data`` (served), ``close``/``eof``/``reset`` (ended),
    ``invalid`` (a frame a client must reject) or ``silent``.
    """
    start = time.monotonic()
    end = start + max(window, 0.0)
    after = AfterUpgrade(outcome="silent", window_ms=int(window * 1000))
    buf = rest

    def now_ms() -> float:
        return (time.monotonic() - start) * 1000.0

    def event(kind: str, **data) -> None:
        data = {"t_ms": round(now_ms(), 2), "event": kind, **data}
        after.events.append(data)
        if kind in ("pong", "data", "close", "eof", "reset", "invalid") and after.first_event_ms is None:
            after.first_event_ms = data["t_ms"]

    def send(frame: bytes, label: str) -> None:
        try:
            sock.settimeout(max(min(end - time.monotonic(), clock.left()), 0.05))
            sock.sendall(frame)
            event("sent", frame=label)
        except OSError as exc:
            event("send-failed", frame=label, detail=describe(exc))

    send(fr.encode(fr.OP_PING, PING_PAYLOAD, os.urandom(4)), "ping")
    send(fr.encode(fr.OP_TEXT, TEXT_PAYLOAD, os.urandom(4)), "text")
    done = False
    while not done:
        frames_, buf, problems = fr.decode(buf)
        for f in frames_:
            info = {"opcode": f.opcode, "frame": f.name, "length": len(f.payload)}
            if f.opcode == fr.OP_CLOSE:
                code, reason = fr.parse_close(f.payload)
                event("close", close_code=code, reason=reason[:120], **info)
                after.outcome = "close"
                done = True
                break
            if f.opcode == fr.OP_PONG:
                event("pong", payload_matches=f.payload == PING_PAYLOAD, **info)
                after.outcome = "pong"
                done = True
                break
            if f.opcode == fr.OP_PING:
                event("ping", **info)
                send(fr.encode(fr.OP_PONG, f.payload[:125], os.urandom(4)), "pong")
                continue
            event("data", excerpt=f.payload[:80].decode("utf-8", "replace"), **info)
            after.outcome = "data"
            done = True
            break
        if problems:
            for p in problems:
                event("invalid", code=p.code, **p.evidence)
            after.outcome = "invalid"
            done = True
        if done:
            break
        left = min(end - time.monotonic(), clock.left() + window)
        if left <= 0:
            break
        try:
            sock.settimeout(left)
            chunk = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            break
        except OSError as exc:
            event("reset", detail=describe(exc))
            after.outcome = "reset"
            break
        if not chunk:
            event("eof")
            after.outcome = "eof"
            break
        after.received += chunk[: 4096 - len(after.received)] if len(after.received) < 4096 else b""
        buf += chunk
    if after.outcome in ("pong", "data"):
        _polite_close(sock, start)
    elif after.outcome == "silent":
        event("window-ended")
    return after


def _polite_close(sock: socket.socket, start: float) -> None:
    """Send close 1000 and give the server a short, bounded moment to answer it."""
    try:
        sock.settimeout(0.2)
        sock.sendall(fr.encode(fr.OP_CLOSE, fr.close_payload(1000, "wsdiag done"), os.urandom(4)))
        deadline = time.monotonic() + 0.2
        while time.monotonic() < deadline:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            if not sock.recv(4096):
                break
    except OSError:
        pass
