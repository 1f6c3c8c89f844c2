"""Start a user's Flask app the way production runs it, instrumented, in a child process.

Parent side: ``start_app("pkg.module:create_app('prod')") -> RunningApp``.  Child side:
``python -m wsdiag.flaskapp.appserver SPEC`` loads the app like ``flask --app`` does,
wraps it with ``WsdiagTrace`` (channel on, token from the parent), serves it under gevent's
``WSGIServer`` with gevent-websocket's ``WebSocketHandler`` (or gunicorn with
``GeventWebSocketWorker``) on a free 127.0.0.1 port, and sends one ready document on
wsdiag's ready channel (``wsdiag.proc.signal_ready``: a pipe of its own, never stdout,
which the app may fill, close or leave without a newline)::

    {"app_port": ..., "trace_port": ..., "routes": [...], ...}

or, when the app cannot be loaded, ``{"error": "<one line>"}``.

Rules this module keeps:

* The app runs in a child; every wait for it is bounded; ``RunningApp.stop`` always ends it
  (and the child ends itself when the parent is gone: ``wsdiag.proc``'s lifeline pipe).
* Failures to start are ``AppStartError`` with one line (exception type and message, plus
  where in the user's code), never a traceback.
* Nothing heavy at import time: the child monkey-patches with gevent before it imports
  Flask, the user's app or anything that pulls in ``ssl``.
"""

from __future__ import annotations

import ast
import json
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any

READY_PREFIX = "WSDIAG-APPSERVER"
READY = re.compile(READY_PREFIX + r" (\{.*\}) (\d+)\s*$")
TOKEN_ENV = "WSDIAG_APPSERVER_TOKEN"  # parent -> child only; removed before the app is imported
WATCH_ENV = "WSDIAG_APPSERVER_WATCH_PARENT"  # "0": do not watch the lifeline of wsdiag.proc.spawn
GUNICORN_WORKER = "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"
# how ``probe --app`` can serve an app (``--server``); the default comes from the app's own
# server call or deployment config (``wsdiag.check.deploy.choose_server``)
SERVERS = ("gevent-websocket", "gevent", "dev", "gunicorn:WORKER")
EXIT_START_FAILED = 3
MAX_HOOKED_ROUTES = 20  # rules listed only because a before_request hook serves sockets


class AppStartError(RuntimeError):
    """The app could not be started; the message is one line."""


# -- the app spec, parsed like ``flask --app`` ---------------------------------------------

@dataclass(frozen=True)
class AppSpec:
    """``MODULE`` or ``MODULE:NAME`` or ``MODULE:factory(args)``; MODULE may be a file path."""

    text: str
    target: str  # the module part: dotted name or path
    name: str | None = None  # attribute or factory name
    call: bool = False  # NAME(...) was written
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


def parse_app_spec(text: str) -> AppSpec:
    """Parse an app spec; factory arguments must be literals (``ast.literal_eval``)."""
    text = (text or "").strip()
    if not text:
        raise AppStartError("no app given (pass MODULE:APP or set FLASK_APP)")
    target, expr = _split(text)
    if not target:
        raise AppStartError(f"bad app spec {text!r}: no module before ':'")
    if not expr:
        return AppSpec(text, target)
    try:
        node = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError:
        raise AppStartError(f"bad app spec {text!r}: {expr!r} is not a name or a call") from None
    if isinstance(node, ast.Name):
        return AppSpec(text, target, node.id)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        try:
            args = tuple(ast.literal_eval(a) for a in node.args)
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg is not None}
        except ValueError:
            raise AppStartError(f"bad app spec {text!r}: factory arguments must be literals") from None
        if any(kw.arg is None for kw in node.keywords):
            raise AppStartError(f"bad app spec {text!r}: **kwargs are not supported")
        return AppSpec(text, target, node.func.id, True, args, kwargs)
    raise AppStartError(f"bad app spec {text!r}: {expr!r} is not a name or a call")


