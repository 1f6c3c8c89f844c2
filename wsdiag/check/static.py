"""The static scan of ``wsdiag check``: what a file declares, read from source, never imported.

``wsdiag.check`` by concern: ``static`` (this module) scans one Python file (routes, hooks,
server calls) into a ``ModuleScan`` and dispatches other files to ``deploy``, which reads
deployment command lines and config (gunicorn, Procfile, Dockerfile, systemd, uWSGI,
requirements pins) and picks the server ``probe --app`` uses; ``model`` holds the app model's
facts (framework, WebSocket stack, launches, deploys, monkey patching, lifecycle) and relates
the files of a project; ``rules`` turns scans into findings, each rule stating the stacks it
applies to; ``fixes`` holds the edits and diffs; ``astutil`` the small helpers they share
(``Loc``, the line table, ``ast`` readers), a leaf so that none of them import each other in
a cycle.

Rules this module keeps:

* Pure core: standard library only (``ast``, ``re``, ``difflib``). It reads the text it is
  given; it never imports, runs or writes the code it scans.
* Findings carry a typed ``Finding.location`` (file, 1-based line and column in characters,
  not the UTF-8 byte offsets ``ast`` reports, end line/column, the source line as written) and
  ``Finding.fix`` (the advice that is true for the Werkzeug release the caller names, why
  ``--fix`` refuses and, where an edit can express it, the diff); on the wire they are the
  evidence keys ``file``/``line``/.../``advice``/``diff``/``fix_blocker`` as before.
* It does not guess: a computed rule, a ``websocket=`` expression or a ``**options`` call is
  reported with what is known, and never rewritten.
* Edits are exact source spans (insert ``, websocket=True`` after the last argument), so
  formatting and comments survive; ``ast.unparse`` is only used to name things in messages.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field

from wsdiag.core.findings import Finding, Location
from wsdiag.check import advice as _advice
from wsdiag.check import deploy as _deploy
from wsdiag.check import model as _model
from wsdiag.check.astutil import Loc, walk_own
from wsdiag.check.deploy import CONFIG_NAMES, Server
from wsdiag.check.astutil import SourceText as _Text
from wsdiag.check.astutil import const_str as _const_str, dotted as _dotted, kw as _kw, last_name as _last_name
from wsdiag.check.astutil import literal_bool as _literal_bool, literal_methods as _literal_methods
from wsdiag.check.fixes import Edit, apply_edits, edit_diff, edits_diff, unified_diff  # noqa: F401 (re-exported)

SOCKET_KEY = "wsgi.websocket"
ROUTE_SHORTCUTS = {"get": "GET", "post": "POST", "put": "PUT", "patch": "PATCH", "delete": "DELETE"}
HOOK_ATTRS = {"before_request": "", "before_app_request": "app"}
MESSAGE_CALLS = {"str", "bytes", "abort", "gettext", "_", "format"}  # calls that make a refusal, not a page
WEBSOCKET_METHODS = {"GET", "HEAD", "OPTIONS"}
SKIP_DIRS = {".git", ".hg", ".svn", ".venv", "venv", "env", ".env", "node_modules", "__pycache__", ".tox", ".nox",
             "site-packages", "build", "dist", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
RECEIVER_CONSTRUCTORS = {"Flask": "app", "Blueprint": "blueprint", "Sockets": "sockets", "Sock": "sock",
                         "SocketIO": "socketio", "create_app": "app", "make_app": "app",
                         # WSGI wrappers of Flask apps: serving one serves the apps it mounts
                         "DispatcherMiddleware": "app", "ProxyFix": "app"}


# -- the model -------------------------------------------------------------------------


@dataclass
class Function:
    qualname: str
    name: str
    node: ast.AST
    scope: str  # qualname of the enclosing function or class ("" at module level)
    cls: str | None  # the class qualname when this is a method
    direct: bool = False  # reads wsgi.websocket itself
    refs: set = field(default_factory=set)  # ("name", n) / ("self", n) references
    reads: bool = False  # directly or through a helper in the same module
    socket_vars: set = field(default_factory=set)
    socket_calls: list = field(default_factory=list)  # names of functions handed the socket


@dataclass
class Route:
    """A rule declaration: a route decorator or an add_url_rule call."""

    file: str
    receiver: str
    receiver_kind: str  # app | blueprint | sockets | unknown
    via: str  # route | get | post | ... | add_url_rule
    rule: str | None
    view: str | None  # qualname of the view function or class
    view_kind: str | None  # function | class
    websocket: object  # True | False | "expr"
    methods: tuple | None
    strict_slashes: object
    loc: Loc
    star_kwargs: bool = False
    reads_socket: bool = False
    serves_http: str | None = None  # why the view also serves plain HTTP pages
    edit: Edit | None = None  # the edit that declares the rule websocket=True
    blocker: str | None = None  # why that edit cannot be made
    siblings: int = 1  # how many rules the view has in this module


@dataclass
class Hook:
    file: str
    name: str  # qualname of the hook function
    receiver: str
    level: str  # app | blueprint
    loc: Loc
    reads_socket: bool
    helpers: list = field(default_factory=list)  # socket-reading functions it calls


@dataclass
class ModuleScan:
    """Everything the scan learned from one file."""

    file: str
    text: str
    routes: list = field(default_factory=list)
    hooks: list = field(default_factory=list)
    servers: list = field(default_factory=list)
    gunicorn: list = field(default_factory=list)
    flask_sockets: list = field(default_factory=list)  # (what, Loc) of imports without routes
    functions: dict = field(default_factory=dict)  # qualname -> Function
    classes: dict = field(default_factory=dict)  # qualname -> list of method qualnames
    uses_websocket: bool = False
    error: str | None = None
    explicit: bool = False
    facts: _model.FileFacts = field(default_factory=_model.FileFacts)
    parse_error: tuple | None = None  # (line, column, message) when Python cannot parse the file
    fallback: list = field(default_factory=list)  # what the token scan saw in a file that does not parse
    _table: object = field(default=None, repr=False, compare=False)  # the _Text, built once
    _tree: object = field(default=None, repr=False, compare=False)  # the scan's syntax tree, kept while the scan lives
    _nodes: object = field(default=None, repr=False, compare=False)  # its nodes in ast.walk order, listed once

    def syntax_tree(self) -> ast.Module | None:
        """The file's syntax tree: the one the scan parsed (rules read it instead of parsing the file
        again), else parsed now; None when the text does not parse."""
        if self._tree is None:
            try:
                self._tree = ast.parse(self.text)
            except (SyntaxError, ValueError):
                return None
        return self._tree  # type: ignore[return-value]

    def nodes(self) -> list:
        """Every node of ``syntax_tree()`` in ``ast.walk`` order, walked once: the scan and the rules that
        read the whole file iterate this list instead of walking the tree again ([] when it does not parse)."""
        if self._nodes is None:
            tree = self.syntax_tree()
            self._nodes = list(ast.walk(tree)) if tree is not None else []
        return self._nodes  # type: ignore[return-value]

    @property
    def table(self) -> "_Text":
        """The file's line table, built on first use and kept (a scan reads it per finding)."""
        if self._table is None:
            self._table = _Text(self.text)
        return self._table  # type: ignore[return-value]

    def reads_socket(self, qualname: str) -> bool:
        """Does the function or class ``qualname`` read wsgi.websocket (itself or via a helper)?"""
        if qualname in self.functions:
            return self.functions[qualname].reads
        return any(self.functions[m].reads for m in self.classes.get(qualname, []) if m in self.functions)


