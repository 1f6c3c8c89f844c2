"""Engine.IO and Socket.IO as text: packets, payloads, the OPEN packet, the connect, and reasons.

Rules this module keeps (pure core: standard library only, no I/O):

* Engine.IO revision 3 (socket.io JS 2.x, python-engineio 3.x) and 4 (JS >= 3, python-engineio
  >= 4) are both spoken; the only differences that matter to a probe are the polling payload
  framing (``len:packet`` in 3, records separated by ``\\x1e`` in 4), who pings (the client in
  3, the server in 4) and that Socket.IO revision 4 servers connect the default namespace by
  themselves.
* Nothing here decides what a server is; ``reason_for`` maps Engine.IO's own refusal messages
  (the JSON-string body of its ``400``) to finding codes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP = range(7)
PACKET_NAMES = ("open", "close", "ping", "pong", "message", "upgrade", "noop")
# Socket.IO packet types (inside an Engine.IO MESSAGE)
SIO_CONNECT, SIO_DISCONNECT, SIO_EVENT, SIO_ACK, SIO_CONNECT_ERROR = 0, 1, 2, 3, 4
RECORD_SEPARATOR = "\x1e"
DEFAULT_PATH = "/socket.io/"


class EngineIOError(ValueError):
    """Bytes that are not an Engine.IO / Socket.IO packet; the message says why."""


# -- URLs ------------------------------------------------------------------------------


def is_socketio_url(resource: str) -> bool:
    """The URL path is ``.../socket.io/`` or the query names an ``EIO`` revision."""
    path, _, query = resource.partition("?")
    if "/socket.io" in path.rstrip("/") + "/" and path.rstrip("/").endswith("socket.io"):
        return True
    return any(k == "EIO" for k, _ in parse_qsl(query, keep_blank_values=True))


def eio_of(resource: str) -> int | None:
    """The EIO revision the URL asks for, if it names one (``EIO=3`` -> 3)."""
    for k, v in parse_qsl(resource.partition("?")[2], keep_blank_values=True):
        if k == "EIO" and v.isascii() and v.isdigit():
            return int(v)
    return None


def engineio_resource(resource: str, *, eio: int, transport: str, sid: str | None = None,
                      path: str | None = None, keep_eio: bool = True) -> str:
    """The request target for one Engine.IO request: the user's path and query, with ``EIO``
    (kept if the URL names one and ``keep_eio``), ``transport`` and ``sid`` set."""
    old_path, _, query = resource.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True)
    named = [v for k, v in pairs if k == "EIO"]
    pairs = [(k, v) for k, v in pairs if k not in ("EIO", "transport", "sid", "t", "b64")]
    use_eio = named[0] if (named and keep_eio) else str(eio)
    out = [("EIO", use_eio), ("transport", transport)]
    if sid is not None:
        out.append(("sid", sid))
    if transport == "polling" and use_eio == "3":
        out.append(("b64", "1"))  # EIO 3 polling: text framing (len:packet), not XHR2 binary framing
    p = path or old_path or DEFAULT_PATH
    if p in ("", "/"):
        p = DEFAULT_PATH
    return p + "?" + urlencode(out + pairs)


# -- Engine.IO packets -----------------------------------------------------------------


def encode_packet(ptype: int, data: str = "") -> str:
    return f"{ptype}{data}"


def parse_packet(text: str) -> tuple[int, str]:
    """``'0{...}'`` -> (OPEN, '{...}'). Raises EngineIOError."""
    if not text:
        raise EngineIOError("empty packet")
    if text[0] == "b":  # base64 binary message (polling)
        return MESSAGE, text[1:]
    if text[0] not in "0123456":
        raise EngineIOError(f"unknown packet type {text[:1]!r}")
    return int(text[0]), text[1:]


def encode_payload(packets: list[str], eio: int) -> str:
    """Packets for one polling POST body."""
    if eio >= 4:
        return RECORD_SEPARATOR.join(packets)
    return "".join(f"{len(p)}:{p}" for p in packets)


def decode_payload(body: str, eio: int) -> list[str]:
    """A polling GET body -> packet strings. Raises EngineIOError on broken framing."""
    if eio >= 4:
        return [p for p in body.split(RECORD_SEPARATOR)] if body else []
    out: list[str] = []
    i = 0
    while i < len(body):
        colon = body.find(":", i)
        if colon < 0 or not (body[i:colon].isascii() and body[i:colon].isdigit()):
            raise EngineIOError(f"bad EIO 3 payload length at {i}")
        n = int(body[i:colon])
        out.append(body[colon + 1:colon + 1 + n])
        i = colon + 1 + n
    return out


@dataclass
class OpenInfo:
    """The Engine.IO OPEN packet's handshake data."""

    sid: str
    upgrades: list[str] = field(default_factory=list)
    ping_interval: int | None = None  # ms
    ping_timeout: int | None = None  # ms
    max_payload: int | None = None
    raw: str = ""

    def to_dict(self) -> dict:
        return {"sid": self.sid, "upgrades": self.upgrades, "pingInterval": self.ping_interval,
                "pingTimeout": self.ping_timeout, "maxPayload": self.max_payload}


