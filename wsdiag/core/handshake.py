"""The opening handshake as bytes: build the request, parse the answer, check it.

Rules this module keeps (h11/wsproto style: bytes in, facts out, no I/O):

* Pure core: standard library only.
* The key is a parameter; nothing here draws random numbers except ``new_key``.
* Parsing is lenient: an HTTP/1.0 status line, bare-LF line endings, repeated or
  malformed headers are recorded as facts, never raised.  ``parse_response_head`` only
  returns ``None`` when the first line is not an HTTP status line at all.
* ``check_response`` runs every RFC 6455 section 4.1 check and returns all findings.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re

from wsdiag.core.findings import Finding
from wsdiag.core.profiles import Profile
from wsdiag.core.record import Factory, FrozenRecord, Record

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
MAX_HEAD = 64 * 1024  # bytes of response head wsdiag reads before giving up (WS112)

_STATUS_RE = re.compile(rb"^(HTTP/\d(?:\.\d)?)[ \t]+(\d{3})(?:[ \t]+(.*))?$")


def new_key() -> str:
    """A fresh Sec-WebSocket-Key: base64 of 16 random bytes (RFC 6455 section 4.1)."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def accept_for(key: str) -> str:
    """The Sec-WebSocket-Accept a server must answer for ``key`` (RFC 6455 section 4.2.2)."""
    digest = hashlib.sha1((key + GUID).encode("ascii", "surrogateescape")).digest()
    return base64.b64encode(digest).decode("ascii")


class Target(FrozenRecord):
    """Where a request goes: scheme, host as typed, port and the request target."""

    __slots__ = ("scheme", "host", "port", "resource")
    scheme: str  # ws or wss
    host: str
    port: int
    resource: str  # path and query, e.g. "/ws?x=1"

    @property
    def secure(self) -> bool:
        return self.scheme == "wss"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.secure else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def origin(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.host_header}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host_header}{self.resource}"


class Request(FrozenRecord):
    """A handshake request as sent: the bytes and the facts the checks need."""

    __slots__ = (
        "raw", "key", "offered_protocols", "offered_extensions", "headers", "http_version", "upgrade",
    )
    raw: bytes
    key: str | None
    offered_protocols: tuple[str, ...]
    offered_extensions: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]
    http_version: str
    upgrade: bool


def build_request(
    profile: Profile,
    target: Target,
    key: str,
    *,
    origin: str | None = None,
    subprotocols: tuple[str, ...] = (),
    extra_headers: tuple[tuple[str, str], ...] = (),
    resource: str | None = None,
) -> Request:
    """Render ``profile`` for ``target``: exact order and casing, placeholders filled.

    ``extra_headers`` (from ``-H``) replace a header of the same name in place, or are
    appended; an empty value removes the header.  ``origin`` replaces (or adds) Origin.
    """
    values = {"host": target.host_header, "origin": origin or target.origin, "key": key}
    lines: list[tuple[str, str]] = [(n, v.format(**values)) for n, v in profile.headers]
    if origin is not None and not any(n.lower() == "origin" for n, _ in lines):
        lines.append(("Origin", origin))
    if subprotocols:
        lines = _set_header(lines, "Sec-WebSocket-Protocol", ", ".join(subprotocols))
    for name, value in extra_headers:
        lines = _set_header(lines, name, value)
    head = f"GET {resource or target.resource} {profile.http_version}\r\n"
    head += "".join(f"{n}: {v}\r\n" for n, v in lines) + "\r\n"
    sent_key = _first(lines, "Sec-WebSocket-Key")
    return Request(
        raw=head.encode("latin-1", "replace"),
        key=sent_key,
        offered_protocols=_tokens(_first(lines, "Sec-WebSocket-Protocol")),
        offered_extensions=tuple(
            e.split(";")[0].strip().lower() for e in _tokens(_first(lines, "Sec-WebSocket-Extensions"))
        ),
        headers=tuple(lines),
        http_version=profile.http_version,
        upgrade=profile.upgrade,
    )


def build_plain_get(target: Target, resource: str | None = None, extra_headers=()) -> bytes:
    """A plain GET of the same URL without upgrade headers (a control request)."""
    lines = [("Host", target.host_header), ("User-Agent", "wsdiag"), ("Accept", "*/*"), ("Connection", "close")]
    for name, value in extra_headers:
        if name.lower() not in ("upgrade", "connection", "sec-websocket-key", "sec-websocket-version"):
            lines = _set_header(lines, name, value)
    head = f"GET {resource or target.resource} HTTP/1.1\r\n"
    return (head + "".join(f"{n}: {v}\r\n" for n, v in lines) + "\r\n").encode("latin-1", "replace")


