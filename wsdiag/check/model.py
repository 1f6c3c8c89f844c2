"""The app model: which framework, which WebSocket stack, which server and deployment.

Every command that looks inside an app (``check``, ``check --app``, ``probe --app``) asks
this model the same questions, so they agree:

* **framework** of each file: Flask, or another one (Bottle, Quart, aiohttp, Django...),
  which wsdiag leaves alone (``WS521``, info) and never takes for Flask;
* **stacks**: ``gevent-websocket`` (raw ``wsgi.websocket``), ``flask-sockets``,
  ``flask-sock`` (simple-websocket), ``socketio`` (Flask-SocketIO), ``uwsgi``;
* **launches** (server calls in the source: ``app.run``, ``run_simple``, ``WSGIServer``
  with or without ``WebSocketHandler``, ``socketio.run``) and **deploys** (gunicorn command
  lines, ``gunicorn.conf.py``, Procfile, Dockerfile CMD, systemd units, uWSGI ini), each
  with the worker class, worker count and threads;
* per file: monkey patching, Flask-SocketIO options, version pins (``wsdiag.check.pins``:
  requirements, pyproject.toml, setup.cfg/setup.py, Pipfile, lock files), socket lifecycle
  defects in views; ``Project`` applies the pins' precedence over the installed releases.

Pure: standard library only (``ast``). The per-file facts are gathered while
``static`` scans a file; ``project`` relates the files to each other.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field

from wsdiag.check.astutil import dotted, last_name, walk_own

OTHER_FRAMEWORKS = {"bottle": "Bottle", "quart": "Quart", "aiohttp": "aiohttp", "django": "Django",
                    "fastapi": "FastAPI", "starlette": "Starlette", "tornado": "Tornado", "sanic": "Sanic",
                    "falcon": "Falcon", "pyramid": "Pyramid", "cherrypy": "CherryPy", "channels": "Django Channels"}
STACK_OF_MODULE = {"geventwebsocket": "gevent-websocket", "flask_sockets": "flask-sockets",
                   "flask_sock": "flask-sock", "simple_websocket": "flask-sock", "flask_socketio": "socketio"}
RAW_STACKS = {"gevent-websocket", "flask-sockets"}  # served by gevent-websocket's handler
WS_STACKS = RAW_STACKS | {"flask-sock", "socketio", "uwsgi"}
# modules that must not be imported before monkey.patch_all() (they bind socket/ssl/threading)
PATCH_SENSITIVE = {"ssl", "socket", "threading", "requests", "urllib3", "http", "urllib", "flask", "werkzeug",
                   "flask_sock", "simple_websocket", "flask_socketio", "socketio", "engineio", "redis",
                   "psycopg2", "pymongo", "select", "queue", "subprocess", "asyncio", "websocket"}
DEV, GEVENT, GEVENT_WS, SOCKETIO_RUN, UWSGI = "dev", "gevent", "gevent-websocket", "socketio.run", "uwsgi"
GOOD_WORKER_SUFFIX = "GeventWebSocketWorker"


@dataclass
class Launch:
    """A server started from source (or ``flask run`` / a uWSGI ini): how the app is served."""

    file: str
    kind: str  # dev | gevent | gevent-websocket | socketio.run | uwsgi
    call: str  # app.run(), run_simple(), WSGIServer(...), socketio.run(), flask run
    loc: object  # static.Loc
    entry: bool = True  # False inside a class (a library's own method), never an app's launch
    flask_app: bool = True  # the served object is a Flask app (or cannot be told otherwise)


@dataclass
class Deploy:
    """A gunicorn command line or config: worker class, worker count, threads."""

    file: str
    worker: str  # the -k value, or "sync" when none is given
    loc: object
    workers: int | None = None
    threads: int | None = None
    explicit_worker: bool = True
    configured: bool = False  # -c/--config given: the worker may come from there
    preload: bool = False  # --preload / preload_app = True: the app is imported before the worker patches
    tls: bool = False  # --certfile/--keyfile (certfile = ... in a config): gunicorn serves TLS itself

    @property
    def worker_kind(self) -> str:
        w = self.worker.strip("'\"")
        if w.endswith(GOOD_WORKER_SUFFIX):
            return GEVENT_WS
        if w.startswith("sync"):
            return "sync"
        if w in ("gevent", "gunicorn.workers.ggevent.GeventWorker"):
            return "gevent"
        if w in ("gthread", "gunicorn.workers.gthread.ThreadWorker"):
            return "gthread"
        return w


@dataclass
class Lifecycle:
    """A socket lifecycle defect in a function (FAILURES FM-22)."""

    code: str  # WS516 | WS517
    function: str
    loc: object
    detail: dict = field(default_factory=dict)


@dataclass
class FileFacts:
    frameworks: set = field(default_factory=set)  # "Flask" and/or other framework names
    stacks: set = field(default_factory=set)
    local_imports: set = field(default_factory=set)  # module names imported (for relating files)
    launches: list = field(default_factory=list)
    deploys: list = field(default_factory=list)
    socketio: list = field(default_factory=list)  # dicts: loc, call, async_mode, message_queue, cors_allowed_origins, path...
    patch_all: object = None  # Loc of monkey.patch_all() at module level
    late_import: tuple | None = None  # (module, line) imported before patch_all
    lifecycle: list = field(default_factory=list)
    pins: dict = field(default_factory=dict)  # package -> pin entry (wsdiag.check.pins: spec, line, tier)
    pin_includes: list = field(default_factory=list)  # requirements -r/-c lines: [target, line, flag]
    sock_views: list = field(default_factory=list)  # flask-sock view qualnames
    sock_routes: list = field(default_factory=list)  # flask-sock @sock.route: dicts rule, methods, bp, loc (WS506, WS525)
    health: list = field(default_factory=list)  # health-check probes of deployment files (wsdiag.check.health, WS525)
    tls: list = field(default_factory=list)  # evidence the app is served over TLS (socketio files)

    @property
    def other_framework(self) -> str | None:
        """The non-Flask framework of a file that does not use Flask at all."""
        others = sorted(f for f in self.frameworks if f != "Flask")
        return others[0] if others and "Flask" not in self.frameworks else None


# -- per-file facts (called by static's scanner) ----------------------------------------


def imports_facts(facts: FileFacts, imports: dict) -> None:
    """Frameworks and stacks from the file's imports (local name -> dotted origin)."""
    for origin in imports.values():
        top = origin.split(".")[0]
        if top.startswith("flask"):
            facts.frameworks.add("Flask")
        if top in OTHER_FRAMEWORKS:
            facts.frameworks.add(OTHER_FRAMEWORKS[top])
        if top in STACK_OF_MODULE:
            facts.stacks.add(STACK_OF_MODULE[top])
        if top == "uwsgi":
            facts.stacks.add("uwsgi")
        facts.local_imports.add(origin.rsplit(".", 1)[0] if "." in origin else origin)
        facts.local_imports.add(origin)