def _split(text: str) -> tuple[str, str]:
    # a colon followed by a slash or backslash is a Windows drive, not the separator
    parts = re.split(r":(?![\\/])", text, maxsplit=1)
    return parts[0].strip(), (parts[1] if len(parts) > 1 else "").strip()


# -- loading (child side) -----------------------------------------------------------------

def _prepare_import(path: str) -> str:
    """Module name for a path or dotted name; puts its root on sys.path (as flask.cli does)."""
    path = os.path.realpath(path)
    fname, ext = os.path.splitext(path)
    if ext == ".py":
        path = fname
    if os.path.basename(path) == "__init__":
        path = os.path.dirname(path)
    module_name = []
    while True:
        path, name = os.path.split(path)
        module_name.append(name)
        if not os.path.exists(os.path.join(path, "__init__.py")):
            break
    if sys.path[0] != path:
        sys.path.insert(0, path)
    return ".".join(module_name[::-1])


def _where(exc: BaseException) -> str:
    """`` (file:line)`` of the innermost traceback frame outside importlib, or ''."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f" ({_short(exc.filename)}:{exc.lineno})"
    tb, last = exc.__traceback__, None
    while tb is not None:
        fn = tb.tb_frame.f_code.co_filename
        if not fn.startswith("<frozen") and "importlib" not in fn and not fn.endswith(os.path.join("flaskapp", "appserver.py")):
            last = (fn, tb.tb_lineno)
        tb = tb.tb_next
    return f" ({_short(last[0])}:{last[1]})" if last else ""


def _short(filename: str) -> str:
    try:
        rel = os.path.relpath(filename)
        return rel if not rel.startswith("..") else filename
    except ValueError:
        return filename


def _one_line(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {msg[0]}" if msg else type(exc).__name__
    if isinstance(exc, ValueError) and msg and msg[0] == "Invalid async_mode specified":
        # python-engineio found no async mode whose driver loads (FM-26b, wsdiag check: WS524)
        text += (" (python-engineio could not load that async mode's driver: threading, and gevent without "
                 "gevent-websocket, need simple-websocket installed; eventlet needs eventlet)")
    return text[:500]


def _import(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            raise AppStartError(f"could not import {module!r}: {_one_line(exc)}") from None
        raise AppStartError(f"importing {module!r} raised {_one_line(exc)}{_where(exc)}") from None
    except BaseException as exc:  # noqa: B902 - SystemExit at import time is a start failure too
        raise AppStartError(f"importing {module!r} raised {_one_line(exc)}{_where(exc)}") from None


def _is_flask(obj) -> bool:
    from flask import Flask

    return isinstance(obj, Flask)


def _call_factory(module_name: str, name: str, factory, args=(), kwargs=None):
    shown = f"{name}({', '.join([repr(a) for a in args] + [f'{k}={v!r}' for k, v in (kwargs or {}).items()])})"
    try:
        return factory(*args, **(kwargs or {}))
    except BaseException as exc:  # noqa: B902
        raise AppStartError(f"{shown} in {module_name!r} raised {_one_line(exc)}{_where(exc)}") from None


def load_app(spec: AppSpec | None):
    """Import and build the app; returns the WSGI callable to serve (often the Flask app)."""
    if spec is None:
        for candidate in ("wsgi.py", "app.py"):
            if os.path.exists(candidate):
                return load_app(AppSpec(candidate, candidate))
        raise AppStartError("no app given: pass MODULE:APP, set FLASK_APP, or run where wsgi.py or app.py is")
    module_name = _prepare_import(spec.target)
    module = _import(module_name)
    if spec.name is None:
        for attr in ("app", "application"):  # as flask --app: these names first (a WSGI wrapper too)
            obj = getattr(module, attr, None)
            if obj is not None and (_is_flask(obj) or _flask_mounts(obj)):
                return obj
        found = [v for v in list(vars(module).values()) if _is_flask(v)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise AppStartError(f"several Flask apps in {module_name!r}: name one, e.g. {module_name}:app")
        for attr in ("create_app", "make_app"):
            factory = getattr(module, attr, None)
            if callable(factory):
                app = _call_factory(module_name, attr, factory)
                if _is_flask(app) or _flask_mounts(app):
                    return app
        raise AppStartError(f"no Flask app found in {module_name!r} (looked for app, application, "
                            "a single Flask instance, create_app(), make_app())")
    if not hasattr(module, spec.name):
        raise AppStartError(f"{module_name!r} has no attribute {spec.name!r}")
    obj = getattr(module, spec.name)
    import inspect

    if inspect.isfunction(obj) or spec.call:
        if not callable(obj):
            raise AppStartError(f"{module_name}:{spec.name} is not callable")
        obj = _call_factory(module_name, spec.name, obj, spec.args, spec.kwargs)
    if not (_is_flask(obj) or _flask_mounts(obj)):
        raise AppStartError(f"{module_name}:{spec.name} is a {type(obj).__name__}, not a Flask app")
    return obj


def _flask_mounts(wsgi, prefix: str = "", depth: int = 0) -> list[tuple[str, Any]]:
    """(mount prefix, Flask app) pairs inside a WSGI callable (a Flask app, DispatcherMiddleware...)."""
    if depth > 4 or wsgi is None:
        return []
    if _is_flask(wsgi):
        return [(prefix, wsgi)]
    out: list[tuple[str, Any]] = []
    mounts = getattr(wsgi, "mounts", None)
    if isinstance(mounts, dict):  # werkzeug's DispatcherMiddleware
        out += _flask_mounts(getattr(wsgi, "app", None), prefix, depth + 1)
        for mount, sub in mounts.items():
            out += _flask_mounts(sub, prefix + mount, depth + 1)
        return out
    for attr in ("app", "application", "wsgi_app"):  # ProxyFix-style wrappers
        inner = getattr(wsgi, attr, None)
        if inner is not None and inner is not wsgi:
            found = _flask_mounts(inner, prefix, depth + 1)
            if found:
                return found
    return []


# -- route discovery (child side) ---------------------------------------------------------

_CONVERTER = re.compile(r"<(?:(?P<conv>[a-zA-Z_][a-zA-Z0-9_]*)(?:\((?P<args>[^)]*)\))?:)?(?P<var>[a-zA-Z_][a-zA-Z0-9_]*)>")
_SAMPLES = {"int": "1", "float": "1.0", "uuid": "00000000-0000-0000-0000-000000000000"}


def example_path(rule: str, defaults: dict | None = None) -> str:
    """A concrete path for a rule: converters replaced by sample values."""
    def sub(m: re.Match) -> str:
        var, conv, args = m.group("var"), m.group("conv") or "default", m.group("args") or ""
        if defaults and var in defaults:
            return str(defaults[var])
        if conv == "any" and args:
            return args.split(",")[0].strip().strip("'\"")
        return _SAMPLES.get(conv, "x")

    return _CONVERTER.sub(sub, rule)


def _view_reads_socket(view) -> bool:
    from wsdiag.flaskapp.inprocess import view_reads_socket

    return view_reads_socket(view)


def _source_mentions(func, needle: str) -> bool:
    import inspect

    try:
        return needle in inspect.getsource(inspect.unwrap(getattr(func, "view_class", None) or func))
    except (OSError, TypeError, ValueError):
        return False


def discover(mounts: list[tuple[str, Any]], path_hint: str | None = None) -> tuple[list[dict], list[str]]:
    """Candidate WebSocket routes and notes (hooks that serve sockets) of the mounted apps."""
    from wsdiag.flaskapp.inprocess import view_reads_socket
    from wsdiag.flaskapp.trace import _names

    scans: dict = {}  # one static scan per module, shared by every view and hook

    def reads(obj) -> bool:  # the same answer `check --app` gives (helpers in the module count)
        return view_reads_socket(obj, scans)

    routes: list[dict] = []
    notes: list[str] = []
    hooked_only = 0
    if path_hint:
        routes.append(_hint_route(mounts, path_hint))
    for prefix, app in mounts:
        socket_hooks: dict[str | None, list[str]] = {}
        for key, funcs in list(app.before_request_funcs.items()):
            for f in funcs:
                if reads(f):
                    socket_hooks.setdefault(key, []).append(_names(f)[0])
        for key, names in socket_hooks.items():
            where = ("app" if key is None else f"blueprint {key!r}") + (f" (mounted at {prefix})" if prefix else "")
            notes.append(f"{where} before_request hook(s) {', '.join(names)} read wsgi.websocket: "
                         f"they serve sockets before routing{' on every path' if key is None else ''} (the workaround)")
        for rule in app.url_map.iter_rules():
            if rule.endpoint == "static":
                continue
            view = app.view_functions.get(rule.endpoint)
            ws = bool(getattr(rule, "websocket", False))
            reads_ws = view is not None and reads(view)
            bp = rule.endpoint.rpartition(".")[0] or None
            hooked = None in socket_hooks or any(bp and (bp == k or bp.startswith(k + ".")) for k in socket_hooks if k)
            if not (ws or reads_ws or hooked):
                continue
            if not (ws or reads_ws):
                hooked_only += 1
                if hooked_only > MAX_HOOKED_ROUTES:
                    continue
            reason = "websocket=True" if ws else "view reads wsgi.websocket" if reads_ws else "before_request hook serves sockets"
            routes.append({
                "rule": prefix + rule.rule,
                "endpoint": rule.endpoint,
                "websocket": ws,
                "methods": sorted(rule.methods or ()),
                "blueprint": bp,
                "reads_wsgi_websocket": reads_ws,
                "example_path": prefix + example_path(rule.rule, rule.defaults),
                "reason": reason,
            })
        sockets = getattr(getattr(app, "wsgi_app", None), "ws", None)  # flask-sockets' own url_map
        for rule in (sockets.url_map.iter_rules() if hasattr(getattr(sockets, "url_map", None), "iter_rules") else ()):
            routes.append({"rule": prefix + rule.rule, "endpoint": rule.endpoint, "websocket": False,
                           "methods": sorted(rule.methods or ()), "blueprint": None, "reads_wsgi_websocket": True,
                           "example_path": prefix + example_path(rule.rule, rule.defaults), "reason": "flask-sockets"})
        if "socketio" in getattr(app, "extensions", {}):  # Flask-SocketIO serves /socket.io/ (a WSGI middleware)
            sio = app.extensions["socketio"]
            path = "/" + str(getattr(getattr(sio, "server_options", None), "get", lambda *_: None)("path")
                             or "socket.io").strip("/") + "/"
            routes.append({"rule": prefix + path, "endpoint": None, "websocket": None, "methods": ["GET"],
                           "blueprint": None, "reads_wsgi_websocket": False, "example_path": prefix + path,
                           "reason": "Flask-SocketIO"})
    if hooked_only > MAX_HOOKED_ROUTES:
        notes.append(f"{hooked_only} rules could be served by such hooks; the first {MAX_HOOKED_ROUTES} are listed")
    seen, unique = set(), []
    for r in routes:  # the hint first; one entry per example path
        if r["example_path"] not in seen:
            seen.add(r["example_path"])
            unique.append(r)
    return unique, notes


def _hint_route(mounts, path: str) -> dict:
    entry = {"rule": None, "endpoint": None, "websocket": None, "methods": [], "blueprint": None,
             "reads_wsgi_websocket": False, "example_path": path, "reason": "path hint"}
    for prefix, app in sorted(mounts, key=lambda m: -len(m[0])):
        if prefix and not (path == prefix or path.startswith(prefix + "/")):
            continue
        adapter = app.url_map.bind("localhost")
        for flag in (True, False):
            try:
                rule, _ = adapter.match(path[len(prefix):] or "/", method="GET", return_rule=True, websocket=flag)
            except Exception:
                continue
            view = app.view_functions.get(rule.endpoint)
            entry.update(rule=prefix + rule.rule, endpoint=rule.endpoint, websocket=bool(getattr(rule, "websocket", False)),
                         methods=sorted(rule.methods or ()), blueprint=rule.endpoint.rpartition(".")[0] or None,
                         reads_wsgi_websocket=view is not None and _view_reads_socket(view))
            return entry
        break
    return entry


# -- the child ------------------------------------------------------------------------------

def _emit(info: dict, port: int) -> None:
    from wsdiag.proc import signal_ready

    if not signal_ready(dict(info, port=port)):  # started by hand: say it on stdout
        sys.stdout.write(f"{READY_PREFIX} {json.dumps(info, default=str)} {port}\n")
        sys.stdout.flush()


def _fail(message: str) -> None:
    _emit({"error": message}, 0)
    sys.stderr.flush()
    os._exit(EXIT_START_FAILED)  # no atexit output after the one line


def _prepare(spec_text: str | None, path_hint: str | None, token: str):
    """Load, discover and instrument; returns (wsgi, ext, info) or exits with the error line."""
    try:
        spec = parse_app_spec(spec_text) if spec_text else None
        wsgi = load_app(spec)
        mounts = _flask_mounts(wsgi)
        if not mounts:
            raise AppStartError(f"{spec_text} is not a Flask app")
        routes, notes = discover(mounts, path_hint)
        from wsdiag.flaskapp.trace import EXTENSION_KEY, WsdiagTrace

        ours = WsdiagTrace(channel=False, token=token)
        owners = []
        for _, app in mounts:
            owner = app.extensions.get(EXTENSION_KEY)
            if owner is None:
                ours.init_app(app)
                owner = ours
            owners.append(owner)
        ext = owners[0] if len(set(map(id, owners))) == 1 else ours
        if ext is not ours:
            ext.token = token
        info = {"routes": routes, "notes": notes, "flask": _dist("flask"),
                "werkzeug": _dist("werkzeug"), "python": sys.version.split()[0], "pid": os.getpid()}
        return wsgi, ext, info
    except AppStartError as exc:
        _fail(str(exc))
    except BaseException as exc:  # noqa: B902 - an unexpected failure is still one line
        _fail(f"{_one_line(exc)}{_where(exc)}")
    raise AssertionError("unreachable")


def _dist(name: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return None


def _watch_parent() -> None:
    """End this process when the parent goes away: the lifeline of ``wsdiag.proc.spawn``, watched
    by ``wsdiag.flaskapp.server.watch_parent`` (a greenlet once gevent patched, else a thread)."""
    from wsdiag.flaskapp.server import watch_parent

    watch_parent()


def _serve_gevent(spec_text, path_hint, token, monkey_patch: bool, watch: bool, websocket: bool = True) -> int:
    """gevent's WSGIServer, with gevent-websocket's WebSocketHandler (``websocket``) or without."""
    if monkey_patch:
        from gevent import monkey

        monkey.patch_all()
    wsgi, ext, info = _prepare(spec_text, path_hint, token)
    from wsdiag.flaskapp.server import serve

    def ready(host: str, port: int) -> None:
        _, trace_port = ext.start_channel(token)
        info.update(host=host, app_port=port, trace_port=trace_port,
                    server="gevent WSGIServer + geventwebsocket WebSocketHandler" if websocket
                    else "gevent WSGIServer (no WebSocketHandler)")
        _emit(info, port)

    if watch:
        _watch_parent()  # after the app's import: it may have patched itself
    serve(wsgi, "127.0.0.1", 0, websocket=websocket, ready=ready, log=None)
    return 0


def _serve_dev(spec_text, path_hint, token, watch: bool) -> int:
    """Werkzeug's development server, threaded, as ``app.run()`` / ``flask run`` serve the app."""
    import signal

    wsgi, ext, info = _prepare(spec_text, path_hint, token)
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, wsgi, threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    _, trace_port = ext.start_channel(token)
    info.update(host="127.0.0.1", app_port=server.server_port, trace_port=trace_port,
                server="Werkzeug development server (threaded)")
    if watch:
        _watch_parent()
    _emit(info, server.server_port)
    server.serve_forever()
    return 0


