"""Which server stack answered: identified from evidence, never assumed.

Rules this module keeps:

* Pure core: standard library and wsdiag's core only.
* A stack is named only from a *tell*: a byte-level trait of an answer that the named
  software produces (checked against the real installed servers in tests/test_failures.py).
  Every tell states the answer it came from. Without a tell the stack is unknown, and the
  report says so.
* A 101 alone proves nothing: most servers send the same three headers. A 101 is a tell only
  together with what the request offered (e.g. permessage-deflate offered and not echoed).
* Layers: ``proxy`` (nginx, ...), ``websocket`` (the code that answers the upgrade:
  gevent-websocket, wsproto/simple-websocket), ``server`` (the HTTP server: Werkzeug's dev
  server, gunicorn, gevent pywsgi), ``app`` (Flask/Werkzeug routing). One name per layer,
  each with its reasons; ``strong`` is False when every reason is circumstantial.

Tells verified on loopback (gevent 26.9, gevent-websocket 0.10.1, Werkzeug 3.1.9, flask-sock
0.7.0, simple-websocket 1.1.0, wsproto 1.3.2, gunicorn 27.0.1, nginx 1.22.1):

======================================  =============================================
what the probe sees                     stack
======================================  =============================================
``402 Bad Request`` to an HTTP/1.0       gevent-websocket (its typo for 400)
upgrade
426/400 with ``Sec-WebSocket-Version:    gevent-websocket
13, 8, 7``
400/402/426 declaring Content-Length     gevent-websocket (X3: its str bodies fail on
17/20/33/37/41 and sending no body       Python 3 after the head is out)
an upgrade to a path that cannot exist   gevent-websocket (101 sent before routing)
gets 101
101 without ``Sec-WebSocket-Extensions`` gevent-websocket 0.10.1 (weak alone: any
to a request offering permessage-deflate server without deflate support)
and exactly Upgrade/Connection/Accept
101 echoing ``permessage-deflate`` with  wsproto (simple-websocket, flask-sock)
no Server/Date header
``Server: Werkzeug/x Python/y``         Werkzeug development server
``Server: gunicorn``                    gunicorn
``Server: nginx`` or ``<center>nginx``  nginx in front
``414 Request URI Too Long`` with        gevent pywsgi (MAX_REQUEST_LINE 8192)
``Content-length: 0``
``Request Line is too large (N > 4094)`` gunicorn
Werkzeug's HTML error page              Flask/Werkzeug app
a Flask answer with Date, no Server      gevent pywsgi (plain or GeventWebSocketWorker),
                                         or a proxy removing Server (weak)
======================================  =============================================
"""

from __future__ import annotations

import re

from wsdiag.core.handshake import ResponseHead, content_length
from wsdiag.core.record import Factory, Record

GWS = "gevent-websocket"
WSPROTO = "wsproto (simple-websocket / flask-sock)"
WERKZEUG_DEV = "Werkzeug development server"
GUNICORN = "gunicorn"
PYWSGI = "gevent pywsgi"
NGINX = "nginx"
FLASK = "Flask/Werkzeug"

# Lengths of gevent-websocket 0.10.1's refusal texts, declared but never sent on Python 3 (X3):
# 402 HTTP/1.0 (20), 426 no version (37), 400 bad version (33), 400 no key (41), 400 bad key (17).
X3_LENGTHS = (17, 20, 33, 37, 41)
WERKZEUG_PAGE = re.compile(rb"<!doctype html>\s*<html lang=en>\s*<title>\d{3} ")


class Answer(Record):
    """One request wsdiag sent and the answer it got, reduced to what the tells read."""

    __slots__ = ("name", "head", "body", "http_version", "upgrade", "offered_extensions", "path_exists")
    _defaults = {"body": b"", "http_version": "HTTP/1.1", "upgrade": True, "offered_extensions": (),
                 "path_exists": True}
    name: str  # profile or control name
    head: ResponseHead | None
    body: bytes
    http_version: str  # of the request line sent (default HTTP/1.1)
    upgrade: bool  # the request asked for an upgrade (default True)
    offered_extensions: tuple[str, ...]
    path_exists: bool  # False for the upgrade to a path that cannot exist (default True)


class Layer(Record):
    __slots__ = ("role", "name", "seen", "strong")
    _defaults = {"seen": Factory(dict), "strong": False}
    role: str  # proxy | websocket | server | app
    name: str
    seen: dict[str, list[str]]  # tell -> the answers showing it
    strong: bool

    @property
    def reasons(self) -> list[str]:
        out = []
        for tell, who in self.seen.items():
            names = ", ".join(who) if len(who) <= 2 else f"{len(who)} answers"
            out.append(f"{tell} ({names})")
        return out

    def text(self) -> str:
        return f"{self.name} ({'; '.join(self.reasons)})"