# -- the scan --------------------------------------------------------------------------


def scan_source(text: str, file: str, explicit: bool = False) -> ModuleScan:
    """Scan one Python file's text. A syntax error is recorded, never raised."""
    scan = ModuleScan(file, text, explicit=explicit)
    try:
        tree = ast.parse(text, filename=file)
    except (SyntaxError, ValueError) as exc:
        if isinstance(exc, SyntaxError):
            scan.parse_error = (exc.lineno or 1, exc.offset or 1, exc.msg)
        else:
            scan.parse_error = (1, 1, str(exc))
        scan.fallback = token_scan(text)
        return scan
    scan._tree = tree
    _Scanner(scan, _Text(text)).run(tree)
    return scan


_FALLBACK = [
    (re.compile(r"\.route\(\s*(['\"][^'\"]*['\"])"), "route {0}"),
    (re.compile(r"\badd_url_rule\(\s*(['\"][^'\"]*['\"])"), "add_url_rule {0}"),
    (re.compile(r"['\"]wsgi\.websocket['\"]()"), "reads wsgi.websocket"),
    (re.compile(r"\bWSGIServer\(()"), "WSGIServer(...)"),
    (re.compile(r"\bhandler_class\s*=\s*(\w+)"), "handler_class={0}"),
    (re.compile(r"\brun_simple\(()"), "run_simple()"),
    (re.compile(r"\b(\w+)\.run\(()"), "{0}.run()"),
    (re.compile(r"^\s*(?:from|import)\s+(geventwebsocket|flask_sockets|flask_sock|flask_socketio|flask)\b", re.M), "imports {0}"),
    (re.compile(r"^\s*(?:from|import)\s+(bottle|quart|aiohttp|django|fastapi|starlette|tornado|sanic|falcon|pyramid|cherrypy)\b",
                re.M), "imports {0}"),
]


def token_scan(text: str) -> list[str]:
    """Route and server patterns in a file Python cannot parse (Python 2 era files), line by line.

    Comment lines are left out; what is found is reported, never rewritten.
    """
    seen: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        for pat, label in _FALLBACK:
            for m in pat.finditer(line):
                groups = [g for g in m.groups() if g]
                what = label.format(*groups) if groups else label
                if what.endswith(".run()") and groups and groups[0] not in ("app", "application", "socketio"):
                    continue
                seen.append(f"{what} (line {n})")
    return seen