def _serve_gunicorn(spec_text, path_hint, token, watch: bool, worker: str = GUNICORN_WORKER) -> int:
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:
        _fail("gunicorn is not installed in this environment")
    loaded: dict[str, Any] = {}
    threads = 1
    if worker.startswith("gthread"):  # gunicorn:gthread or gunicorn:gthread/8
        worker, _, n = worker.partition("/")
        threads = int(n) if n.isdigit() else 8

    class App(BaseApplication):
        def load_config(self):
            for key, value in {
                "bind": ["127.0.0.1:0"], "workers": 1, "worker_class": worker, "threads": threads,
                "accesslog": None, "errorlog": "-", "loglevel": "warning",
                "graceful_timeout": 1, "timeout": 30, "post_worker_init": post_worker_init,
            }.items():
                self.cfg.set(key, value)

        def load(self):  # in the worker, after GeventWebSocketWorker monkey-patched
            wsgi, ext, info = _prepare(spec_text, path_hint, token)
            loaded.update(ext=ext, info=info)
            return wsgi

    def post_worker_init(running):
        ext, info = loaded["ext"], loaded["info"]
        port = running.sockets[0].getsockname()[1]
        _, trace_port = ext.start_channel(token)
        info.update(host="127.0.0.1", app_port=port, trace_port=trace_port,
                    server=f"gunicorn -k {worker}" + (f" --threads {threads}" if threads > 1 else ""))
        _emit(info, port)

    if watch:
        _watch_parent()
    App().run()
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m wsdiag.flaskapp.appserver",
                                     description="Serve a Flask app instrumented by wsdiag (child of start_app).")
    parser.add_argument("spec", nargs="?", help="MODULE[:APP] or MODULE:create_app(...); default FLASK_APP")
    parser.add_argument("--path-hint")
    parser.add_argument("--gunicorn", action="store_true")
    parser.add_argument("--server", help="gevent-websocket | gevent | dev | gunicorn:WORKER (see SERVERS)")
    parser.add_argument("--no-monkey-patch", action="store_true")
    args = parser.parse_args(argv)
    token = os.environ.pop(TOKEN_ENV, None)
    watch = os.environ.pop(WATCH_ENV, None) != "0"  # "0": do not end with the parent (manual runs)
    os.environ.pop("WSDIAG_TRACE_TOKEN", None)  # the app's own WsdiagTrace must not open a channel
    if not token:
        _fail(f"{TOKEN_ENV} is not set (this module is started by wsdiag's start_app)")
    spec_text = args.spec or os.environ.get("FLASK_APP") or None
    server = args.server or ("gunicorn:" + GUNICORN_WORKER if args.gunicorn else "gevent-websocket")
    if server.startswith("gunicorn:"):
        return _serve_gunicorn(spec_text, args.path_hint, token, watch, server.split(":", 1)[1] or GUNICORN_WORKER)
    if server == "dev":
        return _serve_dev(spec_text, args.path_hint, token, watch)
    return _serve_gevent(spec_text, args.path_hint, token, not args.no_monkey_patch, watch,
                         websocket=server != "gevent")