def monkey_facts(facts: FileFacts, tree: ast.Module, t) -> None:
    """Where monkey.patch_all() runs at module level, and what sensitive module came before it."""
    first_sensitive = None
    for stmt in _module_statements(tree.body):
        if isinstance(stmt, (ast.Import, ast.ImportFrom)) and first_sensitive is None:
            names = [a.name for a in stmt.names] if isinstance(stmt, ast.Import) else [stmt.module or ""]
            for n in names:
                if n.split(".")[0] in PATCH_SENSITIVE:
                    first_sensitive = (n, stmt.lineno)
                    break
        for node in ast.walk(stmt):
            if isinstance(node, ast.Call) and _callee(node) == "patch_all":
                if facts.patch_all is None:
                    facts.patch_all = t.loc(node)
                    if first_sensitive and first_sensitive[1] < node.lineno:
                        facts.late_import = first_sensitive
                break


def socketio_facts(facts: FileFacts, tree: ast.Module, t) -> None:
    """Flask-SocketIO's options from ``SocketIO(...)`` and ``init_app(...)`` calls, and the TLS evidence
    of the file (a server call with ``certfile``/``keyfile``/``ssl_context``, ``PREFERRED_URL_SCHEME``
    'https'): what ``wsdiag.check.sio`` needs for the endpoint, the driver and the origin rules."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _callee(node) == "SocketIO":
            mode = next((k.value for k in node.keywords if k.arg == "async_mode"), None)
            facts.socketio.append(dict({
                "loc": t.loc(node), "call": "SocketIO",
                "async_mode": mode.value if isinstance(mode, ast.Constant) else (None if mode is None else "expr"),
                "message_queue": any(k.arg in ("message_queue", None) for k in node.keywords),
                "app": bool(node.args) or any(k.arg == "app" for k in node.keywords),
            }, **_socketio_options(node)))
        elif isinstance(node, ast.Call) and _callee(node) == "init_app" and any(
                k.arg in ("message_queue", "async_mode", "cors_allowed_origins", "path") for k in node.keywords):
            mode = next((k.value for k in node.keywords if k.arg == "async_mode"), None)
            queue = any(k.arg == "message_queue" for k in node.keywords)
            if queue:
                for s in facts.socketio:
                    s["message_queue"] = True
            facts.socketio.append(dict({
                "loc": t.loc(node), "call": "init_app",
                "async_mode": mode.value if isinstance(mode, ast.Constant) else (None if mode is None else "expr"),
                "message_queue": queue, "app": True}, **_socketio_options(node)))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and any(k.arg in ("certfile", "keyfile", "ssl_context") and not
                                              (isinstance(k.value, ast.Constant) and k.value.value is None)
                                              for k in node.keywords):
            facts.tls.append(f"{dotted(node.func)}({', '.join(k.arg for k in node.keywords if k.arg in ('certfile', 'keyfile', 'ssl_context'))}=...)")
        elif isinstance(node, (ast.Assign, ast.Subscript)) and "PREFERRED_URL_SCHEME" in dotted(node) and "'https'" in dotted(node).replace('"', "'"):
            facts.tls.append("PREFERRED_URL_SCHEME = 'https'")
        elif isinstance(node, ast.Call) and _callee(node) in ("update", "from_mapping") and any(
                k.arg == "PREFERRED_URL_SCHEME" and isinstance(k.value, ast.Constant) and k.value.value == "https"
                for k in node.keywords):
            facts.tls.append("PREFERRED_URL_SCHEME = 'https'")


SOCKETIO_UNSET = "(not set)"


def _socketio_options(node: ast.Call) -> dict:
    """``cors_allowed_origins``, ``path`` and ``transports`` of one call, as JSON-able literals
    (``SOCKETIO_UNSET`` when absent, ``"expr"`` when computed)."""
    out: dict = {"cors_allowed_origins": SOCKETIO_UNSET, "path": SOCKETIO_UNSET, "transports": SOCKETIO_UNSET}
    for k in node.keywords:
        if k.arg in out:
            out[k.arg] = _literal(k.value)
    return out


def _literal(node: ast.AST):
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return "expr"
    if isinstance(value, (list, tuple, set)):
        items = list(value)
        return sorted(items) if isinstance(value, set) and all(isinstance(v, str) for v in items) else (
            items if all(isinstance(v, str) for v in items) else "expr")
    return value if value is None or isinstance(value, (str, bool, int)) else "expr"


def lifecycle_facts(facts: FileFacts, fn: ast.AST, qualname: str, socket_names: set, t) -> None:
    """FM-22 on one function: stores the socket and returns; swallows receive() errors in a loop."""
    own = list(walk_own(fn, lambdas=False))
    for loop in (n for n in own if isinstance(n, (ast.While, ast.For))):
        for tr in (n for n in ast.walk(loop) if isinstance(n, ast.Try)):
            if not any(isinstance(c, ast.Call) and _callee(c) == "receive" for b in tr.body for c in ast.walk(b)):
                continue
            for h in tr.handlers:
                broad = h.type is None or last_name(h.type) in ("Exception", "BaseException", "WebSocketError")
                if not broad:
                    continue
                body = [s for s in h.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
                spins = body and all(isinstance(s, ast.Continue) for s in body)
                forever = isinstance(loop, ast.While) and isinstance(loop.test, ast.Constant) and bool(loop.test.value)
                if spins or (forever and body and all(isinstance(s, ast.Pass) for s in body)):
                    kind = "except" if h.type is None else f"except {last_name(h.type)}"
                    what = "continue" if spins else "pass"
                    facts.lifecycle.append(Lifecycle("WS517", qualname, t.loc(h), {"handler": f"{kind}: {what}"}))
    if not socket_names:
        return
    if any(isinstance(n, (ast.While, ast.For, ast.AsyncFor)) for n in own):
        return
    stored, passed = None, False
    for n in own:
        if isinstance(n, ast.Call):
            args = [a for a in n.args if isinstance(a, ast.Name) and a.id in socket_names]
            if not args:
                continue
            if _callee(n) == "receive" or _callee(n) in ("sleep", "wait", "join"):
                return
            if isinstance(n.func, ast.Attribute) and n.func.attr in ("append", "add", "put", "setdefault", "insert"):
                stored = stored or (f"{dotted(n.func.value)}.{n.func.attr}({args[0].id})", n)
            else:
                passed = True  # handed to a helper, which may serve it
        elif isinstance(n, ast.Assign) and isinstance(n.value, ast.Name) and n.value.id in socket_names:
            if any(isinstance(tg, (ast.Subscript, ast.Attribute)) for tg in n.targets):
                stored = stored or (f"{dotted(n.targets[0])} = {n.value.id}", n)
        elif isinstance(n, ast.Call) and _callee(n) == "receive":
            return
    if any(isinstance(n, ast.Call) and _callee(n) in ("receive", "sleep", "wait", "join", "serve_forever") for n in own):
        return
    if stored and not passed:
        facts.lifecycle.append(Lifecycle("WS516", qualname, t.loc(stored[1]), {"stored": stored[0]}))


def gunicorn_tokens(tokens: list[str]) -> dict:
    """Worker class, worker count, threads and -c from a gunicorn command's tokens."""
    out: dict = {"worker": None, "workers": None, "threads": None, "configured": False, "preload": False, "tls": False}

    def val(n: int, tok: str, short: str, long: str):
        if tok in (short, long) and n + 1 < len(tokens):
            return tokens[n + 1]
        if tok.startswith(long + "="):
            return tok.split("=", 1)[1]
        if short and tok.startswith(short) and len(tok) > len(short) and not tok.startswith("--"):
            return tok[len(short):]
        return None

    for n, tok in enumerate(tokens):
        for key, short, long in (("worker", "-k", "--worker-class"), ("workers", "-w", "--workers"),
                                 ("threads", "", "--threads")):
            v = val(n, tok, short, long)
            if v is not None:  # the last one given wins, as in gunicorn's own argument parser
                out[key] = v
        if tok in ("-c", "--config") or tok.startswith("--config="):
            out["configured"] = True
        if tok == "--preload":
            out["preload"] = True
        if tok.split("=", 1)[0] in ("--certfile", "--keyfile"):
            out["tls"] = True
    for key in ("workers", "threads"):
        out[key] = int(out[key]) if out[key] is not None and str(out[key]).isdigit() else None
    return out


