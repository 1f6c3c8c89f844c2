"""``wsdiag check --app``: route every candidate WebSocket rule with the installed Werkzeug.

An edge: it imports the user's app (and so Flask and Werkzeug), then, for each candidate rule
and each client profile, builds that client's upgrade environ with
``werkzeug.test.EnvironBuilder`` and lets Flask's own URL adapter (``app.create_url_adapter``,
which calls the installed Werkzeug's ``bind_to_environ``) run ``match(return_rule=True)``.
Werkzeug decides; nothing here re-implements its matching.

Rules this module keeps:

* No network traffic and no side effects: no view, hook or request handler is called. Hooks
  are read (``app.before_request_funcs``) and classified by the static scan of their source.
* Candidates are rules declared ``websocket=True`` and rules whose view reads
  ``wsgi.websocket`` (by the static scan of the view's module, found with ``inspect``).
* Failures to load the app are ``LoadError`` with a one-line message; everything else about
  the app is a finding.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field

from wsdiag.core.codes import REGISTRY
from wsdiag.core.findings import Finding, Location, SuggestedFix
from wsdiag.check import advice as _advice
from wsdiag.check import static as _static
from wsdiag.core.profiles import PROFILES, Profile
from wsdiag.core.record import replace
from wsdiag.core.versions import connection_window

SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3's sample key
_VAR = re.compile(r"<(?:(?P<conv>[A-Za-z_]\w*)(?:\((?P<args>[^)]*)\))?:)?(?P<var>[A-Za-z_]\w*)>")
_SAMPLES = {"int": "1", "float": "1.5", "uuid": "00000000-0000-0000-0000-000000000001",
            "path": "x", "string": "x", "default": "x", None: "x"}


class LoadError(Exception):
    """The app could not be imported or created; the message is one line."""


@contextmanager
def fewer_collections():
    """Run the cycle collector less often while an app is loaded, routed and its source scanned.

    A big app (its rules, its module's syntax tree) makes many long-lived objects, which the
    collector's default thresholds walk again and again: about a tenth of ``check --app`` on
    benchmarks/gen_app.py's 1,000-route app (~95 ms of CPU in collections, measured with
    ``gc.callbacks``; ~15 ms with this). Reference counting still frees everything acyclic at
    once, and a young generation of 200,000 objects bounds the cyclic garbage left waiting. On the
    way out, what the check made is moved to the oldest generation (freeze, then unfreeze) so that
    the restored thresholds do not walk it all at the next allocation; it is collected from there.
    """
    import gc

    thresholds = gc.get_threshold()
    mine = gc.get_freeze_count() == 0  # leave alone objects someone else froze
    if mine:
        gc.freeze()
    gc.set_threshold(max(thresholds[0], 200_000), thresholds[1], max(thresholds[2], 100))
    try:
        yield
    finally:
        if mine:
            gc.freeze()
        gc.set_threshold(*thresholds)
        if mine:
            gc.unfreeze()


def load_app(spec: str | None):
    """Load a Flask app the way ``flask --app`` does: ``module:name``, ``module:factory(args)``,
    ``path/to/file.py``, a bare module, FLASK_APP, or ``wsgi.py`` / ``app.py`` in the current directory.

    The ONE loader (``wsdiag.flaskapp.appserver.load_app``, also used by ``probe --app``): a
    WSGI wrapper (``DispatcherMiddleware``, ProxyFix...) loads too, and ``check_app`` routes
    every Flask app it mounts.
    """
    from wsdiag.flaskapp import appserver

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    spec = spec or os.environ.get("FLASK_APP") or None
    try:
        loaded = appserver.load_app(appserver.parse_app_spec(spec) if spec else None)
        mounts = appserver._flask_mounts(loaded)
    except appserver.AppStartError as exc:
        raise LoadError(f"could not load the app {repr(spec) if spec else 'from wsgi.py or app.py'}: {exc}") from None
    except ImportError as exc:
        raise LoadError(f"Flask is not installed here ({exc})") from None
    if not mounts:
        raise LoadError(f"could not load the app {spec!r}: it is not a Flask app")
    return loaded  # a Flask app, or a WSGI wrapper whose mounted Flask apps check_app routes


def view_reads_socket(obj, cache: dict | None = None, _depth: int = 0, _seen: set | None = None) -> bool:
    """Does this view (function or class-based) or hook read ``wsgi.websocket``, itself, through
    helpers of its module, or through helpers it calls from other modules of the app's own source?
    The ONE answer for ``check --app`` and ``probe --app``'s route discovery (the static scan of
    each object's module, found with ``inspect``; a helper in another module is found through the
    live module's globals, as Python resolves the call)."""
    path, qual = _source_of(obj)
    sources = cache if cache is not None else {}
    if isinstance(sources, _Sources):  # check --app's scans (one per file, shared with its static pass)
        scan = sources.scan(path)
    else:
        if path not in sources:
            scan = None
            if path and os.path.isfile(path):
                try:
                    with open(path, encoding="utf-8", newline="") as f:
                        scan = _static.scan_source(f.read(), path)
                except (OSError, UnicodeDecodeError):
                    scan = None
            sources[path] = scan
        scan = sources[path]
    if scan is None or scan.parse_error is not None:
        return False
    if scan.reads_socket(qual):
        return True
    if _depth >= MAX_HELPER_DEPTH:
        return False
    seen = _seen if _seen is not None else {id(obj)}
    for helper in _foreign_helpers(obj, scan, qual):
        if id(helper) not in seen:
            seen.add(id(helper))
            if view_reads_socket(helper, sources, _depth + 1, seen):
                return True
    return False