class Identification(Record):
    __slots__ = ("layers",)
    _defaults = {"layers": Factory(list)}
    layers: list[Layer]

    def get(self, role: str) -> Layer | None:
        return next((la for la in self.layers if la.role == role), None)

    def is_(self, role: str, name: str, strong: bool = True) -> bool:
        la = self.get(role)
        return la is not None and la.name == name and (la.strong or not strong)

    @property
    def known(self) -> bool:
        return bool(self.layers)

    @property
    def stack(self) -> str:
        """'nginx → gevent-websocket on gevent pywsgi, app Flask/Werkzeug' or ''."""
        order = {"proxy": 0, "websocket": 1, "server": 2, "app": 3}
        parts = []
        for la in sorted(self.layers, key=lambda la: order[la.role]):
            name = la.name if la.strong else f"{la.name}?"
            if la.role == "proxy":
                parts.append(f"{name} →")
            elif la.role == "server" and any(x.role == "websocket" for x in self.layers):
                parts.append(f"on {name}")
            elif la.role == "app":
                parts.append(f"(app: {name})")
            else:
                parts.append(name)
        return " ".join(parts)

    @property
    def reasons(self) -> str:
        return "; ".join(r for la in self.layers for r in la.reasons)


def _add(found: dict[str, Layer], role: str, name: str, reason: str, strong: bool, who: str = "") -> None:
    la = found.get(role)
    if la is None or (la.name != name and strong and not la.strong):
        # New, or two stacks claimed for one layer: a strong tell wins over a weak one.
        la = found[role] = Layer(role, name, {}, strong)
    elif la.name != name:
        return
    names = la.seen.setdefault(reason, [])
    if who and who not in names:
        names.append(who)
    la.strong = la.strong or strong


def identify(answers: list[Answer]) -> Identification:
    """Apply every tell to every answer; one name per layer, with its reasons."""
    found: dict[str, Layer] = {}
    for a in answers:
        h = a.head
        if h is None:
            continue
        server = (h.get("Server") or "").strip()
        names = [n.lower() for n, _ in h.headers]
        who = a.name
        # -- Server header and proxy pages
        if server.lower().startswith("werkzeug/"):
            _add(found, "server", WERKZEUG_DEV, f"Server: {server}", True, who)
        elif server.lower().startswith("gunicorn"):
            _add(found, "server", GUNICORN, f"Server: {server}", True, who)
        elif server.lower().startswith("nginx"):
            _add(found, "proxy", NGINX, f"Server: {server}", True, who)
        elif server:
            _add(found, "server", server[:60], f"Server: {server[:60]}", True, who)
        if b"<center>nginx" in a.body[:2048] and not server.lower().startswith("nginx"):
            _add(found, "proxy", NGINX, "nginx error page", True, who)
        # -- gevent-websocket's own refusals
        if h.status == 402 and h.reason.lower() == "bad request":
            _add(found, "websocket", GWS, f"'402 Bad Request' to an {a.http_version} upgrade", True, who)
        if h.status in (400, 426) and (h.get("Sec-WebSocket-Version") or "").replace(" ", "") == "13,8,7":
            _add(found, "websocket", GWS, f"{h.status} with Sec-WebSocket-Version: 13, 8, 7", True, who)
        declared = content_length(h)
        if h.status in (400, 402, 426) and not a.body and declared in X3_LENGTHS:
            _add(found, "websocket", GWS, f"{h.status} declaring Content-Length {declared} and sending no body "
                 "(gevent-websocket's str body on Python 3)", True, who)
        if h.status == 101 and not a.path_exists:
            _add(found, "websocket", GWS, "an upgrade to a path that cannot exist got 101 (upgraded before routing)", True, who)
        if h.status == 101 and a.upgrade:
            base = sorted(n for n in names if n not in ("sec-websocket-protocol",))
            ext = h.get("Sec-WebSocket-Extensions") or ""
            if "permessage-deflate" in a.offered_extensions and not ext and base == ["connection", "sec-websocket-accept", "upgrade"]:
                _add(found, "websocket", GWS, "101 with exactly Upgrade/Connection/Accept, permessage-deflate offered and not echoed", False, who)
            if "permessage-deflate" in ext.lower() and "server" not in names and "date" not in names:
                _add(found, "websocket", WSPROTO, f"101 echoes '{ext}' with no Server/Date header", True, who)
        # -- server limits
        if h.status == 414:
            raw_names = [n for n, _ in h.headers]
            if "Content-length" in raw_names and content_length(h) == 0:
                _add(found, "server", PYWSGI, f"414 '{h.reason}' with 'Content-length: 0'", True, who)
            elif b"Request Line is too large" in a.body:
                _add(found, "server", GUNICORN, "414 'Request Line is too large' page", True, who)
        # -- the app
        if WERKZEUG_PAGE.match(a.body[:200]):
            _add(found, "app", FLASK, f"Werkzeug's HTML {h.status} page", True, who)
            if not server and "date" in names and "proxy" not in found:
                _add(found, "server", PYWSGI, "a Flask answer with Date and no Server header", False, who)
    return Identification(list(found.values()))


__all__ = ["Answer", "Layer", "Identification", "identify", "GWS", "WSPROTO", "WERKZEUG_DEV", "GUNICORN", "PYWSGI", "NGINX", "FLASK"]
