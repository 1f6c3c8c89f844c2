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

from wsdiag.sample import VARIANTS

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


def make_app(variant: str = "all"):
    """One variant's app at /ws, or (``all``) every variant mounted at /<variant>/ws."""
    if variant != "all":
        return MAKERS[variant]()
    index = Flask("wsdiag_sample")

    @index.route("/")
    def home():
        rows = "".join(f"<li><code>/{name}/ws</code>: {text}</li>" for name, text in VARIANTS.items())
        return f"<h1>wsdiag sample</h1><ul>{rows}</ul>"

    return DispatcherMiddleware(index, {f"/{name}": make() for name, make in MAKERS.items()})
