"""How an app is deployed, read from its project: the server ``probe --app`` should use.

``choose_server`` reads (never imports) the app's module and the files next to it, and up the
package to the project root (Procfile, gunicorn.conf.py, Dockerfile, systemd unit, uWSGI ini,
shell scripts), builds the app model (``wsdiag.check.model``) and answers with the server
that matches the deployment, and why:

1. a gunicorn command line or config file: ``gunicorn:WORKER`` (with its threads);
2. else the app's own server call: ``WSGIServer(..., handler_class=WebSocketHandler)`` ->
   ``gevent-websocket``; a plain ``WSGIServer`` -> ``gevent``; ``app.run``/``run_simple``/
   ``flask run`` -> ``dev``; ``socketio.run`` -> what Flask-SocketIO would pick;
3. else the stack's usual server (raw gevent-websocket and flask-sockets: ``gevent-websocket``;
   flask-sock: gunicorn's threaded worker, or the development server without gunicorn;
   Flask-SocketIO: as ``socketio.run``).

An edge: it reads files. Pure otherwise (standard library).
"""

from __future__ import annotations

import importlib.util
import os

from wsdiag.check import model as _model
from wsdiag.check import rules as _rules
from wsdiag.check import static as _static

GEVENT_WS_WORKER = "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"


def _installed(mod: str) -> bool:
    try:
        return importlib.util.find_spec(mod) is not None
    except (ImportError, ValueError):
        return False


def app_file(spec: str | None, cwd: str | None = None) -> str | None:
    """The source file of an app spec (``MODULE[:APP]``, ``path.py``, FLASK_APP, wsgi.py/app.py)."""
    base = cwd or os.getcwd()
    spec = spec or os.environ.get("FLASK_APP")
    if not spec:
        for cand in ("wsgi.py", "app.py"):
            if os.path.exists(os.path.join(base, cand)):
                return os.path.join(base, cand)
        return None
    target = spec.split(":", 1)[0].strip() if not os.path.exists(os.path.join(base, spec)) else spec
    if target.endswith(".py"):
        path = os.path.join(base, target)
        return path if os.path.exists(path) else None
    rel = target.replace(".", os.sep)
    for cand in (rel + ".py", os.path.join(rel, "__init__.py")):
        path = os.path.join(base, cand)
        if os.path.exists(path):
            return path
    return None


def _project_files(path: str) -> list[str]:
    """The app's directory and each package directory above it (files only, not recursive)."""
    dirs = [os.path.dirname(os.path.abspath(path))]
    while os.path.exists(os.path.join(dirs[-1], "__init__.py")):
        dirs.append(os.path.dirname(dirs[-1]))
    out = []
    for d in dirs:
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for name in names:
            full = os.path.join(d, name)
            if os.path.isfile(full) and (name.endswith(".py") or _static.CONFIG_NAMES.match(name)):
                out.append(full)
    return out


def _socketio_server() -> tuple[str, str]:
    if _installed("gevent") and _installed("geventwebsocket"):
        return "gevent-websocket", "Flask-SocketIO's run() uses WebSocketHandler when gevent-websocket is installed"
    if _installed("gevent"):
        return "gevent", "Flask-SocketIO's run() uses gevent's WSGIServer (gevent-websocket is not installed)"
    return "dev", "Flask-SocketIO's run() uses the Werkzeug server in threading mode"


def choose_server(spec: str | None, cwd: str | None = None) -> tuple[str, str]:
    """(server, why) for ``start_app(server=...)``."""
    path = app_file(spec, cwd)
    if path is None:
        return "gevent-websocket", "the app's source was not found; gevent-websocket is wsdiag's default"
    scans = []
    for f in _project_files(path):
        try:
            with open(f, encoding="utf-8") as fh:
                scans.append(_static.scan_file(os.path.relpath(f, cwd or os.getcwd()), fh.read()))
        except (OSError, UnicodeDecodeError):
            continue
    summaries = [_rules.summary(s) for s in scans]
    proj = _model.Project(summaries)
    me = os.path.relpath(path, cwd or os.getcwd())
    mine = next((x for x in proj.items if x["file"] == me), None)
    stacks = proj.stacks(mine) if mine else set()
    for x in proj.items:  # 1. the deployment config
        for d in x["deploys"]:
            where = f"{x['file']}:{d['ev']['line']}: {d['ev']['source'].strip()}"
            kind, worker = d["kind"], d["worker"].strip("'\"")
            if kind == _model.GEVENT_WS:
                return f"gunicorn:{GEVENT_WS_WORKER}", f"deployed by {where}"
            if kind == "gthread" or (kind == "sync" and (d["threads"] or 1) > 1):
                return f"gunicorn:gthread/{d['threads'] or 8}", f"deployed by {where}"
            if kind == "sync":
                return "gunicorn:sync", f"deployed by {where}"
            return f"gunicorn:{worker}", f"deployed by {where}"
    related = proj.related(mine) if mine else []
    for x in related:  # 2. the app's own server call
        for ln in x["launches"]:
            if not ln["ok"]:
                continue
            where = f"{x['file']}:{ln['ev']['line']}: {ln['ev']['source'].strip()}"
            if ln["kind"] == _model.GEVENT_WS:
                return "gevent-websocket", f"its own server call, {where}"
            if ln["kind"] == _model.GEVENT:
                return "gevent", f"its own server call, {where}"
            if ln["kind"] == _model.DEV:
                return "dev", f"its own server call, {where}"
            if ln["kind"] == _model.SOCKETIO_RUN:
                server, why = _socketio_server()
                return server, f"its own server call, {where} ({why})"
    # 3. the stack's usual server
    if stacks & _model.RAW_STACKS:
        return "gevent-websocket", "no server call or deployment found; gevent-websocket serves wsgi.websocket apps"
    if "flask-sock" in stacks:
        if _installed("gunicorn"):
            return "gunicorn:gthread/8", "no server call or deployment found; flask-sock's usual server is gunicorn --threads"
        return "dev", "no server call or deployment found; flask-sock on the development server (gunicorn is not installed)"
    if "socketio" in stacks:
        server, why = _socketio_server()
        return server, f"no server call or deployment found; {why}"
    return "gevent-websocket", "no server call, deployment or WebSocket stack found; gevent-websocket is wsdiag's default"


def needs_gevent(server: str) -> bool:
    return server in ("gevent-websocket", "gevent") or "gevent" in server.split(":", 1)[-1].lower()


def deployment_files(app_files) -> list[str]:
    """The deployment files (Procfile, Dockerfile, gunicorn config, requirements...) next to an
    app's source files and up its packages: what ``check --app`` adds to the app's own files."""
    out: dict[str, None] = {}
    for f in app_files or ():
        if not f or not str(f).endswith(".py"):
            continue
        for cand in _project_files(f):
            name = os.path.basename(cand)
            if not name.endswith(".py") or "gunicorn" in name.lower():
                out.setdefault(cand, None)
    return list(out)