# -- the parent -----------------------------------------------------------------------------

class RunningApp:
    """A started app: where it listens, where its traces are, its candidate WebSocket routes."""

    def __init__(self, proc, info: dict, token: str) -> None:
        self.proc = proc
        self.info = info
        self.host = info.get("host", "127.0.0.1")
        self.port = int(info["app_port"])
        self.base_url = f"http://{self.host}:{self.port}"
        self.trace_url = f"http://127.0.0.1:{int(info['trace_port'])}"
        self.token = token
        self.routes: list[dict] = list(info.get("routes") or [])
        self.notes: list[str] = list(info.get("notes") or [])
        self.server: str = info.get("server", "")
        self.versions = {k: info.get(k) for k in ("flask", "werkzeug", "python")}
        from wsdiag.proc import OutputTail

        self._tail = getattr(proc, "tail", None) or OutputTail(proc, name="wsdiag-app-log")

    def ws_url(self, path: str = "/") -> str:
        return f"ws://{self.host}:{self.port}{path if path.startswith('/') else '/' + path}"

    def fetch_trace(self, probe_id: str, timeout: float = 1.0):
        """The trace events of one probe request (see ``trace.fetch_trace``)."""
        from wsdiag.flaskapp.trace import fetch_trace

        return fetch_trace(self.trace_url, self.token, probe_id, timeout)

    def log_tail(self, n: int = 50) -> list[str]:
        """The app's last output lines (stdout and stderr interleaved)."""
        return list(self._tail.lines)[-n:]

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """End the child (gently, then by force) and release its pipes; safe to call twice."""
        _end(self.proc)
        self._tail.join(timeout=1)
        for stream in (self.proc.stdout, self.proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass

    def __enter__(self) -> "RunningApp":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _end(proc) -> None:
    """The whole session (gunicorn's worker too) and any daemon the app left: ``wsdiag.proc.stop``."""
    from wsdiag.proc import stop

    stop(proc)


def _child_env(extra: dict | None, token: str) -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(extra or {}))
    env[TOKEN_ENV] = token
    root = os.path.dirname(os.path.dirname(os.path.abspath(__import__("wsdiag").__file__)))
    if os.path.basename(root) not in ("site-packages", "dist-packages"):
        # a source checkout: let the child import wsdiag even from another interpreter
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), root) if p)
    return env