MAX_HELPER_DEPTH = 3  # modules followed from a view to a helper that reads the socket


@functools.lru_cache(maxsize=1)
def _library_dirs() -> tuple[str, ...]:
    """Where the standard library and installed packages live: helpers are followed only into the
    app's own source (a library's functions are not the app's socket helpers, and scanning them
    would cost a parse per library module)."""
    import sysconfig

    dirs = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        try:
            dirs.add(os.path.abspath(sysconfig.get_paths()[key]))
        except KeyError:
            continue
    import site

    for d in getattr(site, "getsitepackages", lambda: [])() + [getattr(site, "getusersitepackages", lambda: "")()]:
        if d:
            dirs.add(os.path.abspath(d))
    return tuple(sorted(d.rstrip(os.sep) + os.sep for d in dirs))


def _foreign_helpers(obj, scan, qual: str) -> list:
    """The functions and classes of other modules that the view's code calls: ``helper(...)`` for a
    name its module does not define (imported), ``module.helper(...)`` for an imported module;
    resolved in the live module's globals. Only the app's own code: objects of the view's own
    top-level package, or whose source is outside the standard library and site-packages."""
    import ast

    target = getattr(obj, "view_class", None) or inspect.unwrap(obj)
    module = sys.modules.get(getattr(target, "__module__", None) or "")
    names = getattr(module, "__dict__", None)
    if not isinstance(names, dict):
        return []
    quals = [qual] if qual in scan.functions else list(scan.classes.get(qual, []))
    libs = _library_dirs()
    package = (getattr(target, "__module__", None) or "").split(".")[0]
    if package == "flask":  # Flask's own views (the static route): not the app's socket code
        return []
    out: list = []
    for q in quals:
        fn = scan.functions.get(q)
        if fn is None:
            continue
        for node in ast.walk(fn.node):
            if not isinstance(node, ast.Call):
                continue
            found = None
            if isinstance(node.func, ast.Name) and node.func.id not in scan.functions and node.func.id not in scan.classes:
                found = names.get(node.func.id)
            elif (isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
                  and inspect.ismodule(names.get(node.func.value.id))):
                try:
                    found = inspect.getattr_static(names[node.func.value.id], node.func.attr)
                except AttributeError:
                    found = None
            found = inspect.unwrap(found) if inspect.isfunction(found) else found
            if not (inspect.isfunction(found) or inspect.isclass(found)):
                continue
            home = getattr(sys.modules.get(getattr(found, "__module__", None) or ""), "__file__", None)
            if not home:
                continue  # builtins, or defined where no file holds its source
            own = (getattr(found, "__module__", None) or "").split(".")[0] == package
            if (own or not os.path.abspath(home).startswith(libs)) and found not in out:
                out.append(found)
    return out


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return "(no message)"
    if any(ln.startswith("Traceback") for ln in lines):
        return f"{lines[0]} {lines[-1]}"
    return " ".join(lines)[:300]


# -- results -----------------------------------------------------------------------------