def parse_open(data: str) -> OpenInfo:
    """The JSON of an OPEN packet (after the ``0``). Raises EngineIOError."""
    try:
        doc = json.loads(data)
    except ValueError:
        raise EngineIOError("OPEN packet data is not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("sid"), str):
        raise EngineIOError("OPEN packet has no sid")
    ups = doc.get("upgrades")

    def num(key):
        v = doc.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    return OpenInfo(doc["sid"], [u for u in ups if isinstance(u, str)] if isinstance(ups, list) else [],
                    num("pingInterval"), num("pingTimeout"), num("maxPayload"), data)


# -- Socket.IO packets -----------------------------------------------------------------


def normalize_namespace(ns: str | None) -> str:
    if not ns or ns == "/":
        return "/"
    return ns if ns.startswith("/") else "/" + ns


def encode_connect(namespace: str = "/", auth: object = None, eio: int = 4) -> str:
    """The Socket.IO CONNECT as an Engine.IO message: ``40``, ``40/chat,``, ``40{auth}``.

    Socket.IO revision 4 (EIO 3) has no auth payload; the namespace form is ``40/chat``.
    """
    ns = normalize_namespace(namespace)
    text = f"{MESSAGE}{SIO_CONNECT}"
    if ns != "/":
        text += ns + ("," if (eio >= 4) else "")
    if auth is not None and eio >= 4:
        text += json.dumps(auth, separators=(",", ":"))
    return text


def encode_disconnect(namespace: str = "/") -> str:
    ns = normalize_namespace(namespace)
    return f"{MESSAGE}{SIO_DISCONNECT}" + (ns + "," if ns != "/" else "")


@dataclass
class SioPacket:
    ptype: int
    namespace: str
    data: object  # decoded JSON, or None
    raw: str


def parse_socketio(data: str) -> SioPacket:
    """The Socket.IO packet inside an Engine.IO MESSAGE (``'0{"sid":..}'``, ``'4/chat,{..}'``)."""
    if not data or data[0] not in "0123456":
        raise EngineIOError("not a Socket.IO packet")
    ptype = int(data[0])
    rest = data[1:]
    ns = "/"
    if rest.startswith("/"):
        m = re.match(r"(/[^,{\[\"]*)(,?)", rest)
        ns = m.group(1) if m else "/"
        rest = rest[len(m.group(0)):] if m else ""
    # an ack id may sit between the namespace and the JSON
    m = re.match(r"[0-9]+", rest)
    if m and ptype in (SIO_EVENT, SIO_ACK):
        rest = rest[m.end():]
    value: object = None
    if rest:
        try:
            value = json.loads(rest)
        except ValueError:
            value = rest
    return SioPacket(ptype, ns, value, data)


def connect_error_message(pkt: SioPacket) -> str:
    """The refusal text of a CONNECT_ERROR (``{"message": ...}`` in rev 5, a string in rev 4)."""
    d = pkt.data
    if isinstance(d, dict):
        msg = d.get("message")
        extra = d.get("data")
        text = str(msg) if msg is not None else json.dumps(d)
        if extra is not None:
            text += f" (data: {json.dumps(extra)})"
        return text
    return "" if d is None else str(d)


# -- the server's reasons --------------------------------------------------------------


def server_message(body: bytes) -> str | None:
    """Engine.IO's refusal text: its 400 body is a JSON string (``"Not an accepted origin."``)."""
    text = body.decode("utf-8", "replace").strip()
    if not text.startswith('"'):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, str) else None


# (message pattern, code name) -- first match wins; code names live in codes.py (WS8xx)
REASONS: tuple[tuple[str, str], ...] = (
    (r"^Not an accepted origin", "engineio-origin-rejected"),
    (r"unsupported version of the Socket\.IO or Engine\.IO", "engineio-version-mismatch"),
    (r"^Invalid websocket upgrade", "engineio-upgrade-headers-missing"),
    (r"^Invalid session", "engineio-invalid-session"),
    (r"^Invalid transport", "engineio-transport-not-allowed"),
    (r"^Bad Request$", "engineio-no-websocket-transport"),
    (r"^(Not connected|Unexpected HTTP request|Invalid JSONP)", "engineio-bad-request"),
)


def reason_for(message: str | None) -> str | None:
    """The finding name for one of Engine.IO's refusal messages, or None if unknown."""
    if message is None:
        return None
    for pattern, name in REASONS:
        if re.search(pattern, message):
            return name
    return "engineio-bad-request"


