"""The sample apps: the three server variants of the original report, with correct handlers.

The report's handler had three bugs of its own, fixed here: its socket registry was never
filled, ``while True`` spun forever once ``receive()`` returned ``None`` after the peer
closed, and it popped a key that was never stored.  ``chat`` below keeps a registry that is
filled and emptied, leaves the loop when the peer closes, and drops peers that fail.
"""

from __future__ import annotations

import json
import threading
import time

from flask import Flask, request
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from wsdiag.flaskapp import VARIANTS

NOT_A_SOCKET = "Connect with a WebSocket client to chat here."


class Room:
    """The sockets of one chat room; safe to use from many greenlets."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: dict[int, object] = {}

    def join(self, sock) -> int:
        with self._lock:
            self._sockets[id(sock)] = sock
        return id(sock)

    def leave(self, sock_id: int) -> None:
        with self._lock:
            self._sockets.pop(sock_id, None)

    def others(self, sock_id: int) -> list:
        with self._lock:
            return [s for i, s in self._sockets.items() if i != sock_id]

    def __len__(self) -> int:
        with self._lock:
            return len(self._sockets)


def chat(sock, room: Room) -> None:
    """Serve one chat socket until its peer leaves: broadcast every message to the others."""
    from geventwebsocket.exceptions import WebSocketError

    me = room.join(sock)
    user = f"user-{me % 100000}"
    try:
        while True:
            try:
                message = sock.receive()  # also answers pings
            except WebSocketError:
                break
            if message is None:  # the peer closed: leave instead of spinning
                break
            payload = json.dumps({"from": user, "message": message, "at": time.time()})
            for other in room.others(me):
                try:
                    other.send(payload)
                except WebSocketError:
                    room.leave(id(other))
    finally:
        room.leave(me)


def make_route_app() -> Flask:
    """Variant 1: the route lacks websocket=True (fails on Werkzeug >= 2)."""
    app = Flask("wsdiag_sample_route")
    app.config["ROOM"] = room = Room()

    @app.route("/ws")
    def ws():
        sock = request.environ.get("wsgi.websocket")
        if not sock:
            return NOT_A_SOCKET
        chat(sock, room)
        return ""

    return app


def make_hook_app() -> Flask:
    """Variant 2: the socket is served in an app-level before_request hook (the workaround)."""
    app = Flask("wsdiag_sample_hook")
    app.config["ROOM"] = room = Room()

    @app.before_request
    def serve_socket():
        sock = request.environ.get("wsgi.websocket")
        if sock:
            chat(sock, room)
            return ""  # stop here: routing would raise a (hidden) WebsocketMismatch
        return None

    @app.route("/ws")
    def ws():
        return NOT_A_SOCKET

    return app


def make_fixed_app() -> Flask:
    """Variant 3: the route is declared with websocket=True (the fix)."""
    app = Flask("wsdiag_sample_fixed")
    app.config["ROOM"] = room = Room()

    @app.route("/ws", websocket=True)
    def ws():
        sock = request.environ.get("wsgi.websocket")
        if not sock:
            return NOT_A_SOCKET, 400
        chat(sock, room)
        return ""

    return app


MAKERS = {"route": make_route_app, "hook": make_hook_app, "fixed": make_fixed_app}

# The browser page of a variant: two sockets (alice and bob) join the room; alice speaks
# once both are open, and bob must hear her. Every event is shown on the page and POSTed
# to /events, so the terminal (and the browser tests) see what the real browser saw.
PAGE = """<!doctype html>
<html lang="en"><meta charset="utf-8"><title>wsdiag sample: {variant}</title>
<style>body{{font:15px system-ui;margin:2em}} li{{font-family:monospace}}</style>
<h1>wsdiag sample: <code>{variant}</code></h1>
<p>{about}</p>
<ul id="log"></ul>
<script>
const variant = {variant_json};
const wsUrl = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + {ws_path_json};
const eventsUrl = {events_json};
const say = (who, event, data) => {{
  const li = document.createElement("li");
  li.textContent = who + ": " + event + " " + (data ? JSON.stringify(data) : "");
  document.getElementById("log").appendChild(li);
  fetch(eventsUrl, {{method: "POST", headers: {{"Content-Type": "application/json"}},
    body: JSON.stringify(Object.assign({{variant, who, event, ua: navigator.userAgent}}, data || {{}}))}});
}};
const open = new Set();
const sockets = {{}};
for (const who of ["alice", "bob"]) {{
  const ws = new WebSocket(wsUrl);
  sockets[who] = ws;
  ws.onopen = () => {{
    say(who, "open");
    open.add(who);
    if (open.size === 2) setTimeout(() => sockets.alice.send("hello from alice"), 100);
  }};
  ws.onmessage = (e) => say(who, "message", {{data: e.data}});
  ws.onerror = () => say(who, "error");
  ws.onclose = (e) => say(who, "close", {{code: e.code, reason: e.reason, wasClean: e.wasClean}});
}}
</script></html>
"""


class BrowserEvents:
    """What sample pages reported, for the terminal and for tests (bounded)."""

    def __init__(self, limit: int = 1000, on_event=None) -> None:
        from collections import deque

        self._events = deque(maxlen=limit)
        self._lock = threading.Lock()
        self.on_event = on_event

    def add(self, event: dict) -> None:
        with self._lock:
            self._events.append(event)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # the terminal log must never break the page
                pass

    def all(self) -> list[dict]:
        with self._lock:
            return list(self._events)


def add_pages(app: Flask, variants: dict[str, str], events: BrowserEvents) -> None:
    """Serve each variant's chat page at /chat/<variant> and collect page events at /events."""
    import json as _json

    def page(variant: str, ws_path: str):
        return PAGE.format(variant=variant, about=VARIANTS[variant], variant_json=_json.dumps(variant),
                           ws_path_json=_json.dumps(ws_path), events_json=_json.dumps("/events"))

    for variant, ws_path in variants.items():
        app.add_url_rule(f"/chat/{variant}", f"page_{variant}", lambda v=variant, p=ws_path: page(v, p))

    @app.route("/events", methods=["GET", "POST"])
    def browser_events():
        if request.method == "POST":
            data = request.get_json(silent=True, force=True)
            if isinstance(data, dict):
                events.add({k: data[k] for k in list(data)[:10] if isinstance(k, str)})
            return "", 204
        return {"events": events.all()}


def make_app(variant: str = "all", tracer=None, events: BrowserEvents | None = None):
    """One variant's app at /ws, or (``all``) every variant mounted at /<variant>/ws.

    ``tracer`` (a ``WsdiagTrace``) instruments every Flask app of the sample; each variant
    has a browser chat page at /chat/<variant>, whose events are collected in ``events``.
    """
    events = events or BrowserEvents()
    def made(make):
        app = make()
        if tracer is not None:
            tracer.init_app(app)
        return app

    if variant != "all":
        app = made(MAKERS[variant])
        add_pages(app, {variant: "/ws"}, events)
        app.add_url_rule("/", "home", lambda: f'<a href="/chat/{variant}">{variant}</a>')
        return app
    index = Flask("wsdiag_sample")
    add_pages(index, {name: f"/{name}/ws" for name in MAKERS}, events)

    @index.route("/")
    def home():
        rows = "".join(f'<li><a href="/chat/{name}">{name}</a> <code>/{name}/ws</code>: {text}</li>' for name, text in VARIANTS.items())
        return f"<h1>wsdiag sample</h1><ul>{rows}</ul>"

    return DispatcherMiddleware(index, {f"/{name}": made(make) for name, make in MAKERS.items()})
