"""Serve a WSGI app the way Flask + gevent-websocket deployments do.

gevent's ``WSGIServer`` with gevent-websocket's ``WebSocketHandler`` (or, for the
"server without WebSocket support" case, without it).  Binds 127.0.0.1 unless told
otherwise.  Imports gevent; only commands that serve import this module.
"""

from __future__ import annotations

import signal
import sys
from typing import Callable


def watch_parent() -> bool:
    """In a server child started by ``wsdiag.proc.spawn``: end it (and its group) when wsdiag dies.

    The lifeline (``wsdiag.proc``) is watched in a greenlet when gevent has monkey-patched
    ``threading`` (a blocking read in a patched "thread" would stall the hub), else in a real
    thread. Returns False without a lifeline (a server started by hand).
    """
    from wsdiag import proc

    fd = proc.lifeline_fd()
    if fd is None:
        return False
    patched = False
    if "gevent" in sys.modules:
        try:
            from gevent import monkey

            patched = bool(monkey.is_module_patched("threading"))
        except Exception:
            patched = False
    if not patched:
        proc.watch_lifeline_thread(fd)
        return True
    import os

    import gevent
    from gevent.socket import wait_read

    def watch():
        try:
            while True:
                wait_read(fd)
                if not os.read(fd, 4096):
                    break
        except Exception:
            return
        proc.parent_gone(gevent.sleep)

    gevent.spawn(watch)
    return True


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


def run_sample_server(variant: str, host: str, port: int, websocket: bool, ready, on_trace=None, on_event=None) -> str:
    """Serve the sample, instrumented with wsdiag's trace; returns after Ctrl-C/SIGTERM.

    ``ready(host, port, trace_url, token)`` is called once listening; the trace channel is
    on (loopback, its own port, a fresh token) so probes can read each upgrade's stages.
    """
    import secrets

    from wsdiag.flaskapp.trace import WsdiagTrace
    from wsdiag.flaskapp.sample import make_app

    from wsdiag.flaskapp.sample import BrowserEvents

    watch_parent()  # started by wsdiag (start_sample): end with it, even if it is SIGKILLed
    tracer = WsdiagTrace(channel=True, token=secrets.token_hex(16), on_trace=on_trace)
    app = make_app(variant, tracer=tracer, events=BrowserEvents(on_event=on_event))
    serve(app, host, port, websocket=websocket,
          ready=lambda h, p: ready(h, p, tracer.trace_url, tracer.token))
    tracer.stop_channel()
    return tracer.token