@dataclass
class ProfileRouting:
    """What one client's upgrade request meets in the app."""

    profile: str
    connection: str
    detected: bool | None  # did Werkzeug route it as ws:// (MapAdapter.websocket)?
    routing: str  # match | WebsocketMismatch | RequestRedirect | NotFound | MethodNotAllowed | <exception>
    status: int | None  # the status Flask would answer (hidden behind gevent-websocket's 101)
    location: str | None = None
    endpoint: str | None = None
    outcome: str = "view"  # view | hook | hidden
    hooks_run: list = field(default_factory=list)
    hooks_skipped: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class RouteResult:
    """One candidate rule, routed for every profile."""

    rule: str
    endpoint: str
    methods: list
    websocket: bool
    url: str
    host: str
    blueprint: str | None
    view: str
    reads_socket: bool
    file: str | None
    line: int | None
    column: int | None
    source: str = ""
    profiles: list = field(default_factory=list)
    plain_get: str = ""
    slash: list = field(default_factory=list)  # the companion path without the trailing slash
    note: str | None = None
    static_route: object = None  # the static.Route of the declaration, when found
    blueprint_hooks: list = field(default_factory=list)  # every hook of the rule's blueprints (bphooks.hook_dict)

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k not in ("profiles", "slash", "static_route", "blueprint_hooks")}
        d["profiles"] = [p.to_dict() for p in self.profiles]
        d["slash_variant"] = [p.to_dict() for p in self.slash]
        return d


@dataclass
class AppCheck:
    app_name: str
    import_name: str
    results: list
    findings: list
    files: list  # source files of the app's views and hooks (scanned statically too)
    hook_serves: list  # app-level hooks that serve sockets
    scans: dict = field(default_factory=dict)  # absolute path -> the scan made while routing
    socketio: list = field(default_factory=list)  # Flask-SocketIO's live facts (wsdiag.flaskapp.sio_live)


# -- the check ---------------------------------------------------------------------------


class _Sources:
    """Static scans of the app's modules, cached per file (keyed by absolute path).

    ``display`` names the file inside each scan (as the report shows it), so that the static
    pass of ``wsdiag check --app`` can reuse these scans instead of parsing the files again.
    """

    def __init__(self, display=None):
        self.scans: dict[str, _static.ModuleScan] = {}
        self.display = display or (lambda p: p)
        self._by_view: dict[int, dict] = {}  # id(scan) -> view qualname -> its routes, in source order

    def routes_of(self, scan: _static.ModuleScan, qual: str) -> list:
        """The scan's route declarations whose view is ``qual`` (indexed once per scan)."""
        index = self._by_view.get(id(scan))
        if index is None:
            index = self._by_view[id(scan)] = {}
            for r in scan.routes:
                index.setdefault(r.view, []).append(r)
        return index.get(qual, [])

    def scan(self, path: str | None) -> _static.ModuleScan | None:
        if not path or not os.path.isfile(path):
            return None
        if path not in self.scans:
            try:
                with open(path, encoding="utf-8", newline="") as f:  # keep CRLF for --fix
                    text = f.read()
            except (OSError, UnicodeDecodeError):
                return None
            self.scans[path] = _static.scan_source(text, self.display(path))
        return self.scans[path]


def _source_of(obj, files: dict | None = None) -> tuple[str | None, str]:
    """(file, qualname) of a view function or class-based view.

    ``files`` caches ``inspect.getsourcefile`` per code file name, for functions whose file exists
    (then the answer depends on that name alone).
    """
    target = getattr(obj, "view_class", None) or inspect.unwrap(obj)
    qual = getattr(target, "__qualname__", getattr(target, "__name__", "?"))
    code = getattr(target, "__code__", None) if inspect.isfunction(target) else None
    key = code.co_filename if code is not None else None
    if files is not None and key in files:
        return files[key], qual
    try:
        path = inspect.getsourcefile(target)
    except TypeError:
        path = None
    path = os.path.abspath(path) if path else None
    if files is not None and key is not None and path is not None and os.path.isfile(key):
        files[key] = path
    return path, qual