# -- what the probe saw, and what it means -----------------------------------------------


@dataclass
class PathRun:
    """One path through Engine.IO (``websocket`` directly, or ``polling`` then the upgrade)."""

    kind: str  # websocket | polling
    reached: str = "start"  # start, 101, open, connected, connect refused, upgrade 101, 3probe, upgraded
    open: OpenInfo | None = None
    connect: tuple | None = None  # ("40", data) | ("44", message)
    stop_step: str | None = None
    detail: str = ""
    status: int | None = None
    message: str | None = None  # Engine.IO's refusal text
    error: str | None = None  # transport error kind (a WS1xx finding name)
    server: str | None = None
    abandoned: bool = False
    not_engineio: bool = False
    no_answer: bool = False
    no_upgrade: bool = False
    replay: dict | None = None  # polling replay of a failed upgrade on this sid
    http: list = field(default_factory=list)
    exchange: object = None  # the findings.Exchange of the request where the path stopped

    def stop(self, step: str, detail: str, **facts) -> None:
        self.stop_step, self.detail = step, detail
        for k, v in facts.items():
            setattr(self, k, v)

    @property
    def ok(self) -> bool:
        if self.kind == "polling":
            return self.reached == "upgraded" or (self.reached == "connected" and self.stop_step is None)
        return self.reached == "connected"

    def to_dict(self) -> dict:
        return {
            "path": self.kind, "reached": self.reached, "ok": self.ok,
            "open": self.open.to_dict() if self.open else None,
            "connect": None if self.connect is None else {"packet": self.connect[0], "data": self.connect[1]},
            "stopped_at": self.stop_step, "detail": self.detail, "status": self.status,
            "engineio_message": self.message, "error": self.error, "replay": self.replay,
            "requests": self.http,
        }


@dataclass
class SioResult:
    url: str
    eio: int
    namespace: str
    origin: str | None
    connect_wait: float = 3.0
    websocket: PathRun = field(default_factory=lambda: PathRun("websocket"))
    polling: PathRun = field(default_factory=lambda: PathRun("polling"))
    replay: dict | None = None  # polling replay of the refused/abandoned WebSocket request
    workers: dict | None = None  # several_processes() outcome
    without_origin: dict | None = None  # after an Origin refusal: the polling handshake without Origin

    def to_dict(self) -> dict:
        return {"eio": self.eio, "namespace": self.namespace, "origin": self.origin,
                "websocket": self.websocket.to_dict(), "polling": self.polling.to_dict(),
                "replay": self.replay, "several_processes": self.workers, "without_origin": self.without_origin}


def _finding(name: str, evidence: dict, subject: str, confidence: str = "certain"):
    from wsdiag.core.codes import BY_NAME
    from wsdiag.core.findings import Finding

    return Finding(BY_NAME[name].code, evidence, subject, confidence)


def _reason_finding(message: str, r: SioResult, subject: str, hidden: bool, sid: str | None = None,
                    step: str = ""):
    name = reason_for(message) or "engineio-bad-request"
    ev: dict = {"message": message, "origin": r.origin, "eio": r.eio,
                "hidden": " (hidden behind a 101 that closes at once)" if hidden else ""}
    if name == "engineio-invalid-session":
        ev.update(sid=message.split()[-1] if message.split() else sid, step=step or subject)
    if name == "engineio-origin-rejected" and r.without_origin is not None:
        ev["without_origin"] = "opened a session" if r.without_origin.get("opened") else \
            (r.without_origin.get("message") or r.without_origin.get("status"))
        if r.without_origin.get("opened"):
            ev["hidden"] += "; the same request without Origin is accepted (non-browser clients work, browsers fail)"
    if name == "engineio-transport-not-allowed":
        ev["transport"] = subject
    if name == "engineio-no-websocket-transport":
        ev["detail"] = "the upgrade is refused with a bare \"Bad Request\""
    return _finding(name, ev, subject)


