"""Serve a WSGI app the way Flask + gevent-websocket deployments do.

gevent's ``WSGIServer`` with gevent-websocket's ``WebSocketHandler`` (or, for the
"server without WebSocket support" case, without it).  Binds 127.0.0.1 unless told
otherwise.  Imports gevent; only commands that serve import this module.
"""

from __future__ import annotations

import signal
import sys
from typing import Callable


def make_server(app, host: str = "127.0.0.1", port: int = 0, websocket: bool = True, log=None, ssl: dict | None = None):
    """A bound, not yet serving gevent server; ``server.server_port`` is the real port.

    ``ssl`` (e.g. ``{"certfile": ..., "keyfile": ...}``) serves wss:// instead of ws://.
    """
    from gevent.pywsgi import WSGIServer

    kwargs = {"log": log, "error_log": log if log is not None else sys.stderr, **(ssl or {})}
    if websocket:
        from geventwebsocket.handler import WebSocketHandler

        kwargs["handler_class"] = WebSocketHandler
    server = WSGIServer((host, port), app, **kwargs)
    server.init_socket()
    return server


def serve(app, host: str = "127.0.0.1", port: int = 0, websocket: bool = True,
          ready: Callable[[str, int], None] | None = None, log=None, ssl: dict | None = None) -> None:
    """Serve until SIGINT/SIGTERM; call ``ready(host, port)`` once listening."""
    import gevent

    server = make_server(app, host, port, websocket, log, ssl)
    server.start()

    def stop(*_):
        server.stop(timeout=1)

    gevent.signal_handler(signal.SIGTERM, stop)
    gevent.signal_handler(signal.SIGINT, stop)
    if ready is not None:
        ready(host, server.server_port)
    server.serve_forever()