def check_app(app, profiles: list[Profile] | None = None, werkzeug: str | None = None, display=None) -> AppCheck:
    """Route every candidate rule of ``app`` (a Flask app, or every Flask app a WSGI wrapper such as
    ``DispatcherMiddleware`` mounts) for each profile; no request is served."""
    from wsdiag.flaskapp.appserver import _flask_mounts

    mounts = _flask_mounts(app) or [("", app)]
    if len(mounts) == 1 and mounts[0][1] is app:
        return _check_one(app, profiles, werkzeug, display)
    parts = [_check_one(a, profiles, werkzeug, display) for _, a in mounts]
    for (prefix, _), part in zip(mounts, parts):
        for r in part.results:
            if prefix and hasattr(r, "rule") and isinstance(r.rule, str):
                r.rule = prefix + r.rule
    first = parts[0]
    scans: dict = {}
    for part in parts:
        scans.update(part.scans)
    return AppCheck(first.app_name, first.import_name, [r for p in parts for r in p.results],
                    [f for p in parts for f in p.findings], sorted({f for p in parts for f in p.files}),
                    [h for p in parts for h in p.hook_serves], scans=scans,
                    socketio=[x for p in parts for x in p.socketio])


def _check_one(app, profiles: list[Profile] | None = None, werkzeug: str | None = None, display=None) -> AppCheck:
    """Route every candidate rule of one Flask app for each profile."""
    profiles = [p for p in (profiles or [PROFILES[n] for n in ("chrome", "firefox", "firefox-legacy", "websocket-client", "minimal")])
                if p.upgrade]
    rel = _advice.release(werkzeug)
    sources = _Sources(display)
    files: dict = {}  # inspect.getsourcefile's answers, per code file
    router = _Router(app)
    hooks = app.before_request_funcs
    app_hooks = list(hooks.get(None, []))
    hook_serves = []
    for h in app_hooks:
        path, qual = _source_of(h, files)
        scan = sources.scan(path)
        if scan is not None and scan.reads_socket(qual):
            hook_serves.append(qual)
    results = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions.get(rule.endpoint)
        if view is None or (getattr(view, "__module__", None) or "").split(".")[0] == "flask":
            continue  # Flask's own views (the static route) serve no sockets
        path, qual = _source_of(view, files)
        scan = sources.scan(path)
        reads = bool(scan and (scan.reads_socket(qual) or view_reads_socket(view, sources)))
        is_ws = bool(getattr(rule, "websocket", False))
        if not (is_ws or reads):
            continue
        results.append(_route_rule(app, rule, qual, path, scan, reads, profiles, app_hooks, hook_serves,
                                   router, files, sources))
    found = []
    for r in results:
        found.extend(_findings(r, rel, profiles))
    module = sys.modules.get(getattr(app, "import_name", ""))
    if module is not None and getattr(module, "__file__", None):
        sources.scan(os.path.abspath(module.__file__))  # server start-up code lives beside the app
    files = sorted(p for p, s in sources.scans.items() if s.error is None)
    from wsdiag.flaskapp.sio_live import socketio_facts

    return AppCheck(getattr(app, "name", "app"), getattr(app, "import_name", "?"), results, found, files, hook_serves,
                    scans=dict(sources.scans), socketio=socketio_facts(app))


def _sample(conv: str | None, args: str | None) -> str:
    if conv == "any" and args:
        first = args.split(",")[0].strip().strip("'\"")
        return first or "x"
    return _SAMPLES.get(conv, "x")


def _fill(pattern: str) -> tuple[str, list[str]]:
    unknown = []

    def sub(m):
        conv = m.group("conv")
        if conv not in _SAMPLES and conv != "any":
            unknown.append(conv)
        return _sample(conv, m.group("args"))

    return _VAR.sub(sub, pattern), unknown


def _hook_names(funcs, files: dict | None = None) -> list[str]:
    return [_source_of(f, files)[1] for f in funcs]


