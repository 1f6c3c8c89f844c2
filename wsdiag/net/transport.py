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
from typing import TYPE_CHECKING

from wsdiag.core.findings import AfterUpgrade, Exchange
from wsdiag.core.handshake import (
    MAX_HEAD,
    Target,
    content_length,
    find_head_end,
    looks_like_tls,
    parse_response_head,
)
from wsdiag.core.record import FrozenRecord

if TYPE_CHECKING:  # ssl and urllib.request cost milliseconds at start-up; import them when used
    import ssl

MAX_BODY = 4096  # body bytes kept from non-101 answers (evidence only)
PING_PAYLOAD = b"wsdiag-ping"
TEXT_PAYLOAD = b"wsdiag-probe"


class Settings(FrozenRecord):
    """How to reach the server; shared by every exchange of a run."""

    __slots__ = ("timeout", "watch", "insecure", "cacert", "proxy", "use_env_proxy", "idle")
    _defaults = {
        "timeout": 5.0, "watch": 1.0, "insecure": False, "cacert": None, "proxy": None,
        "use_env_proxy": True, "idle": 0.0,
    }
    timeout: float  # seconds, per exchange, connect to complete answer
    watch: float  # seconds to watch the socket after a 101
    insecure: bool
    cacert: str | None
    proxy: str | None  # http://host:port; None = from the environment
    use_env_proxy: bool
    idle: float  # seconds a served session stays idle before wsdiag closes it (set by probe: session.idle)


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


# The websocket-client profile's own exceptions, in the same table: matched by class name so
# that the transport never imports the library.  (name, kind, transport failure?) -- a library
# exception that is not a transport failure is the library's verdict on the answer, kept as
# evidence (Exchange.library_error) rather than as an error kind.
LIBRARY_ROWS: tuple[tuple[str, str, bool], ...] = (
    ("HeadTooLarge", "response-head-too-large", True),
    ("WebSocketTimeoutException", "no-response", True),
    ("WebSocketConnectionClosedException", "closed-before-response", True),
    ("WebSocketBadStatusException", "", False),
    ("WebSocketException", "", False),
)


def library_row(exc: BaseException) -> tuple[str, bool] | None:
    """(kind, transport failure?) for an exception of the websocket-client path, or None."""
    names = [c.__name__ for c in type(exc).__mro__]
    for name, kind, failure in LIBRARY_ROWS:
        if name in names:
            return kind, failure
    return None


def classify(exc: BaseException, phase: str) -> str:
    """Map an exception raised in ``phase`` to an error kind (see error_table, LIBRARY_ROWS)."""
    row = library_row(exc)
    if row is not None and row[1]:
        return row[0]
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
            kind = {"dns": "name-not-resolved", "connect": "connect-timeout"}.get(phase, "no-response")
            raise ExchangeError(phase, kind, "no answer from the name server before the deadline" if phase == "dns"
                                else "deadline reached")
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
    if worker.is_alive():  # a silent name server: a DNS finding, not a TCP one
        raise ExchangeError("dns", "name-not-resolved",
                            f"no answer from the name server within {clock.ms() / 1000:.1f} s")
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
        head = parse_response_head(buf[:end])
        while head is not None and 100 <= head.status < 200 and head.status != 101 and len(ex.interim) < 8:
            # an interim answer (100 Continue, 103 Early Hints): HTTP clients read on to the final one
            ex.interim.append(buf[:end])
            buf = buf[end:]
            end = find_head_end(buf)
            while end is None:
                if len(buf) >= MAX_HEAD:
                    ex.response_head = buf[:MAX_HEAD]
                    raise ExchangeError("response", "response-head-too-large", f"{MAX_HEAD}")
                sock.settimeout(max(clock.check("response"), 0.001))
                chunk = sock.recv(65536)
                if not chunk:
                    raise ExchangeError("response", "closed-before-response", "EOF after an interim 1xx answer")
                buf += chunk
                end = find_head_end(buf)
            head = parse_response_head(buf[:end])
        ex.timings["head_ms"] = clock.ms()
        ex.response_head, rest = buf[:end], buf[end:]
        if head is not None and head.status == 101:
            if watch:
                ex.after = watch_socket(sock, rest, settings.watch, clock, request, ex.response_head, settings.idle)
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


def watch_socket(sock: socket.socket, rest: bytes, window: float, clock: Clock,
                 request: bytes = b"", head: bytes = b"", idle: float = 0.0) -> AfterUpgrade:
    """Ping, send a text message, watch for a bounded window (stop at the first answer), then
    do the closing handshake; see ``wsdiag.net.session``.

    Everything ends by the exchange's deadline plus the watch window.
    """
    from wsdiag.net.session import watch_session

    return watch_session(sock, rest, window, clock.deadline + max(window, 0.0), request, head, idle)