def _set_header(lines: list[tuple[str, str]], name: str, value: str) -> list[tuple[str, str]]:
    low = name.lower()
    out: list[tuple[str, str]] = []
    done = False
    for n, v in lines:
        if n.lower() == low:
            if not done and value != "":
                out.append((name, value))
            done = True
        else:
            out.append((n, v))
    if not done and value != "":
        out.append((name, value))
    return out


def _first(lines, name: str) -> str | None:
    low = name.lower()
    for n, v in lines:
        if n.lower() == low:
            return v
    return None


def _tokens(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(t.strip() for t in value.split(",") if t.strip())


# -- response head ---------------------------------------------------------------------


def find_head_end(buf: bytes) -> int | None:
    """Index just past the blank line ending the head (CRLFCRLF, or LFLF leniently)."""
    candidates = [i + 4 for i in (buf.find(b"\r\n\r\n"),) if i >= 0]
    candidates += [i + 2 for i in (buf.find(b"\n\n"),) if i >= 0]
    candidates += [i + 3 for i in (buf.find(b"\n\r\n"),) if i >= 0]
    return min(candidates) if candidates else None


class ResponseHead(Record):
    """A parsed response head, with the oddities seen while parsing it."""

    __slots__ = ("version", "status", "reason", "headers", "raw", "bare_lf", "bad_lines")
    _defaults = {"bare_lf": False, "bad_lines": Factory(list)}
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    raw: bytes
    bare_lf: bool
    bad_lines: list[str]

    def get_all(self, name: str) -> list[str]:
        low = name.lower()
        return [v for n, v in self.headers if n.lower() == low]

    def get(self, name: str) -> str | None:
        values = self.get_all(name)
        return values[0] if values else None


def status_line_of(raw: bytes) -> str:
    """The first line of ``raw`` as text, for evidence."""
    return raw.split(b"\n", 1)[0].rstrip(b"\r")[:200].decode("latin-1")


def parse_response_head(raw: bytes) -> ResponseHead | None:
    """Parse a response head leniently; ``None`` if the first line is not HTTP."""
    text_lines = raw.split(b"\n")
    bare_lf = _has_bare_lf(raw)
    first = text_lines[0].rstrip(b"\r")
    m = _STATUS_RE.match(first)
    if not m:
        return None
    version = m.group(1).decode("latin-1")
    status = int(m.group(2))
    reason = (m.group(3) or b"").decode("latin-1").strip()
    headers: list[tuple[str, str]] = []
    bad: list[str] = []
    for line in text_lines[1:]:
        line = line.rstrip(b"\r")
        if not line:
            break
        if line[:1] in (b" ", b"\t") and headers:  # obsolete line folding (RFC 7230 3.2.4)
            prev_name, prev_value = headers[-1]
            headers[-1] = (prev_name, prev_value + " " + line.strip().decode("latin-1"))
            continue
        name, sep, value = line.partition(b":")
        if not sep or not name.strip():
            bad.append(line[:200].decode("latin-1"))
            continue
        headers.append((name.strip().decode("latin-1"), value.strip().decode("latin-1")))
    return ResponseHead(version, status, reason, headers, raw, bare_lf, bad)


def _has_bare_lf(raw: bytes) -> bool:
    end = find_head_end(raw)
    head = raw[:end] if end else raw
    return head.count(b"\n") > head.count(b"\r\n")


def content_length(head: ResponseHead) -> int | None:
    value = head.get("Content-Length")
    if value is None:
        return None
    try:
        n = int(value.strip())
    except ValueError:
        return None
    return n if n >= 0 else None


# -- checks ----------------------------------------------------------------------------


def check_head_form(head: ResponseHead) -> list[Finding]:
    """Form checks that apply to any answer: line endings, malformed lines, repeats."""
    found: list[Finding] = []
    if head.bare_lf:
        found.append(Finding("WS310", {}))
    for line in head.bad_lines[:3]:
        found.append(Finding("WS311", {"line": line}))
    return found


_SINGLE = ("upgrade", "connection", "sec-websocket-accept", "sec-websocket-protocol")


def check_upgrade(request: Request, head: ResponseHead) -> list[Finding]:
    """Every RFC 6455 section 4.1 check of a 101 answer; all findings, not the first."""
    found: list[Finding] = []
    if head.version != "HTTP/1.1" and not head.version.startswith("HTTP/2"):
        found.append(Finding("WS308", {"version": head.version}))
    upgrade = head.get_all("Upgrade")
    # RFC 6455 4.1 (2): Upgrade must be "websocket", case-insensitive.
    if not any(v.strip().lower() == "websocket" for v in upgrade):
        found.append(Finding("WS301", {"actual": ", ".join(upgrade) or None, "expected": "websocket"}))
    # RFC 6455 4.1 (3): Connection must contain the token "Upgrade", case-insensitive.
    conn = head.get_all("Connection")
    tokens = {t.strip().lower() for v in conn for t in v.split(",")}
    if "upgrade" not in tokens:
        found.append(Finding("WS302", {"actual": ", ".join(conn) or None, "expected": "Upgrade"}))
    # RFC 6455 4.1 (4): Sec-WebSocket-Accept must be the hash of our key.
    accepts = head.get_all("Sec-WebSocket-Accept")
    if request.key is not None:
        expected = accept_for(request.key)
        if not accepts:
            found.append(Finding("WS303", {"expected": expected}))
        elif accepts[0].strip() != expected:
            found.append(Finding("WS304", {"actual": accepts[0], "expected": expected}))
    # RFC 6455 4.1 (5): extensions must be ones we offered.
    for value in head.get_all("Sec-WebSocket-Extensions"):
        for ext in _tokens(value):
            name = ext.split(";")[0].strip().lower()
            if name not in request.offered_extensions:
                found.append(Finding("WS307", {"actual": ext, "offered": list(request.offered_extensions)}))
    # RFC 6455 4.1 (6): the subprotocol must be one we offered; browsers also require one
    # to be chosen when they offered any.
    chosen = head.get_all("Sec-WebSocket-Protocol")
    if chosen:
        proto = chosen[0].strip()
        if proto not in request.offered_protocols:
            found.append(Finding("WS306", {"actual": proto, "offered": list(request.offered_protocols)}))
    elif request.offered_protocols:
        found.append(Finding("WS305", {"offered": list(request.offered_protocols)}))
    for name in _SINGLE:
        count = len(head.get_all(name))
        if count > 1:
            found.append(Finding("WS309", {"name": _canonical(name), "count": count}))
    return found


def _canonical(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-")).replace("Websocket", "WebSocket")


def looks_like_tls(data: bytes) -> bool:
    """A TLS record header (handshake or alert) where HTTP text was expected."""
    return len(data) >= 3 and data[0] in (0x15, 0x16) and data[1] == 0x03 and data[2] <= 0x04


# -- URLs ------------------------------------------------------------------------------


class BadURL(ValueError):
    """A URL wsdiag cannot probe; the message is one line for the user."""


_SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}


def parse_target(url: str) -> Target:
    """Parse a ws://, wss:// (or http(s)://) URL into a Target; raise BadURL otherwise."""
    from urllib.parse import urlsplit

    text = url.strip()
    if not text:
        raise BadURL("empty URL")
    if "://" not in text:
        raise BadURL(f"{url!r} has no scheme: use ws://host:port/path or wss://...")
    if any(c in text for c in " \t\r\n"):
        raise BadURL(f"{url!r} contains white space")
    if any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in text):  # NUL, ESC...: never sent on the wire
        raise BadURL(f"{url!r} contains a control character")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise BadURL(f"{url!r} is not a valid URL: {exc}") from None
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise BadURL(f"{url!r}: scheme {parts.scheme!r} is not ws, wss, http or https")
    host = parts.hostname
    if not host:
        raise BadURL(f"{url!r} has no host")
    _check_host(url, host)
    if port is None:
        port = 443 if scheme == "wss" else 80
    if port == 0:
        raise BadURL(f"{url!r}: port 0 cannot be probed")
    resource = parts.path or "/"
    if parts.query:
        resource += "?" + parts.query
    return Target(scheme, host, port, resource)


def sibling_resource(resource: str, name: str) -> str:
    """``/a/b/ws?x`` -> ``/a/b/<name>``: a path beside the probed one (same mount, prefix)."""
    path = resource.split("?", 1)[0]
    parent = path.rsplit("/", 1)[0]
    return f"{parent}/{name}"


def _check_host(url: str, host: str) -> None:
    """Reject host names no resolver could answer (empty or over-long labels, bad IDNA)."""
    import ipaddress

    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    try:
        host.encode("idna")
    except UnicodeError:
        raise BadURL(f"{url!r}: {host!r} is not a valid host name") from None