class _Scanner:
    def __init__(self, scan: ModuleScan, text: _Text):
        self.scan, self.t = scan, text
        self.kinds: dict[str, str] = {}  # receiver name -> app | blueprint | sockets | sock | socketio
        self.consts: set[str] = set()  # module names bound to "wsgi.websocket"
        self.as_view: dict[str, str] = {}  # variable -> class name (x = Cls.as_view(...))
        self.imports: dict[str, str] = {}  # local name -> dotted origin
        self.class_scopes: dict[str, str] = {}  # class qualname -> enclosing scope
        self.ws_handler_classes: set[str] = {"WebSocketHandler"}
        self.tree: ast.Module | None = None
        self.own: dict[str, list] = {}  # function qualname -> walk_own(bare_strings=False), walked once

    def run(self, tree: ast.Module) -> None:
        self.tree = tree
        for node in (self.scan.nodes() if self.scan._tree is tree else ast.walk(tree)):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                self._import(node)
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                self._assign(node.targets[0].id, node.value)
            elif isinstance(node, ast.ClassDef) and any("WebSocketHandler" in _dotted(b) for b in node.bases):
                self.ws_handler_classes.add(node.name)
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign) and _const_str(stmt.value) == SOCKET_KEY:
                self.consts |= {t.id for t in stmt.targets if isinstance(t, ast.Name)}
        facts = self.scan.facts
        _model.imports_facts(facts, self.imports)
        self._collect(tree.body, scope="", cls=None)
        if any(f.direct for f in self.scan.functions.values()):
            facts.stacks.add("gevent-websocket")
        self._propagate()
        self._declarations(tree.body, scope="", cls=None)
        _deploy.read_gunicorn_config(self.scan, tree, self.t)
        if os.path.basename(self.scan.file) == "setup.py":  # install_requires literals (never run)
            from wsdiag.check import pins as _pins

            facts.pins = _pins.setup_py(tree)
        _model.monkey_facts(facts, tree, self.t)
        if "socketio" in facts.stacks:
            _model.socketio_facts(facts, tree, self.t)
        if facts.stacks & _model.WS_STACKS and facts.other_framework is None:
            for f in self.scan.functions.values():
                names = set(f.socket_vars)
                if f.qualname in facts.sock_views:
                    args = getattr(f.node, "args", None)
                    if args is not None and args.args:
                        names.add(args.args[0].arg)
                own = self.own.get(f.qualname)
                if not names and own is not None and not any(isinstance(n, (ast.While, ast.For)) for n in own):
                    continue  # no socket and no loop (lambdas and bare strings hold none): nothing for FM-22 to find
                _model.lifecycle_facts(facts, f.node, f.qualname, names, self.t)
        s = self.scan
        s.uses_websocket = (any(f.direct for f in s.functions.values()) or any(r.websocket is True for r in s.routes)
                            or any(v.startswith(("geventwebsocket", "flask_sockets")) for v in self.imports.values()))
        counts: dict[str, int] = {}
        for r in s.routes:
            if r.view:
                counts[r.view] = counts.get(r.view, 0) + 1
        for r in s.routes:
            r.siblings = counts.get(r.view, 1) if r.view else 1

    def _import(self, node) -> None:
        if isinstance(node, ast.Import):
            for a in node.names:
                self.imports[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
                if a.name == "flask_sockets":
                    self.scan.flask_sockets.append(("import flask_sockets", self.t.loc(node)))
        else:
            mod = node.module or ""
            for a in node.names:
                self.imports[a.asname or a.name] = f"{mod}.{a.name}"
                if mod.startswith("flask_sockets"):
                    self.scan.flask_sockets.append((f"from {mod} import {a.name}", self.t.loc(node)))

    def _assign(self, name: str, value: ast.AST) -> None:
        if isinstance(value, ast.Call):
            ctor = _last_name(value.func)
            if ctor in RECEIVER_CONSTRUCTORS:
                self.kinds[name] = RECEIVER_CONSTRUCTORS[ctor]
            if isinstance(value.func, ast.Attribute) and value.func.attr == "as_view":
                self.as_view[name] = _dotted(value.func.value)

    def _receiver_kind(self, receiver: ast.AST) -> str:
        name = _dotted(receiver)
        kind = self.kinds.get(name)
        if kind:
            return kind
        low = name.split(".")[-1].lower()
        if low in ("app", "application", "flask_app", "current_app"):
            return "app"
        if "bp" in low or "blueprint" in low:
            return "blueprint"
        if low == "sockets":
            return "sockets"
        return "unknown"

    # pass 1: every function and class, with Python's qualnames; who reads the socket
    def _collect(self, body, scope: str, cls: str | None) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                q = _qual(scope, node.name, in_class=cls is not None)
                f = Function(q, node.name, node, scope, cls)
                self._function_body(f)
                self.scan.functions[q] = f
                if cls:
                    self.scan.classes.setdefault(cls, []).append(q)
                self._collect(node.body, q, None)
            elif isinstance(node, ast.ClassDef):
                q = _qual(scope, node.name, in_class=cls is not None)
                self.scan.classes.setdefault(q, [])
                self.class_scopes[q] = scope
                self._collect(node.body, q, q)
            else:
                for block in _child_blocks(node):
                    self._collect(block, scope, cls)

    def _function_body(self, f: Function) -> None:
        own = self.own[f.qualname] = list(walk_own(f.node, bare_strings=False))
        for node in own:
            if isinstance(node, ast.Constant) and node.value == SOCKET_KEY:
                f.direct = True
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                if node.id in self.consts:
                    f.direct = True
                f.refs.add(("name", node.id))
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                f.refs.add(("self", node.attr))
            if isinstance(node, ast.Assign) and _reads_key(node.value, self.consts):
                f.socket_vars |= {t.id for t in node.targets if isinstance(t, ast.Name)}
            elif isinstance(node, ast.NamedExpr) and _reads_key(node.value, self.consts):
                f.socket_vars.add(node.target.id)
        for node in own:
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and any(
                    (isinstance(a, ast.Name) and a.id in f.socket_vars) or _reads_key(a, self.consts) for a in node.args):
                f.socket_calls.append(node.func.id)

    def resolve(self, scope: str, ref: tuple) -> str | None:
        """The qualname that a reference made in ``scope`` names, if it is a function or class of this module.

        Python's rule: a function sees its own locals, then enclosing functions' locals, then
        module globals; class bodies are skipped. ``self.x`` names a method of the same class.
        """
        kind, name = ref
        fns, classes = self.scan.functions, self.scan.classes
        if kind == "self":
            owner = fns[scope].cls if scope in fns else None
            q = f"{owner}.{name}" if owner else None
            return q if q in fns else None
        s = scope
        while s:
            if s in fns:
                q = f"{s}.<locals>.{name}"
                if q in fns or q in classes:
                    return q
                s = fns[s].scope
            else:
                s = self.class_scopes.get(s, "")
        return name if (name in fns or name in classes) else None

    def _propagate(self) -> None:
        fns = self.scan.functions
        for f in fns.values():
            f.reads = f.direct
        changed = True
        while changed:
            changed = False
            for f in fns.values():
                if f.reads:
                    continue
                for ref in f.refs:
                    q = self.resolve(f.qualname, ref)
                    if q and q != f.qualname and self.scan.reads_socket(q):
                        f.reads = changed = True
                        break

    # pass 2: routes, hooks, servers (walked with scopes, so view names resolve as Python does)
    def _declarations(self, body, scope: str, cls: str | None) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                q = _qual(scope, node.name, in_class=cls is not None)
                for dec in node.decorator_list:
                    self._decorator(dec, q)
                self._declarations(node.body, q, None)
            elif isinstance(node, ast.ClassDef):
                q = _qual(scope, node.name, in_class=cls is not None)
                self._declarations(node.body, q, q)
            else:
                for expr in _own_exprs(node):
                    if isinstance(expr, ast.Call):
                        self._call(expr, scope)
                for block in _child_blocks(node):
                    self._declarations(block, scope, cls)

    def _decorator(self, dec: ast.AST, q: str) -> None:
        if isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute):
            attr, receiver = dec.func.attr, dec.func.value
            kind = self._receiver_kind(receiver)
            if kind == "sock" and attr == "route":
                self.scan.facts.sock_views.append(q)
                methods_kw, bp_kw = _kw(dec, "methods"), _kw(dec, "bp")
                self.scan.facts.sock_routes.append({
                    "rule": _const_str(dec.args[0]) if dec.args else _const_str(getattr(_kw(dec, "path"), "value", None)),
                    "methods": _literal_methods(methods_kw.value) if methods_kw else None,
                    "bp": _dotted(bp_kw.value) if bp_kw else None, "view": q, "receiver": _dotted(receiver),
                    "loc": self.t.loc(dec)})
            if kind in ("sock", "socketio"):
                return
            if attr == "route" or (attr in ROUTE_SHORTCUTS and self._looks_like_rule(dec)):
                self._route(dec, receiver, kind, attr, q, "function")
            elif attr in HOOK_ATTRS:
                self._hook(dec, receiver, kind, attr, q)
        elif isinstance(dec, ast.Attribute) and dec.attr in HOOK_ATTRS:
            self._hook(dec, dec.value, self._receiver_kind(dec.value), dec.attr, q)

    @staticmethod
    def _looks_like_rule(call: ast.Call) -> bool:
        first = _const_str(call.args[0]) if call.args else _const_str(getattr(_kw(call, "rule"), "value", None))
        return bool(first and first.startswith("/"))

    def _route(self, call: ast.Call, receiver, kind: str, via: str, view: str | None, view_kind: str | None) -> None:
        rule_node = call.args[0] if call.args else getattr(_kw(call, "rule"), "value", None)
        ws_kw, methods_kw, slashes_kw = _kw(call, "websocket"), _kw(call, "methods"), _kw(call, "strict_slashes")
        methods = _literal_methods(methods_kw.value) if methods_kw else None
        if via in ROUTE_SHORTCUTS:
            methods = (ROUTE_SHORTCUTS[via],)
        if methods is None and view_kind == "class" and view:
            verbs = [m.rsplit(".", 1)[-1].upper() for m in self.scan.classes.get(view, [])]
            methods = tuple(v for v in verbs if v in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")) or None
        route = Route(
            file=self.scan.file, receiver=_dotted(receiver), receiver_kind=kind, via=via,
            rule=_const_str(rule_node), view=view, view_kind=view_kind,
            websocket=_literal_bool(ws_kw.value) if ws_kw else False,
            methods=methods, strict_slashes=_literal_bool(slashes_kw.value) if slashes_kw else None,
            loc=self.t.loc(call), star_kwargs=any(k.arg is None for k in call.keywords),
        )
        if view:
            route.reads_socket = self.scan.reads_socket(view)
            route.serves_http = self._serves_http(view)
        route.edit, route.blocker = self._websocket_edit(call, ws_kw, route)
        self.scan.routes.append(route)

    def _websocket_edit(self, call: ast.Call, ws_kw, route: Route) -> tuple[Edit | None, str | None]:
        t = self.t
        if ws_kw is not None:
            v = ws_kw.value
            if isinstance(v, ast.Constant) and v.value is False:
                return Edit(self.scan.file, t.offset(v.lineno, v.col_offset), t.offset(v.end_lineno, v.end_col_offset), "True"), None
            if route.websocket is True:
                return None, "the rule is already declared websocket=True"
            return None, f"websocket= is computed ({_dotted(v)}); set it by hand"
        if route.star_kwargs:
            return None, "the call passes **options, which may already hold websocket=; edit it by hand"
        at = _after_last_argument(call, t)
        if at is None:
            return None, "the call has no arguments to extend"
        return Edit(self.scan.file, at, at, ", websocket=True"), None

    def _serves_http(self, view: str) -> str | None:
        """Why the view also answers plain HTTP with a page (not just a one-line refusal), if it does."""
        fns = self.scan.functions
        for q in ([view] if view in fns else self.scan.classes.get(view, [])):
            f = fns.get(q)
            if f is None:
                continue
            own = self.own.get(q)
            for node in own if own is not None else walk_own(f.node, bare_strings=False):
                if not isinstance(node, ast.If):
                    continue
                absent = _tests_socket_absent(node.test, f.socket_vars, self.consts)
                if absent is None:
                    continue
                for ret in (r for stmt in (node.body if absent else node.orelse) for r in ast.walk(stmt) if isinstance(r, ast.Return)):
                    why = _page_return(ret.value)
                    if why:
                        return f"{f.name}() answers requests without a socket with {why} (line {ret.lineno})"
        return None

    def _hook(self, dec, receiver, kind: str, attr: str, q: str) -> None:
        level = HOOK_ATTRS[attr] or ("blueprint" if kind == "blueprint" else "app")
        f = self.scan.functions.get(q)
        helpers = []
        if f:
            for ref in [("name", n) for n in f.socket_calls] + sorted(f.refs):
                r = self.resolve(q, ref)
                if r and r != q and r in self.scan.functions and r not in helpers and (
                        self.scan.functions[r].reads or ref[1] in f.socket_calls):
                    helpers.append(r)
        self.scan.hooks.append(Hook(self.scan.file, q, _dotted(receiver), level, self.t.loc(dec), bool(f and f.reads), helpers))

    def _call(self, call: ast.Call, scope: str) -> None:
        func = call.func
        name = _last_name(func)
        if isinstance(func, ast.Attribute) and name == "add_url_rule":
            kind = self._receiver_kind(func.value)
            if kind in ("sock", "socketio"):
                return
            vf = call.args[2] if len(call.args) > 2 else getattr(_kw(call, "view_func"), "value", None)
            view, view_kind = self._view_of(vf, scope)
            self._route(call, func.value, kind, "add_url_rule", view, view_kind)
        elif isinstance(func, ast.Attribute) and name in HOOK_ATTRS and call.args and isinstance(call.args[0], ast.Name):
            q = self.resolve(scope, ("name", call.args[0].id))
            if q:
                self._hook(call, func.value, self._receiver_kind(func.value), name, q)
        elif isinstance(func, ast.Attribute) and name == "run" and self._receiver_kind(func.value) == "socketio":
            self._launch(call, scope, _model.SOCKETIO_RUN, f"{_dotted(func.value)}.run()",
                         call.args[0] if call.args else getattr(_kw(call, "app"), "value", None))
        elif isinstance(func, ast.Attribute) and name == "run" and self._receiver_kind(func.value) == "app":
            self._server(call, f"{_dotted(func.value)}.run()", "Werkzeug development server", scope, func.value)
        elif name == "run_simple":
            app = call.args[2] if len(call.args) > 2 else getattr(_kw(call, "application"), "value", None)
            self._server(call, "run_simple()", "Werkzeug development server", scope, app)
        elif name == "WSGIServer" and self._is_gevent_server(func):
            app = call.args[1] if len(call.args) > 1 else getattr(_kw(call, "application"), "value", None)
            handler = _kw(call, "handler_class")
            if handler is None and (len(call.args) >= 6 or any(k.arg is None for k in call.keywords)):
                return  # handler_class may come positionally or through **options: cannot tell
            if handler is None:
                self._server(call, "WSGIServer(...)", "gevent WSGIServer without handler_class", scope, app)
            elif not any(n in _dotted(handler.value) for n in self.ws_handler_classes):
                self._server(call, "WSGIServer(...)", f"gevent WSGIServer with handler_class={_dotted(handler.value)}", scope, app)
            else:
                self._launch(call, scope, _model.GEVENT_WS, "WSGIServer(..., handler_class=WebSocketHandler)", app)

    def _in_class(self, scope: str) -> bool:
        """Is ``scope`` (a qualname) inside a class body or method?"""
        fns, s = self.scan.functions, scope
        while s:
            if s in self.scan.classes:
                return True
            if s in fns:
                if fns[s].cls:
                    return True
                s = fns[s].scope
            else:
                return False
        return False

    def _is_flask_app(self, node: ast.AST | None) -> bool:
        """Is the served object this file's Flask app (built here, imported, or from a factory)?"""
        if isinstance(node, ast.Attribute) and node.attr == "wsgi_app":
            return self._is_flask_app(node.value)
        if isinstance(node, ast.Call):
            return _last_name(node.func) in ("Flask", "create_app", "make_app")
        if isinstance(node, ast.Name):
            if self.kinds.get(node.id) == "app":
                return True
            origin = self.imports.get(node.id)
            if origin:
                top = origin.split(".")[0]
                return top not in _model.OTHER_FRAMEWORKS and top not in ("werkzeug", "gevent", "geventwebsocket")
            return False
        return False

    def _launch(self, call: ast.Call, scope: str, kind: str, what: str, app: ast.AST | None) -> _model.Launch:
        launch = _model.Launch(self.scan.file, kind, what, self.t.loc(call), not self._in_class(scope),
                               self._is_flask_app(app) if kind != _model.SOCKETIO_RUN else True)
        self.scan.facts.launches.append(launch)
        return launch

    def _is_gevent_server(self, func: ast.AST) -> bool:
        if isinstance(func, ast.Name):
            origin = self.imports.get(func.id, "")
            return origin.startswith("gevent") or not origin
        return "pywsgi" in _dotted(func) or "gevent" in _dotted(func)

    def _view_of(self, node: ast.AST | None, scope: str) -> tuple[str | None, str | None]:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "as_view":
            q = self.resolve(scope, ("name", _dotted(node.func.value).split(".")[-1]))
            return (q, "class") if q in self.scan.classes else (None, None)
        if isinstance(node, ast.Name):
            if node.id in self.as_view:
                q = self.resolve(scope, ("name", self.as_view[node.id].split(".")[-1]))
                return (q, "class") if q in self.scan.classes else (None, None)
            q = self.resolve(scope, ("name", node.id))
            if q in self.scan.functions:
                return q, "function"
            if q in self.scan.classes:
                return q, "class"
        return None, None

    def _server(self, call: ast.Call, what: str, server: str, scope: str = "", app: ast.AST | None = None) -> None:
        """Record a server start that lacks WebSocketHandler, with the suggested edits (a diff, never applied).

        The fix keeps the call's own bind address, port and app expressions and adds the imports it uses.
        """
        kind = _model.DEV if "development" in server else _model.GEVENT
        launch = self._launch(call, scope, kind, what, app)
        t, edits = self.t, []
        if server.startswith("gevent WSGIServer without"):
            at = _after_last_argument(call, t)
            if at is not None:
                edits = [Edit(self.scan.file, at, at, ", handler_class=WebSocketHandler")]
                edits += self._import_edits({"WebSocketHandler": "from geventwebsocket.handler import WebSocketHandler"})
        elif kind == _model.DEV and call.end_lineno and self._whole_statement(call):
            text = self.t.text
            seg = lambda n: ast.get_source_segment(text, n) if n is not None else None  # noqa: E731
            if what == "run_simple()":
                host = seg(call.args[0] if call.args else getattr(_kw(call, "hostname"), "value", None))
                port = seg(call.args[1] if len(call.args) > 1 else getattr(_kw(call, "port"), "value", None))
                target = seg(app)
            else:
                host = seg(call.args[0] if call.args else getattr(_kw(call, "host"), "value", None)) or '"127.0.0.1"'
                port = seg(call.args[1] if len(call.args) > 1 else getattr(_kw(call, "port"), "value", None)) or "5000"
                target = seg(call.func.value)  # type: ignore[attr-defined]
            if host and port and target and "\n" not in host + port + target:
                line = t.line(call.lineno)
                indent = line[: len(line) - len(line.lstrip())]
                start = t.starts[call.lineno - 1]
                end = t.starts[call.end_lineno] if call.end_lineno < len(t.starts) else len(text)
                imports = "".join(f"{indent}{stmt}\n" for name, stmt in (
                    ("WSGIServer", "from gevent.pywsgi import WSGIServer"),
                    ("WebSocketHandler", "from geventwebsocket.handler import WebSocketHandler"))
                    if name not in self.imports)
                tail = t.line(call.end_lineno)[t.col(call.end_lineno, call.end_col_offset):]
                edits = [Edit(self.scan.file, start, end,
                              f"{imports}{indent}WSGIServer(({host}, {port}), {target}, "
                              f"handler_class=WebSocketHandler).serve_forever(){tail.rstrip()}\n")]
        self.scan.servers.append(Server(self.scan.file, what, server, t.loc(call), edits[0] if edits else None,
                                        edits, launch.entry, launch.flask_app))

    def _whole_statement(self, call: ast.Call) -> bool:
        """Is the call a statement of its own (nothing else on its lines but a comment)?"""
        t = self.t
        before = t.line(call.lineno)[: t.col(call.lineno, call.col_offset)]
        after = t.line(call.end_lineno)[t.col(call.end_lineno, call.end_col_offset):]
        return not before.strip() and (not after.strip() or after.strip().startswith("#"))

    def _import_edits(self, needed: dict) -> list:
        """Edits adding ``from x import y`` lines after the module's last top-level import, for names not imported."""
        missing = [stmt for name, stmt in needed.items() if name not in self.imports]
        if not missing or self.tree is None:
            return []
        last = [s for s in self.tree.body if isinstance(s, (ast.Import, ast.ImportFrom))]
        if last:
            at = self.t.offset(last[-1].end_lineno, last[-1].end_col_offset)
            return [Edit(self.scan.file, at, at, "".join(f"\n{m}" for m in missing))]
        return [Edit(self.scan.file, 0, 0, "".join(f"{m}\n" for m in missing))]


def _after_last_argument(call: ast.Call, t: _Text) -> int | None:
    """The offset just after the call's last argument (before any trailing comma or comment)."""
    parts = list(call.args) + [k.value for k in call.keywords]
    if not parts:
        return None
    last = max(parts, key=lambda n: (n.end_lineno, n.end_col_offset))
    return t.offset(last.end_lineno, last.end_col_offset)


def _child_blocks(node: ast.AST):
    """The statement lists nested in a compound statement (if/for/while/with/try/match bodies)."""
    for _name, value in ast.iter_fields(node):
        if isinstance(value, list) and value:
            if isinstance(value[0], ast.stmt):
                yield value
            elif isinstance(value[0], (ast.ExceptHandler, getattr(ast, "match_case", ast.ExceptHandler))):
                for h in value:
                    yield h.body


def _own_exprs(stmt: ast.AST):
    """The expression nodes of one statement, not those of statements nested in it."""
    stack = [c for c in ast.iter_child_nodes(stmt) if not isinstance(c, (ast.stmt, ast.ExceptHandler))
             and type(c).__name__ != "match_case"]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(c for c in ast.iter_child_nodes(node) if not isinstance(c, ast.stmt))


def _qual(scope: str, name: str, in_class: bool) -> str:
    if not scope:
        return name
    return f"{scope}.{name}" if in_class else f"{scope}.<locals>.{name}"


def _reads_key(node: ast.AST, consts: set) -> bool:
    return any((isinstance(n, ast.Constant) and n.value == SOCKET_KEY) or (isinstance(n, ast.Name) and n.id in consts)
               for n in ast.walk(node))


def _tests_socket_absent(test: ast.AST, socket_vars: set, consts: set) -> bool | None:
    """True if ``test`` is true when there is no socket, False if true when there is one, None if unrelated."""
    def is_socket(n):
        return (isinstance(n, ast.Name) and n.id in socket_vars) or _reads_key(n, consts)

    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not) and is_socket(test.operand):
        return True
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        op, left, right = test.ops[0], test.left, test.comparators[0]
        if isinstance(op, (ast.Is, ast.IsNot, ast.Eq, ast.NotEq)) and isinstance(right, ast.Constant) and right.value is None and is_socket(left):
            return isinstance(op, (ast.Is, ast.Eq))
        if isinstance(op, (ast.In, ast.NotIn)) and _reads_key(left, consts):
            return isinstance(op, ast.NotIn)
    if is_socket(test) and isinstance(test, (ast.Name, ast.Call, ast.Subscript)):
        return False
    return None


