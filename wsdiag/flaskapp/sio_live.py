"""``check --app``: Flask-SocketIO's facts read from the live objects (``socketio.server.eio``).

What python-engineio really chose when the app was built: ``eio.async_mode``, the WebSocket
driver in ``eio._async['websocket']`` (for the gevent driver, whether that module took
gevent-websocket or simple-websocket), ``eio.cors_allowed_origins``, the client manager
(``socketio.server.manager``: a message queue when it is not the in-process ``Manager``), and the
endpoint the middleware serves (``engineio_path``). ``wsdiag.check.sio`` turns them into the
same findings the static model gives (WS522-WS524). Nothing is called on the app.
"""

from __future__ import annotations

import sys

from wsdiag.check import sio as _sio

_IN_PROCESS_MANAGERS = ("Manager", "BaseManager", "AsyncManager")


def socketio_facts(app) -> list[dict]:
    """One dict per Flask-SocketIO extension of a Flask app (empty without Flask-SocketIO)."""
    ext = (getattr(app, "extensions", None) or {}).get("socketio")
    server = getattr(ext, "server", None)
    eio = getattr(server, "eio", None)
    if eio is None:
        return []
    ws = (getattr(eio, "_async", None) or {}).get("websocket")
    mode = getattr(eio, "async_mode", None)
    driver, state = _driver(mode, ws)
    cors = getattr(eio, "cors_allowed_origins", None)
    cors_value = "expr" if callable(cors) else (list(cors) if isinstance(cors, (list, tuple, set)) else cors)
    manager = getattr(server, "manager", None)
    mname = type(manager).__name__ if manager is not None else "?"
    queue = "none (one process only)" if mname in _IN_PROCESS_MANAGERS else f"yes ({mname})"
    if not getattr(eio, "allow_upgrades", True) or "websocket" not in (getattr(eio, "transports", None) or ["websocket"]):
        driver += " (WebSocket transport disabled by the app's options)"
    tls = []
    if (getattr(app, "config", None) or {}).get("PREFERRED_URL_SCHEME") == "https":
        tls.append("PREFERRED_URL_SCHEME = 'https'")
    return [{"endpoint": _endpoint(app, ext), "async_mode": mode, "driver": driver, "websocket_state": state,
             "cors": _sio._cors_text(cors_value if cors_value is not None else _sio.UNSET) if not callable(cors)
             else "a callable (decided per request)",
             "cors_value": cors_value if cors_value is not None else _sio.UNSET,
             "queue": queue, "message_queue": mname not in _IN_PROCESS_MANAGERS, "tls": tls}]


def _driver(mode, ws) -> tuple[str, str]:
    if ws is None:
        return "none (no WebSocket transport)", "no-websocket"
    module = getattr(ws, "__module__", "") or ""
    if module.endswith(".gevent"):
        mod = sys.modules.get(module)
        if mod is not None and getattr(mod, "SimpleWebSocketWSGI", object) is None:
            return "gevent-websocket (needs its WebSocketHandler or GeventWebSocketWorker)", "ok"
        if mod is not None and getattr(mod, "_websocket_available", None) is True:  # python-engineio < 4.7.1
            return "gevent-websocket (needs its WebSocketHandler or GeventWebSocketWorker)", "ok"
        return "simple-websocket", "ok"
    if module.endswith(".threading") or module.endswith("._websocket_wsgi"):
        mod = sys.modules.get("engineio.async_drivers.threading")
        if mod is not None and getattr(mod, "_websocket_available", True) is False:
            return "none (no WebSocket transport)", "no-websocket"
        return "simple-websocket", "ok"
    if module.endswith(".eventlet"):
        return "eventlet.websocket", "ok"
    if module.endswith(".gevent_uwsgi"):
        return "uWSGI's websocket (only inside uWSGI)", "ok"
    return f"{module}.{getattr(ws, '__name__', '?')}", "ok"


def _endpoint(app, ext) -> str:
    w = getattr(app, "wsgi_app", None)
    for _ in range(8):  # through ProxyFix and other wrappers
        if w is None:
            break
        path = getattr(w, "engineio_path", None)
        if isinstance(path, str):
            return "/" + path.strip("/") + "/"
        w = getattr(w, "app", None) or getattr(w, "wsgi_app", None)
    options = getattr(ext, "server_options", None) or {}
    return _sio.endpoint(options.get("path", _sio.UNSET))