def _route_rule(app, rule, qual, path, scan, reads, profiles, app_hooks, hook_serves, router=None, files=None,
                sources=None) -> RouteResult:
    url, unknown = _fill(rule.rule)
    note = None
    if unknown:
        note = f"custom converter(s) {', '.join(unknown)}: sample value 'x' used"
    host = "localhost"
    server_name = app.config.get("SERVER_NAME")
    if app.url_map.host_matching:
        host, more = _fill(rule.host or "")
        unknown += more
        host = host or "localhost"
    elif getattr(rule, "subdomain", None):
        sub, more = _fill(rule.subdomain)
        if not server_name:
            note = f"the rule needs subdomain {rule.subdomain!r} but SERVER_NAME is not set"
        host = f"{sub}.{server_name or 'localhost'}"
    elif server_name:
        host = server_name
    blueprint = rule.endpoint.rsplit(".", 1)[0] if "." in rule.endpoint else None
    bp_hooks = []
    if blueprint:
        parts = blueprint.split(".")
        for i in range(1, len(parts) + 1):
            bp_hooks += app.before_request_funcs.get(".".join(parts[:i]), [])
    res = RouteResult(rule.rule, rule.endpoint, sorted(rule.methods or []), bool(getattr(rule, "websocket", False)),
                      url, host, blueprint, qual, reads, path, None, None, note=note)
    if blueprint:
        res.blueprint_hooks = _blueprint_hooks(app, blueprint)
    st = _static_route(scan, qual, rule.rule, sources)
    if st is not None:
        res.static_route = st
        where = _static.location(scan, st.loc)
        res.line, res.column, res.source = where.line, where.column, where.source
    elif path:
        obj = app.view_functions[rule.endpoint]
        target = getattr(obj, "view_class", None) or inspect.unwrap(obj)
        try:
            lines, start = inspect.getsourcelines(target)
            res.line, res.column, res.source = start, 1, lines[0].rstrip("\n")
        except (OSError, TypeError):
            pass
    router = router or _Router(app)
    app_names, bp_names = _hook_names(app_hooks, files), _hook_names(bp_hooks, files)
    environ = router.environ(url, host)  # built once; each profile adds its headers
    plain = router.route(url, host, None, environ)
    res.plain_get = plain.routing if plain.routing != "match" else f"match {plain.endpoint}"
    for p in profiles:
        pr = router.route(url, host, p, environ)
        _classify(pr, rule.endpoint, app_names, bp_names, hook_serves)
        res.profiles.append(pr)
    if res.websocket and rule.rule.endswith("/") and len(rule.rule) > 1 and getattr(rule, "strict_slashes", True):
        environ = router.environ(url.rstrip("/"), host)
        for p in profiles:
            pr = router.route(url.rstrip("/"), host, p, environ)
            _classify(pr, rule.endpoint, app_names, bp_names, hook_serves)
            res.slash.append(pr)
    return res


def _blueprint_hooks(app, blueprint: str) -> list:
    """Every hook and error handler of ``blueprint`` and the blueprints it is nested in (FM-20):
    what Flask runs only when routing has found the blueprint."""
    from werkzeug.routing import WebsocketMismatch

    from wsdiag.check.bphooks import hook_dict

    out = []
    parts = blueprint.split(".")
    for name in (".".join(parts[:i]) for i in range(1, len(parts) + 1)):
        for kind, table in (("before_request", app.before_request_funcs),
                            ("url_value_preprocessor", getattr(app, "url_value_preprocessors", {})),
                            ("after_request", app.after_request_funcs),
                            ("teardown_request", app.teardown_request_funcs)):
            for f in table.get(name, ()):
                out.append(hook_dict(kind, *_where(f)))
        for code, handlers in (getattr(app, "error_handler_spec", {}).get(name) or {}).items():
            for exc, f in handlers.items():
                what = f"errorhandler({code if code is not None else exc.__name__})"
                out.append(hook_dict("errorhandler", *_where(f), catches=issubclass(WebsocketMismatch, exc), what=what))
    return out


def _where(f) -> tuple:
    """(qualname, file, line) of a hook function, the file as the report shows it."""
    path, qual = _source_of(f)
    try:
        line = inspect.getsourcelines(inspect.unwrap(f))[1]
    except (OSError, TypeError):
        line = 0
    if path:
        rel = os.path.relpath(path)
        path = path if rel.startswith("..") else rel
    return qual, path or "?", line


def _static_route(scan, qual: str, rule: str, sources: _Sources | None = None):
    if scan is None:
        return None
    mine = sources.routes_of(scan, qual) if sources is not None else [r for r in scan.routes if r.view == qual]
    exact = [r for r in mine if r.rule is not None and (rule.endswith(r.rule) or rule.rstrip("/").endswith(r.rule.rstrip("/")))]
    pick = exact or mine
    return pick[0] if pick else None


def route_upgrade(app, url: str, host: str = "localhost", profile: Profile | None = None) -> ProfileRouting:
    """Let Flask's URL adapter (the installed Werkzeug) route one request; nothing is dispatched.

    ``profile`` None routes a plain GET (no upgrade headers).
    """
    from werkzeug.test import EnvironBuilder

    environ = EnvironBuilder(path=url, base_url=f"http://{host}/", headers=_profile_headers(profile, host),
                             method="GET").get_environ()
    return _route_environ(app, environ, profile)