def _page_return(value: ast.AST | None) -> str | None:
    """A description of a returned value that is a real HTTP page, or None for a short refusal message."""
    if value is None or isinstance(value, (ast.Constant, ast.JoinedStr)):
        return None
    if isinstance(value, ast.BinOp) and all(isinstance(x, (ast.Constant, ast.JoinedStr)) for x in (value.left, value.right)):
        return None
    if isinstance(value, ast.Tuple):
        return next((w for w in (_page_return(e) for e in value.elts) if w), None)
    if isinstance(value, ast.Call):
        name = _last_name(value.func) or _dotted(value.func)
        return None if name in MESSAGE_CALLS else f"{name}(...)"
    return _dotted(value)


def scan_config_text(text: str, file: str, explicit: bool = False) -> ModuleScan:
    """Command lines in Procfiles, Dockerfiles, shell scripts, compose/CI YAML, ini and .env files
    (read by ``wsdiag.check.deploy``)."""
    scan = ModuleScan(file, text, explicit=explicit)
    _deploy.read_config(scan, text)
    return scan


# -- files -----------------------------------------------------------------------------


def iter_files(paths: list[str]) -> list[tuple[str, bool]]:
    """(file, explicitly given) for every file to scan under ``paths``, sorted, without duplicates."""
    out: dict[str, bool] = {}
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info"))
                for name in sorted(files):
                    if name.endswith(".py") or CONFIG_NAMES.match(name):
                        out.setdefault(os.path.join(root, name), False)
        else:
            out[p] = True
    return sorted(out.items())