def pin_facts(facts: FileFacts, file: str, text: str) -> str | None:
    """The version pins of a packaging file (``wsdiag.check.pins``, the one pin reader) into
    ``facts``; returns why the file could not be read (a malformed TOML or lock), else None."""
    from wsdiag.check import pins as _pins

    facts.pins, facts.pin_includes, why = _pins.read(file, text)
    return why


# -- the project: relating files ---------------------------------------------------------


class Project:
    """The files of one run and how they relate, from each file's compact summary (``rules.summary``).

    A summary is plain JSON-able data, so the streaming scan (which keeps no file text)
    and the whole-project scan relate files the same way.
    """

    def __init__(self, summaries: list, versions: dict | None = None):
        from wsdiag.check import pins as _pins

        self.items = [x for x in summaries if x]
        self.installed_versions = dict(versions or {})
        # the project's pins (lock > requirements/constraints > declared ranges) beat what is installed here
        self.pins = _pins.Resolution(self.items)
        self.versions = self.pins.versions(self.installed_versions)
        self.by_module: dict[str, list] = {}
        for x in self.items:
            if x["file"].endswith(".py"):
                stem = os.path.splitext(os.path.basename(x["file"]))[0]
                self.by_module.setdefault(stem, []).append(x)
                if stem == "__init__":
                    self.by_module.setdefault(os.path.basename(os.path.dirname(x["file"])), []).append(x)
        self._related: dict[str, list] = {}

    def related(self, item: dict) -> list:
        """The file, the local modules it imports (transitively); for a config file or a file
        without a stack of its own, the WebSocket code next to it (its directory; a config file
        looks up the tree to the nearest directory holding some)."""
        key = item["file"]
        if key in self._related:
            return self._related[key]
        out, todo, seen = [], [item], set()
        while todo:
            x = todo.pop()
            if x["file"] in seen:
                continue
            seen.add(x["file"])
            out.append(x)
            for mod in x.get("imports", ()):
                for cand in self.by_module.get(mod.split(".")[-1], []):
                    if _near(cand["file"], x["file"]):
                        todo.append(cand)
        is_py = key.endswith(".py") and not item.get("config")
        if not is_py or not item["stacks"]:
            d = os.path.dirname(os.path.abspath(key))
            while True:
                near = [x for x in self.items if x["file"].endswith(".py") and x["stacks"]
                        and (os.path.dirname(os.path.abspath(x["file"])) == d
                             or (not is_py and os.path.abspath(x["file"]).startswith(d + os.sep)))]
                if near or is_py or d == os.path.dirname(d):
                    break
                d = os.path.dirname(d)
            for x in near:
                if x["file"] not in seen:
                    seen.add(x["file"])
                    out.append(x)
        self._related[key] = out
        return out

    def stacks(self, item: dict) -> set:
        return {st for x in self.related(item) for st in x["stacks"]}

    def patched(self, item: dict) -> bool:
        return any(x.get("patched") for x in self.related(item))

    def socketio_calls(self, item: dict) -> list:
        return [c for x in self.related(item) for c in x.get("socketio", ())]

    def pinned_werkzeug_1(self) -> bool:
        """Do the project's pins hold Werkzeug (or Flask) below 2.0?"""
        return (self.pins.below("werkzeug", (2,), self.installed_versions.get("werkzeug"))[0]
                or self.pins.below("flask", (2,), None)[0])

    def version_text(self, dist: str) -> str:
        """The release a project rule judged with and where it comes from (file:line, or installed)."""
        return self.pins.text(dist, self.installed_versions.get(dist))

    def pinned_fix_refusal(self) -> str | None:
        """Why ``--fix`` must not add websocket=True although the installed Werkzeug allows it: the
        project's pins hold Werkzeug below 2.0.2 (or Flask below 2), where such rules fail clients."""
        if self.pins.below("werkzeug", (2,), None)[0] or self.pins.below("flask", (2,), None)[0]:
            dist = "werkzeug" if self.pins.below("werkzeug", (2,), None)[0] else "flask"
            return (f"the project pins {self.version_text(dist)}: websocket=True rules never match on Werkzeug < 2 "
                    "under gevent (WS706); upgrade the pin to Werkzeug >= 2.0.2 first, or register both rules")
        if self.pins.below("werkzeug", (2, 0, 2), None)[0]:
            return (f"the project pins {self.version_text('werkzeug')}: Werkzeug 2.0.0/2.0.1 detect only "
                    "'Connection: Upgrade', so websocket=True would break clients sending 'keep-alive, Upgrade'; "
                    "upgrade the pin to >= 2.0.2, or register both rules")
        return None

    def installed(self, dist: str) -> bool | None:
        if dist not in self.versions:
            return None
        return self.versions.get(dist) is not None


def _near(a: str, b: str) -> bool:
    """Two files of one project: the same directory, or one inside the other's directory tree."""
    da, db = os.path.dirname(os.path.abspath(a)), os.path.dirname(os.path.abspath(b))
    return da == db or da.startswith(db + os.sep) or db.startswith(da + os.sep)


# -- ast helpers -------------------------------------------------------------------------


def _module_statements(body):
    """Module-level statements, looking into if/try blocks (``if __name__ == '__main__':`` too)."""
    for stmt in body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(stmt, (ast.If, ast.Try)):
            yield stmt.test if isinstance(stmt, ast.If) else stmt
            if isinstance(stmt, ast.Try):
                continue
            yield from _module_statements(stmt.body)
            yield from _module_statements(stmt.orelse)
            continue
        yield stmt


def _callee(call: ast.Call) -> str | None:
    return last_name(call.func)