def start_app(spec: str | None = None, *, path_hint: str | None = None, gunicorn: bool = False,
              timeout: float = 20, cwd: str | None = None, python: str | None = None,
              monkey_patch: bool = True, env: dict | None = None, server: str | None = None) -> RunningApp:
    """Start the app in a child under gevent-websocket (or gunicorn), instrumented; wait until ready.

    ``spec``: ``MODULE:APP``, ``MODULE:create_app()``, ``MODULE:create_app('arg')``, a file
    path, or None for ``FLASK_APP`` (then ``wsgi.py`` / ``app.py``), like ``flask --app``.
    ``path_hint``: a WebSocket path to list first among the routes (``--path``).
    ``python``: the interpreter of the app's environment (default: this one).
    Raises ``AppStartError`` (one line) when the app cannot be imported, built or served.
    """
    import secrets

    from wsdiag.proc import NotReady, SampleError, spawn, wait_ready_channel

    text = spec or (env or {}).get("FLASK_APP") or os.environ.get("FLASK_APP") or None
    if text:
        parse_app_spec(text)  # bad syntax fails here, before any process starts
    python = python or sys.executable
    if (gunicorn or (server or "").startswith("gunicorn:")) and python == sys.executable:
        import importlib.util

        if importlib.util.find_spec("gunicorn") is None:
            raise AppStartError("gunicorn is not installed in this environment")
    token = secrets.token_hex(16)
    cmd = [python, "-m", "wsdiag.flaskapp.appserver"] + ([text] if text else [])
    if path_hint:
        cmd += ["--path-hint", path_hint]
    if gunicorn:
        cmd.append("--gunicorn")
    if server:
        cmd += ["--server", server]
    if not monkey_patch:
        cmd.append("--no-monkey-patch")
    try:
        proc = spawn(cmd, cwd=cwd, env=_child_env(env, token))
    except OSError as exc:
        raise AppStartError(f"could not run {python}: {_one_line(exc)}") from None
    try:
        info = wait_ready_channel(proc, timeout)
        if "error" in info:
            raise AppStartError(str(info["error"]))
        return RunningApp(proc, info, token)
    except NotReady:
        _end(proc)
        raise AppStartError(f"the app was not ready within {timeout:g} s") from None
    except SampleError as exc:
        _end(proc)
        raise AppStartError(f"the app exited before it was ready: {exc}") from None
    except (KeyError, TypeError, ValueError, OSError) as exc:
        _end(proc)
        raise AppStartError(f"unreadable ready line from the app server: {_one_line(exc)}") from None
    except BaseException:  # AppStartError, Ctrl-C: nothing outlives wsdiag
        _end(proc)
        raise


if __name__ == "__main__":
    sys.exit(main())