def scan_file(path: str, text: str, explicit: bool = False) -> ModuleScan:
    if path.endswith(".py") or path.endswith(".pyw"):
        return scan_source(text, path, explicit)
    return scan_config_text(text, path, explicit)


# -- findings --------------------------------------------------------------------------


def location(scan: ModuleScan, loc: Loc) -> Location:
    """Where a static finding is (``Finding.location``)."""
    return Location(scan.file, loc.line, loc.col + 1, loc.end_line, loc.end_col + 1, scan.table.line(loc.line))


def _route_label(r: Route) -> str:
    return repr(r.rule) if r.rule is not None else f"({r.via} with a computed rule)"


def _view_label(r: Route) -> str:
    if not r.view:
        return "?"
    return f"{r.view}()" if r.view_kind == "function" else f"class {r.view}"


def findings(scans: list[ModuleScan], werkzeug: str | None, versions: dict | None = None, routes=None) -> list[Finding]:
    """Every static finding for a project of scanned files, with advice for ``werkzeug`` (or, per file,
    the project's pinned Werkzeug: ``routes``, ``projpins.Routes``).

    The rules live in ``wsdiag.check.rules``, each stating the stacks it applies to.
    """
    from wsdiag.check import rules

    return rules.findings(scans, werkzeug, versions, routes)