def diagnose(r: SioResult) -> tuple[list, list]:
    """(causes, facts) for one Socket.IO probe; causes ranked, most specific first."""
    causes: list = []
    facts: list = []
    seen: set[str] = set()

    def add(f) -> None:
        if f.code not in seen:
            seen.add(f.code)
            causes.append(f)

    w, p = r.websocket, r.polling
    for run in (w, p):
        if run.error and run.status is None:
            from wsdiag.core.codes import BY_NAME

            if run.error in BY_NAME:
                add(_finding(run.error, {"detail": run.detail}, run.kind))
    # 1. Engine.IO said why (directly, or through the polling replay)
    if w.message:
        add(_reason_finding(w.message, r, "websocket", hidden=False, step="websocket handshake"))
    if r.replay and r.replay.get("message"):
        add(_reason_finding(r.replay["message"], r, "websocket", hidden=w.abandoned, step="websocket handshake"))
        facts.append(_finding("reason-recovered-by-polling",
                              {"how": r.replay["how"], "message": r.replay["message"]}, "websocket"))
    if p.message and not (p.message == "Invalid transport" and (p.stop_step or "").startswith("upgrade")
                          and w.message == "Invalid websocket upgrade"):
        add(_reason_finding(p.message, r, "polling", hidden=False, step=p.stop_step or "polling"))
    if p.replay and p.replay.get("message"):
        add(_reason_finding(p.replay["message"], r, "polling", hidden=p.abandoned, step=p.stop_step or "upgrade"))
        facts.append(_finding("reason-recovered-by-polling",
                              {"how": p.replay["how"], "message": p.replay["message"]}, "polling upgrade"))
    # 2. several processes: identical requests, different answers
    wk = r.workers or {}
    outs = wk.get("outcomes") or {}
    if "200" in outs and any(k.startswith("400 Invalid session") for k in outs):
        add(_finding("engineio-several-processes", {
            "outcomes": ", ".join(f"{v}x {k}" for k, v in sorted(outs.items())),
            "sessions": wk.get("opened")}, "polling sessions"))
    # 3. the connect
    for run in (w, p):
        if run.connect and run.connect[0] == "44":
            msg = run.connect[1]
            name = "socketio-namespace-not-served" if msg == "Unable to connect" else "socketio-connect-refused"
            add(_finding(name, {"namespace": r.namespace, "message": msg}, run.kind))
        elif run.no_answer:
            add(_finding("socketio-no-connect-answer", {"seconds": r.connect_wait, "detail": run.detail}, run.kind))
    # 4. transport-level shapes without a message
    polling_works = p.open is not None or bool(r.replay and r.replay.get("opened"))
    if not w.ok and not w.message and not (r.replay and r.replay.get("message")) and w.connect is None \
            and not w.no_answer and not (w.error and w.status is None):
        if w.not_engineio and not polling_works:
            add(_finding("not-engineio", {"path": r.url, "detail": w.detail}, "websocket"))
        elif polling_works and w.status == 500:
            add(_finding("engineio-gevent-websocket-not-serving", {"status": w.status, "detail": w.detail},
                         "websocket", "likely"))
        elif polling_works:
            add(_finding("socketio-websocket-failed-polling-works", {"detail": w.detail}, "websocket", "likely"))
        elif p.status is not None and p.message is None and p.open is None:
            add(_finding("not-engineio", {"path": r.url, "detail": f"websocket: {w.detail}; polling: {p.detail}"},
                         "websocket"))
    if p.no_upgrade and "engineio-transport-not-allowed" not in {c.info.name for c in causes}:
        add(_finding("engineio-no-websocket-transport",
                     {"detail": f"the OPEN packet offers upgrades {p.open.upgrades if p.open else []}"}, "polling"))
    ws_explained = not w.ok and any(c.subject == "websocket" for c in causes)
    if p.stop_step and p.stop_step.startswith("upgrade") and not p.no_upgrade and not p.message \
            and not (p.replay and p.replay.get("message")) and not (ws_explained and p.status == w.status):
        add(_finding("socketio-upgrade-stalled", {"step": p.stop_step, "detail": p.detail}, "polling"))
    if p.not_engineio and not w.ok and "not-engineio" not in {c.info.name for c in causes}:
        add(_finding("not-engineio", {"path": r.url, "detail": p.detail}, "polling"))
    names = [c.info.name for c in causes]
    if "engineio-several-processes" in names:  # the explanation of every "Invalid session"
        causes.sort(key=lambda c: c.info.name != "engineio-several-processes")
    for i, c in enumerate(causes, 1):
        c.rank = i
    for run in (w, p):
        if run.ok:
            facts.append(_finding("socketio-connected", {
                "namespace": r.namespace,
                "transport": "websocket" if run.kind == "websocket" else "polling, upgraded to websocket"
                if run.reached == "upgraded" else "polling",
                "eio": r.eio, "upgrades": run.open.upgrades if run.open else None}, run.kind))
    return causes, facts


# -- the options of the Socket.IO mode (data; the CLI builds them without importing the prober)


@dataclass
class SioOptions:
    eio: int = 4
    eio_forced: bool = False  # --eio given: it overrides an EIO= in the URL
    namespace: str = "/"
    auth: Any = None
    path: str | None = None  # --socketio PATH
    sessions: int = 6  # polling sessions for the several-processes check (0: skip)
    connect_wait: float = 3.0  # seconds to wait for the answer to the connect


def parse_auth(text: str | None):
    """--auth JSON -> object; raises ValueError with a one-line message."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"--auth is not JSON: {exc}") from None