def _profile_headers(profile: Profile | None, host: str) -> list:
    headers = []
    if profile is not None:
        for name, value in profile.headers:
            if name.lower() == "host":
                continue
            headers.append((name, value.replace("{host}", host).replace("{origin}", f"http://{host}").replace("{key}", SAMPLE_KEY)))
    return headers


class _Router:
    """``route_upgrade`` for one URL and many profiles without building each environ from scratch.

    Werkzeug's ``EnvironBuilder`` builds the URL's plain-GET environ once per URL, and each
    profile's header variables (``HTTP_*``) once per check, since they do not depend on the URL;
    a profile's environ is the URL's environ plus its header variables, the same dict
    ``EnvironBuilder`` makes with those headers (``tests/test_check_inprocess.py`` compares them).
    """

    def __init__(self, app):
        self.app = app
        self._vars: dict = {}

    def environ(self, url: str, host: str, profile: Profile | None = None, plain: dict | None = None) -> dict:
        from werkzeug.test import EnvironBuilder

        env = dict(plain) if plain is not None else EnvironBuilder(path=url, base_url=f"http://{host}/",
                                                                    method="GET").get_environ()
        if profile is not None:
            env.update(self._header_vars(profile, host))
        return env

    def _header_vars(self, profile: Profile, host: str) -> dict:
        headers = tuple(_profile_headers(profile, host))
        found = self._vars.get(headers)
        if found is None:
            from werkzeug.test import EnvironBuilder

            without = EnvironBuilder(path="/", base_url=f"http://{host}/", method="GET").get_environ()
            with_headers = EnvironBuilder(path="/", base_url=f"http://{host}/", headers=list(headers),
                                          method="GET").get_environ()
            found = self._vars[headers] = {k: v for k, v in with_headers.items()
                                           if k != "wsgi.input" and (k not in without or without[k] != v)}
        return found

    def route(self, url: str, host: str, profile: Profile | None, plain: dict | None = None) -> ProfileRouting:
        return _route_environ(self.app, self.environ(url, host, profile, plain), profile)


def _route_environ(app, environ: dict, profile: Profile | None) -> ProfileRouting:
    from werkzeug.exceptions import HTTPException

    name = profile.name if profile else "plain-get"
    connection = (profile.connection or "") if profile else ""
    detected = None
    try:
        adapter = app.create_url_adapter(app.request_class(environ))
        detected = bool(getattr(adapter, "websocket", False))
        rule, _args = adapter.match(return_rule=True)
        return ProfileRouting(name, connection, detected, "match", 200, endpoint=rule.endpoint)
    except HTTPException as exc:
        routing = type(exc).__name__
        location = getattr(exc, "new_url", None)
        return ProfileRouting(name, connection, detected, routing, getattr(exc, "code", None), location=location)
    except Exception as exc:  # a routing error Flask would turn into a 500
        return ProfileRouting(name, connection, detected, type(exc).__name__, 500)


def _classify(pr: ProfileRouting, endpoint: str, app_names: list, bp_names: list, hook_serves) -> None:
    """Which code runs for this request: app-level hooks always; blueprint hooks and the view only on a match."""
    pr.hooks_run = list(app_names)
    if pr.routing == "match":
        pr.hooks_run += bp_names
        pr.outcome = "view" if pr.endpoint == endpoint else "other-view"
    else:
        pr.hooks_skipped = list(bp_names)
        pr.outcome = "hidden"
    if hook_serves:
        pr.outcome = "hook"


# -- findings ----------------------------------------------------------------------------


def _location(r: RouteResult) -> Location | None:
    if not r.file:
        return None
    rel = os.path.relpath(r.file)
    where = Location(r.file if rel.startswith("..") else rel, r.line or 0, r.column or 1, source=r.source or "")
    if r.static_route is not None:
        loc = r.static_route.loc
        where = replace(where, end_line=loc.end_line, end_column=loc.end_col + 1)
    return where


def _names(prs) -> str:
    return ", ".join(f"{p.profile} ({p.connection!r})" for p in prs)