def _kw_diff(s: ModuleScan, r: Route, kw: str) -> str | None:
    if r.edit is not None or r.star_kwargs:
        return None
    # the rule already has websocket=True: insert after the websocket keyword's value
    tree = s.syntax_tree()
    if tree is None:  # pragma: no cover - a scan with routes parsed
        return None
    t = s.table
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.lineno == r.loc.line and t.col(node.lineno, node.col_offset) == r.loc.col:
            parts = list(node.args) + [k.value for k in node.keywords]
            last = max(parts, key=lambda n: (n.end_lineno, n.end_col_offset))
            at = t.offset(last.end_lineno, last.end_col_offset)
            return edit_diff(s, Edit(s.file, at, at, f", {kw}"))
    return None


def fix_blocker(r: Route, rel: _advice.Release) -> str | None:
    """Why `--fix` must not add websocket=True to this rule, or None when it is safe."""
    if r.blocker:
        return r.blocker
    why = _advice.fix_refusal(rel)
    if why:
        return why
    if r.receiver_kind == "sockets":
        return "flask-sockets ignores websocket=True; migrate the route instead"
    bad = [m for m in (r.methods or ()) if m not in WEBSOCKET_METHODS]
    if bad:
        return f"the rule also serves {', '.join(bad)}, which a websocket=True rule cannot (ValueError); split it"
    if r.serves_http:
        return (f"the route also serves plain HTTP pages ({r.serves_http}); websocket=True would answer them "
                "with 400: give the page its own rule, or register both rules")
    if r.siblings > 1:
        return f"the view {_view_label(r)} has {r.siblings} rules; choose which one is the WebSocket rule by hand"
    if r.rule is None:
        return "the rule is computed; check by hand that it is the WebSocket rule"
    return None


