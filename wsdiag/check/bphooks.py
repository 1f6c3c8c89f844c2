"""FAILURES.md FM-20 on the static side: blueprint hooks that never see a failed upgrade.

Flask runs a blueprint's ``before_request``, ``url_value_preprocessor``, ``after_request``,
``teardown_request`` and ``errorhandler`` functions only for requests whose URL matched one of
the blueprint's rules (``request.blueprints`` is empty when routing failed). A WebSocket route
of a blueprint that fails routing (a raw gevent-websocket / flask-sockets style view without
``websocket=True`` on Werkzeug >= 2: WS501, WS701, WS706) therefore runs only the app-level
hooks and error handlers; the blueprint's auth, logging and its ``errorhandler(400)`` /
``errorhandler(WebsocketMismatch)`` never run for the failing upgrade.

The finding is ``WS508`` (info), the code ``check --app`` reports for the same cause from the
live app, with the hooks named by ``file:line``; in app mode the in-process verdict replaces
this one for a declaration it routed (``wsdiag.check.run.ROUTE_CODES``).

Pure: standard library only (``ast``). The module is read only for files that declare a
failing route on a blueprint.
"""

from __future__ import annotations

import ast

from wsdiag.check.astutil import SourceText, const_str, dotted, last_name
from wsdiag.core.findings import Finding

# the route findings that mean "routing fails for this rule" (for some or every client)
FAILING = ("WS501", "WS701", "WS706")
# blueprint-level registrations that depend on routing having found the blueprint
HOOK_KINDS = ("before_request", "url_value_preprocessor", "after_request", "teardown_request", "errorhandler")
# error handlers a user writes to catch the hidden 400 (WebsocketMismatch is a BadRequest)
CATCHES_MISMATCH = {"BadRequest", "WebsocketMismatch", "HTTPException", "Exception", "BaseException"}


def hook_dict(kind: str, name: str, file: str, line: int, catches: bool = False, what: str = "") -> dict:
    """One blueprint hook: kind (before_request...), function name, where, and for an error
    handler whether it would catch WebsocketMismatch (``what``: ``errorhandler(400)``)."""
    return {"kind": what or kind, "name": name, "file": file, "line": line, "catches": catches}


def evidence(blueprint: str, hooks: list[dict]) -> dict:
    """WS508's evidence, the same keys from the static scan and from the live app."""
    hooks = sorted(hooks, key=lambda h: (h["file"] or "", h["line"] or 0, h["name"]))
    names: list[str] = []
    for h in hooks:
        if f"{h['name']}()" not in names:
            names.append(f"{h['name']}()")
    at = [f"{h['name']}() ({h['kind']}, {h['file']}:{h['line']})" for h in hooks]
    dead = [f"{h['name']}() ({h['kind']}, {h['file']}:{h['line']})" for h in hooks if h["catches"]]
    handlers = ""
    if dead:
        which = f"error handler {dead[0]} never catches" if len(dead) == 1 else f"error handlers {', '.join(dead)} never catch"
        handlers = f"; its {which} this 400 (WebsocketMismatch): only app-level error handlers run"
    return {"blueprint": blueprint, "hooks": ", ".join(names), "hooks_at": at, "handlers": handlers}


def findings(s, route_findings: list[Finding]) -> list[Finding]:
    """WS508 for each blueprint route of scan ``s`` that a finding in ``route_findings`` says fails routing."""
    failing = {}
    for f in route_findings:
        if f.code in FAILING and f.location is not None:
            failing[(f.location.line, f.location.column)] = f
    routes = [(r, failing.get((r.loc.line, r.loc.col + 1))) for r in s.routes if r.receiver_kind == "blueprint"]
    routes = [(r, f) for r, f in routes if f is not None]
    if not routes:
        return []
    tree = s.syntax_tree()  # the scan's own tree: the file is not parsed a second time
    if tree is None:  # pragma: no cover - a scan with routes parsed
        return []
    reg = _Registrations(tree, s.table, s.file, s.nodes())  # the scan's line table and node list, made once
    out: list[Finding] = []
    for r, f in routes:
        chain = reg.chain(r.receiver)
        hooks = [h for bp in chain for h in reg.hooks.get(bp, [])]
        if not hooks:
            continue
        ev = dict(f.evidence)
        ev = {k: ev[k] for k in ("route", "rule", "view", "receiver", "via") if k in ev}
        ev.update(evidence(".".join(reg.names.get(bp, bp) for bp in reversed(chain)), hooks))
        out.append(Finding("WS508", ev, subject=f.subject, location=f.location))
    return out


class _Registrations:
    """The blueprint hooks of one module, by receiver (``bp``), and which blueprint nests which."""

    def __init__(self, tree: ast.Module, t: SourceText, file: str, nodes: list | None = None):
        self.hooks: dict[str, list] = {}
        self.parent: dict[str, str] = {}
        self.names: dict[str, str] = {}  # receiver -> the Blueprint's name ("api" of Blueprint("api", ...))
        self.t, self.file = t, file
        funcs: dict[str, ast.AST] = {}
        nodes = nodes if nodes is not None else list(ast.walk(tree))
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                funcs.setdefault(node.name, node)
                for dec in node.decorator_list:
                    self._decorator(dec, node.name)
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and last_name(node.value.func) == "Blueprint":
                name = const_str(node.value.args[0]) if node.value.args else None
                for tg in node.targets:
                    self.names.setdefault(dotted(tg), name or dotted(tg))
        for node in nodes:
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                self._call(node, funcs)

    def chain(self, receiver: str) -> list[str]:
        """The receiver and the blueprints it is nested in (in this module)."""
        out = [receiver]
        while out[-1] in self.parent and self.parent[out[-1]] not in out:
            out.append(self.parent[out[-1]])
        return out

    def _add(self, receiver: ast.AST, kind: str, name: str, node: ast.AST, arg: ast.AST | None = None) -> None:
        what, catches = kind, False
        if kind == "errorhandler":
            label = dotted(arg) if arg is not None else "?"
            what = f"errorhandler({label})"
            catches = (isinstance(arg, ast.Constant) and arg.value == 400) or last_name(arg) in CATCHES_MISMATCH
        self.hooks.setdefault(dotted(receiver), []).append(
            hook_dict(kind, name, self.file, self.t.loc(node).line, catches, what))

    def _decorator(self, dec: ast.AST, name: str) -> None:
        if isinstance(dec, ast.Attribute) and dec.attr in HOOK_KINDS and dec.attr != "errorhandler":
            self._add(dec.value, dec.attr, name, dec)
        elif isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute) and dec.func.attr == "errorhandler" and dec.args:
            self._add(dec.func.value, "errorhandler", name, dec, dec.args[0])

    def _call(self, call: ast.Call, funcs: dict) -> None:
        attr, receiver = call.func.attr, call.func.value  # type: ignore[attr-defined]
        if attr in HOOK_KINDS and attr != "errorhandler" and len(call.args) == 1 and isinstance(call.args[0], ast.Name):
            self._add(receiver, attr, call.args[0].id, call)
        elif attr == "register_error_handler" and len(call.args) == 2 and isinstance(call.args[1], ast.Name):
            self._add(receiver, "errorhandler", call.args[1].id, call, call.args[0])
        elif attr == "register_blueprint" and call.args and isinstance(receiver, (ast.Name, ast.Attribute)):
            child = dotted(call.args[0])
            if dotted(receiver) in self.names:  # nested in another blueprint (not the app: app hooks run)
                self.parent.setdefault(child, dotted(receiver))