def _findings(r: RouteResult, rel: _advice.Release, profiles) -> list[Finding]:
    out: list[Finding] = []
    at = _location(r)

    def finding(code: str, ev: dict, fix: SuggestedFix | None = None) -> Finding:
        return Finding(code, ev, subject=r.rule, location=at, fix=fix)

    base = dict(rule=r.rule, route=repr(r.rule), path=r.url, endpoint=r.endpoint,
                view=f"{r.view}()", host=r.host, routed_by=f"Werkzeug {rel.text}")
    # the sample URL reaches this rule if a plain GET matches it, or fails on the rule's own terms
    plain_ok = r.plain_get == f"match {r.endpoint}" or r.plain_get in ("WebsocketMismatch", "MethodNotAllowed")
    if r.note and not plain_ok:
        out.append(finding("WS510", dict(base, detail=f"{r.note}; a plain GET of {r.url} gives {r.plain_get}")))
        return out
    if not plain_ok:
        out.append(finding("WS510", dict(base, detail=f"a plain GET of the sample URL {r.url} gives {r.plain_get}")))
        return out
    by = {}
    for p in r.profiles:
        key = p.routing if p.routing != "match" else ("match" if p.endpoint == r.endpoint else "other")
        by.setdefault(key, []).append(p)
    working = by.get("match", [])
    mismatch = by.get("WebsocketMismatch", [])
    hooks_run = sorted({h for p in r.profiles for h in p.hooks_run})
    table = {p.profile: p.outcome if p.outcome != "hidden" else f"hidden {p.status}" for p in r.profiles}
    common = dict(base, hooks_run=hooks_run, clients=table)
    if mismatch:
        failing_conn = sorted({p.connection for p in mismatch})
        working_conn = sorted({p.connection for p in working})
        if not r.websocket:
            ev = dict(common, failing=_names(mismatch), consequence=_advice.plain_rule_consequence(rel), status=400)
            blocker = _static.fix_blocker(r.static_route, rel) if r.static_route is not None else None
            out.append(finding("WS601", ev, SuggestedFix(blocker=blocker, advice=_advice.plain_rule_advice(rel))))
        elif rel.rule == "never" or not working:
            out.append(finding("WS706", dict(common), SuggestedFix(advice=_advice.websocket_rule_advice(rel))))
        if working:
            win = connection_window(failing_conn, working_conn, r.websocket)
            how = _advice.websocket_rule_advice(rel) if r.websocket else _advice.plain_rule_advice(rel)
            out.append(finding("WS701", dict(common, failing=_names(mismatch), working=_names(working), window=win.text),
                               SuggestedFix(advice=how)))
    elif not r.websocket and working and rel.rule == "never":
        out.append(finding("WS509", dict(common, werkzeug=rel.text), SuggestedFix(advice=_advice.plain_rule_advice(rel))))
    redirects = by.get("RequestRedirect", [])
    if redirects:
        p = redirects[0]
        out.append(finding("WS605", dict(common, status=p.status, location=p.location, failing=_names(redirects))))
    if by.get("NotFound"):
        out.append(finding("WS602", dict(common, failing=_names(by["NotFound"]))))
    if by.get("MethodNotAllowed"):
        p = by["MethodNotAllowed"][0]
        # WS609 (method-not-allowed-hidden) is the probe's code for this; WS606 covers it where it is absent
        code = "WS609" if "WS609" in REGISTRY else "WS606"
        out.append(finding(code, dict(common, status=f"{p.status} ({p.routing})", failing=_names(by["MethodNotAllowed"]))))
    others = [p for k, ps in by.items() if k not in ("match", "WebsocketMismatch", "RequestRedirect", "NotFound", "MethodNotAllowed")
              for p in ps]
    if others:
        out.append(finding("WS606", dict(common, status=f"{others[0].status} ({others[0].routing})", failing=_names(others))))
    if r.slash:
        hidden = [p for p in r.slash if p.routing != "match"]
        if hidden:
            p = hidden[0]
            what = f"{p.status} {'redirect' if p.routing == 'RequestRedirect' else p.routing}"
            slash_clients = {q.profile: q.outcome if q.outcome != "hidden" else f"hidden {q.status}" for q in r.slash}
            out.append(finding("WS507", dict(common, alt_path=repr(r.url.rstrip("/")), hidden=what, failing=_names(hidden),
                                             clients=slash_clients, hooks_run=sorted({h for q in hidden for h in q.hooks_run}))))
    failing_any = [p for p in r.profiles if p.routing != "match"]
    if failing_any and r.blueprint and r.blueprint_hooks:
        from wsdiag.check.bphooks import evidence as _bp_evidence

        out.append(finding("WS508", dict(common, **_bp_evidence(r.blueprint, r.blueprint_hooks))))
    return out