def _hook_advice(h: Hook, rel: _advice.Release) -> str:
    """The proper fix for a socket-serving hook, true for the Werkzeug release."""
    helper = h.helpers[0].rsplit(".", 1)[-1] if h.helpers else None
    body = (f"    {helper}(request.environ[\"wsgi.websocket\"])\n" if helper
            else "    sock = request.environ[\"wsgi.websocket\"]\n    ...  # the hook's socket handling\n")
    view = f"def ws():\n{body}    return \"\"\n"
    where = "" if h.level == "app" else " (A blueprint-level hook does not even run when routing fails.)"
    head = f"Serve the socket from a route at the path the clients connect to, and remove the hook.{where}\n"
    if rel.rule == "never":
        return head + f"# Werkzeug {rel.text}: a plain rule (websocket=True rules never match here)\n@app.route(\"/ws\")\n" + view
    if rel.rule == "exact":
        return (head + f"# Werkzeug {rel.text} detects only 'Connection: Upgrade': register both rules\n" + view
                + "app.add_url_rule(\"/ws\", \"ws\", ws, websocket=True)\napp.add_url_rule(\"/ws\", \"ws_http\", ws)\n")
    return head + "@app.route(\"/ws\", websocket=True)\n" + view


def _advice_sockets() -> str:
    return ("Register the handler on the Flask app with websocket=True (Werkzeug >= 2.0.2) and serve the app "
            "with gevent-websocket's WebSocketHandler; the view reads request.environ[\"wsgi.websocket\"].")
