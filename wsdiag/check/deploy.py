"""How an app is deployed, read from its project: the deployment facts and the server ``probe --app`` uses.

``read_config`` (Procfiles, Dockerfiles, shell scripts, compose/CI YAML, ini, .env, systemd
units, version pins: ``wsdiag.check.pins``) and ``read_gunicorn_config`` (a Python gunicorn config) fill a file's
``ModuleScan`` with its gunicorn workers, deploys and server launches; ``static.scan_file``
calls them. They use only ``model``, ``astutil`` and ``fixes``, so ``static`` can import this
module; ``choose_server`` imports ``static`` and ``rules`` when it runs.

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

import ast
import importlib.util
import os
import re
from dataclasses import dataclass, field

from wsdiag.check import health as _health
from wsdiag.check import model as _model
from wsdiag.check.astutil import Loc, SourceText, const_str
from wsdiag.check.fixes import Edit

GOOD_WORKER = "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"
BAD_WORKERS = {"sync", "gthread", "gevent", "eventlet", "tornado", "gevent_wsgi", "gevent_pywsgi"}
CONFIG_NAMES = re.compile(r"(?i)^(procfile.*|dockerfile.*|.*\.dockerfile|.*\.(sh|bash|ya?ml|ini|conf|cfg|service|env)|makefile|\.env.*"
                          r"|(requirements|constraints).*\.(txt|in)|pyproject\.toml|pipfile(\.lock)?|(poetry|uv|pdm)\.lock)$")


# -- the deployment records the scanners fill ----------------------------------------


@dataclass
class Server:
    file: str
    call: str
    server: str
    loc: Loc
    diff_edit: Edit | None = None
    edits: list = field(default_factory=list)  # every edit of the suggested fix (the call, the imports)
    entry: bool = True  # not inside a class: an app's own launch, not a library's method
    flask_app: bool = True  # the object served is a Flask app


@dataclass
class Gunicorn:
    file: str
    worker: str
    loc: Loc
    diff_edit: Edit | None = None


# -- reading command lines and config files (``static.scan_config_text``) --------------


def worker_is_bad(worker: str) -> bool:
    w = worker.strip().strip("'\"")
    if w.endswith("GeventWebSocketWorker"):
        return False
    return w in BAD_WORKERS or w.startswith("gunicorn.workers.") or "uvicorn" in w.lower()


_TOKEN_JUNK = re.compile(r"[\"'\[\],]")
_PIN_FILE = re.compile(r"(?i)^(pyproject\.toml|pipfile(\.lock)?|(poetry|uv|pdm)\.lock)$")  # what wsdiag.check.pins reads


def read_config(scan, text: str) -> None:
    """Command lines in Procfiles, Dockerfiles, shell scripts, compose/CI YAML, ini and .env files,
    into ``scan`` (a ``wsdiag.check.static.ModuleScan``): gunicorn workers, deploys, servers, pins."""
    file = scan.file
    name = os.path.basename(file).lower()
    if name.startswith(("requirements", "constraints")) or name == "setup.cfg" or _PIN_FILE.match(name):
        scan.error = _model.pin_facts(scan.facts, file, text)  # wsdiag.check.pins; a file it cannot parse is skipped
        if name != "setup.cfg" or scan.error:
            return
    scan.facts.health = _health.read_probes(text, file)  # health-check paths (WS525, FM-21)
    t = SourceText(text)
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        start = i
        logical = lines[i]
        while logical.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            logical = logical.rstrip()[:-1] + " " + lines[i]
        i += 1
        if logical.lstrip().startswith("#"):
            continue
        scan.gunicorn.extend(_gunicorn_in_line(logical, start + 1, file, t, scan.facts.deploys))
        m = re.search(r"(?<![\w.-])flask\s+(?:--app[ =]\S+\s+)?run\b", logical)
        if m and _command_at(logical, m.start()):
            loc = Loc(start + 1, m.start(), start + 1, m.end())
            scan.servers.append(Server(file, "flask run", "Werkzeug development server", loc))
            scan.facts.launches.append(_model.Launch(file, _model.DEV, "flask run", loc))
        if logical.strip().lower() == "[uwsgi]":
            loc = Loc(start + 1, 0, start + 1, len(logical))
            scan.facts.launches.append(_model.Launch(file, _model.UWSGI, "uWSGI", loc))
            scan.servers.append(Server(file, "uWSGI ([uwsgi] section)", "uWSGI, which does not provide wsgi.websocket", loc))


_PREFIX_WORDS = {"cmd", "run", "exec", "entrypoint", "nohup", "sudo", "env", "python", "python3", "-m", "-",
                 "command", "time", "poetry", "pipenv", "uv", "then", "do", "else"}
_SEPARATORS = re.compile(r"&&|\|\||;|\||\$\(|\(|`")


def _command_at(line: str, at: int) -> bool:
    """Is the word starting at ``at`` in command position (not prose, not an argument)?

    Allowed before it, within one command: YAML/Procfile keys (``web:``), env assignments
    (``X=1``), launcher words (``exec``, ``RUN``, ``python -m``...) and JSON/quote punctuation.
    """
    segment = _SEPARATORS.split(line[:at])[-1]
    for tok in _TOKEN_JUNK.sub(" ", segment).split():
        low = tok.lower()
        if low in _PREFIX_WORDS or re.fullmatch(r"[\w.-]+:", tok) or re.fullmatch(r"\w+=\S*", tok):
            continue
        return False
    return True


def _gunicorn_in_line(line: str, lineno: int, file: str, t: SourceText, deploys: list | None = None) -> list[Gunicorn]:
    out: list[Gunicorn] = []
    env = re.search(r"GUNICORN_CMD_ARGS\s*[=:]\s*(.*)", line)
    cmd = None
    for m in re.finditer(r"(?:(?<=[\s\"'\[=,])|^)(?:\S*/)?gunicorn(?=[\s\"',\]]|$)", line):
        if _command_at(line, m.start()):
            cmd = m
            break
    if not (cmd or env):
        return out
    rest = line[cmd.end():] if cmd else env.group(1)
    tokens = _TOKEN_JUNK.sub(" ", rest).split()
    g = _model.gunicorn_tokens(tokens)
    if deploys is not None:
        col = (cmd.start() + cmd.group().rfind("gunicorn")) if cmd else env.start()
        deploys.append(_model.Deploy(file, g["worker"] or "sync (the default: no -k given)",
                                     Loc(lineno, col, lineno, col + len("gunicorn")), g["workers"], g["threads"],
                                     g["worker"] is not None, g["configured"] or bool(env) or "GUNICORN_CMD_ARGS" in line,
                                     g["preload"]))
        deploys[-1].tls = g["tls"]
    worker = wtok = g["worker"]
    if worker is None:
        if cmd and not g["configured"] and not env and "GUNICORN_CMD_ARGS" not in line:
            col = cmd.start() + cmd.group().rfind("gunicorn")
            out.append(Gunicorn(file, "sync (the default: no -k given)", Loc(lineno, col, lineno, col + len("gunicorn"))))
        return out
    if worker_is_bad(worker):
        col = line.find(wtok, cmd.end() if cmd else env.start(1))
        loc = Loc(lineno, col, lineno, col + len(wtok))
        edit = None
        if lineno <= len(t.lines) and col >= 0 and t.line(lineno)[col:col + len(wtok)] == wtok:
            at = t.starts[lineno - 1] + col
            edit = Edit(file, at, at + len(wtok), GOOD_WORKER)
        out.append(Gunicorn(file, worker, loc, edit))
    return out


def read_gunicorn_config(scan, tree: ast.Module, t: SourceText) -> None:
    """A gunicorn config file (Python): module-level ``worker_class``, or none (sync), into ``scan``."""
    found = False
    settings_values = {n.id: stmt.value for stmt in tree.body if isinstance(stmt, ast.Assign)
                       for n in stmt.targets if isinstance(n, ast.Name)}

    def number(name: str) -> int | None:
        v = settings_values.get(name)
        return v.value if isinstance(v, ast.Constant) and isinstance(v.value, int) else None

    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(isinstance(n, ast.Name) and n.id == "worker_class" for n in stmt.targets):
            found = True
            if const_str(stmt.value) is not None:
                preload = settings_values.get("preload_app")
                scan.facts.deploys.append(_model.Deploy(
                    scan.file, const_str(stmt.value), t.loc(stmt), number("workers"), number("threads"),
                    preload=isinstance(preload, ast.Constant) and preload.value is True))
                scan.facts.deploys[-1].tls = "certfile" in settings_values
            worker = const_str(stmt.value)
            if worker is not None and worker_is_bad(worker):
                v = stmt.value
                start, end = t.offset(v.lineno, v.col_offset), t.offset(v.end_lineno, v.end_col_offset)
                quote = t.text[start] if t.text[start] in "'\"" else '"'
                edit = Edit(scan.file, start, end, f"{quote}{GOOD_WORKER}{quote}")
                scan.gunicorn.append(Gunicorn(scan.file, worker, t.loc(stmt), edit))
    if not found and "gunicorn" in os.path.basename(scan.file).lower():
        settings = {n.id for s in tree.body if isinstance(s, ast.Assign) for n in s.targets if isinstance(n, ast.Name)}
        if settings & {"bind", "workers", "threads", "timeout", "wsgi_app", "accesslog", "errorlog"}:
            scan.gunicorn.append(Gunicorn(scan.file, "sync (the default: no worker_class set)", Loc(1, 0, 1, 0)))
            scan.facts.deploys.append(_model.Deploy(scan.file, "sync (the default: no worker_class set)",
                                                    Loc(1, 0, 1, 0), number("workers"), number("threads"), False))


# -- the server ``probe --app`` uses -------------------------------------------------




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
            if os.path.isfile(full) and (name.endswith(".py") or CONFIG_NAMES.match(name)):
                out.append(full)
    return out


def _socketio_server(modes=()) -> tuple[str, str]:
    """The server Flask-SocketIO's run() picks: by the SocketIO(async_mode=...) of the source, then by
    what is installed (python-engineio's default order)."""
    if "threading" in modes:
        return "dev", "Flask-SocketIO's run() uses the Werkzeug server in async_mode 'threading'"
    if _installed("gevent") and _installed("geventwebsocket"):
        return "gevent-websocket", "Flask-SocketIO's run() uses WebSocketHandler when gevent-websocket is installed"
    if _installed("gevent"):
        return "gevent", "Flask-SocketIO's run() uses gevent's WSGIServer (gevent-websocket is not installed)"
    return "dev", "Flask-SocketIO's run() uses the Werkzeug server in threading mode"


def _sio_modes(proj, mine) -> list:
    return [c.get("async_mode") for c in proj.socketio_calls(mine)] if mine else []


def choose_server(spec: str | None, cwd: str | None = None) -> tuple[str, str]:
    """(server, why) for ``start_app(server=...)``."""
    from wsdiag.check import rules as _rules  # the scanner and rules use this module: imported here
    from wsdiag.check import static as _static

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
            at = _rules.at(d)
            where = f"{at.file}:{at.line}: {at.source.strip()}"
            kind, worker = d["kind"], d["worker"].strip("'\"")
            if kind == _model.GEVENT_WS:
                return f"gunicorn:{GOOD_WORKER}", f"deployed by {where}"
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
            at = _rules.at(ln)
            where = f"{at.file}:{at.line}: {at.source.strip()}"
            if ln["kind"] == _model.GEVENT_WS:
                return "gevent-websocket", f"its own server call, {where}"
            if ln["kind"] == _model.GEVENT:
                return "gevent", f"its own server call, {where}"
            if ln["kind"] == _model.DEV:
                return "dev", f"its own server call, {where}"
            if ln["kind"] == _model.SOCKETIO_RUN:
                server, why = _socketio_server(_sio_modes(proj, mine))
                return server, f"its own server call, {where} ({why})"
    # 3. the stack's usual server
    if stacks & _model.RAW_STACKS:
        return "gevent-websocket", "no server call or deployment found; gevent-websocket serves wsgi.websocket apps"
    if "flask-sock" in stacks:
        if _installed("gunicorn"):
            return "gunicorn:gthread/8", "no server call or deployment found; flask-sock's usual server is gunicorn --threads"
        return "dev", "no server call or deployment found; flask-sock on the development server (gunicorn is not installed)"
    if "socketio" in stacks:
        server, why = _socketio_server(_sio_modes(proj, mine))
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
