"""Stage paths: where an upgrade request went inside a Flask app, from its trace events.

Rules this module keeps:

* Pure core: standard library only; no Flask, no sockets, no printing.
* It reads the event list that ``wsdiag.flaskapp.trace`` records (the wire format of the
  probe <-> trace channel, defined below) and never guesses beyond it: a stage with no event
  is "never ran" (or unknown when the trace is incomplete).
* Wording lives here (``render_path``, ``hidden_outcome_message``) so the extension's log
  line, the CLI and the JSON output say the same thing.

Trace wire format, schema ``wsdiag.trace/1``
-------------------------------------------

The channel answers ``GET /trace/<probe-id>`` with one JSON document::

    {"schema": "wsdiag.trace/1", "probe_id": "9f2c...", "complete": true, "events": [...]}

``complete`` becomes true when the app has returned (gevent-websocket closes the socket right
after that).  ``events`` is a list of dicts in the order they happened.  Every event has

    ``stage`` (str)   one of the kinds below
    ``t_ms`` (float)  milliseconds since the request entered the app (monotonic clock)

and, per kind (unknown keys must be ignored by readers; new kinds may be added):

``request`` (always first)
    ``method``, ``path`` (SCRIPT_NAME + PATH_INFO), ``probe_id`` (str | null),
    ``websocket`` (bool: ``wsgi.websocket`` was in the environ, i.e. the server already
    answered 101), ``socket_class`` (str | null, e.g. ``geventwebsocket.websocket.WebSocket``),
    ``upgrade`` / ``connection`` (the request headers, str | null), ``server`` (SERVER_SOFTWARE),
    ``flask``, ``werkzeug`` (versions), ``started_at`` (epoch seconds).
``hook_enter``
    ``hook`` (qualified name), ``name`` (``__name__``), ``module``, ``scope`` (``app`` |
    ``blueprint``), ``blueprint`` (str | null).
``hook_exit``
    the same keys plus ``outcome`` (``none``: returned None, the request goes on |
    ``response``: returned a response, Flask stops here | ``raised``), ``exception``
    (class name | null), ``ms`` (duration), ``socket_closed`` (bool | null: the WebSocket's
    ``closed`` flag when the hook left; true after a hook served it until the peer closed).
``routing`` (once; when Flask dispatched, or at the end if it never did)
    ``ok`` (bool | null when unknown), ``rule``, ``endpoint``, ``blueprint`` (of the matched
    rule), ``rule_websocket`` (the matched rule's ``websocket`` flag), ``detected_websocket``
    (Werkzeug's ``MapAdapter.websocket``: did Werkzeug route the request as ws://),
    ``exception`` (class name: ``WebsocketMismatch``, ``NotFound``, ``MethodNotAllowed``,
    ``RequestRedirect`` ...), ``code`` (its HTTP status), ``new_url`` (RequestRedirect),
    ``valid_methods`` (MethodNotAllowed), ``other_rule`` / ``other_endpoint`` (for a
    WebsocketMismatch: the rule that matches with the opposite websocket flag),
    ``skipped_blueprint_hooks`` (hooks of that rule's blueprint that did not run),
    ``dispatched`` (bool: Flask went on to dispatch, so a routing exception was raised;
    false when a before_request hook answered first).
``view_enter``
    ``endpoint``, ``view`` (qualified name), ``name``, ``module``.
``view_exit``
    ``endpoint``, ``view``, ``name``, ``outcome`` (``returned`` | ``raised``), ``exception``,
    ``ms``, ``socket_closed``.
``end`` (last; absent while the app is still running)
    ``status`` (int | null: the status Flask produced), ``status_line``, ``discarded`` (bool:
    the server had already sent 101, so nobody saw this status; gevent-websocket drops it),
    ``socket_closed``, ``exception`` (the app itself raised, class name | null), ``ms``.
"""

from __future__ import annotations

import re

from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA = "wsdiag.trace/1"

# What the request reached, deepest first.
REACHED_VIEW = "view"  # the view ran (served the socket, returned, or raised)
REACHED_BEFORE_REQUEST = "before_request"  # a hook answered or raised; the view never ran
REACHED_ROUTING = "routing"  # hooks passed, routing failed; the view never ran
REACHED_REQUEST = "request"  # nothing beyond the request was recorded


@dataclass
class HookRun:
    """One before_request hook as it ran."""

    name: str  # __name__
    qualname: str
    scope: str  # app | blueprint
    blueprint: str | None
    outcome: str  # none | response | raised | running
    exception: str | None = None
    ms: float | None = None
    socket_closed: bool | None = None

    @property
    def label(self) -> str:
        return f"{'app' if self.scope == 'app' else self.blueprint}:{self.name}"

    @property
    def served_socket(self) -> bool:
        """The hook answered after the socket closed: it served it (the old workaround)."""
        return self.outcome == "response" and self.socket_closed is True


@dataclass
class StagePath:
    """The stages one upgrade request went through, derived from its trace events."""

    method: str = "GET"
    path: str = ""
    probe_id: str | None = None
    websocket: bool = False  # wsgi.websocket was present: the server had sent 101
    socket_class: str | None = None
    complete: bool = False  # the app returned (an ``end`` event exists)
    hooks: list[HookRun] = field(default_factory=list)
    routing_ok: bool | None = None
    routing_dispatched: bool | None = None
    rule: str | None = None
    endpoint: str | None = None
    detected_websocket: bool | None = None
    rule_websocket: bool | None = None
    routing_exception: str | None = None
    routing_code: int | None = None
    new_url: str | None = None
    valid_methods: list[str] | None = None
    other_rule: str | None = None
    other_endpoint: str | None = None
    skipped_blueprint_hooks: list[str] = field(default_factory=list)
    view: str | None = None  # __name__ of the view, when it was entered
    view_outcome: str | None = None  # returned | raised | running
    view_exception: str | None = None
    view_ms: float | None = None
    view_socket_closed: bool | None = None
    status: int | None = None  # the status Flask produced
    discarded: bool = False  # ... and the server threw it away (101 already sent)
    app_exception: str | None = None
    app_exception_in: str | None = None  # the module it came from (a WSGI middleware, the app)
    total_ms: float | None = None

    # -- construction ------------------------------------------------------------------

    @classmethod
    def from_events(cls, events: list[dict[str, Any]]) -> "StagePath":
        """Fold the event list into a path; unknown stages and keys are ignored."""
        p = cls()
        open_hooks: dict[tuple, HookRun] = {}
        for ev in events or []:
            if not isinstance(ev, dict):
                continue
            stage = ev.get("stage")
            if stage == "request":
                p.method = str(ev.get("method") or "GET")
                p.path = str(ev.get("path") or "")
                p.probe_id = ev.get("probe_id")
                p.websocket = bool(ev.get("websocket"))
                p.socket_class = ev.get("socket_class")
            elif stage == "hook_enter":
                run = HookRun(
                    name=str(ev.get("name") or ev.get("hook") or "?"),
                    qualname=str(ev.get("hook") or ev.get("name") or "?"),
                    scope=str(ev.get("scope") or "app"),
                    blueprint=ev.get("blueprint"),
                    outcome="running",
                )
                p.hooks.append(run)
                open_hooks[(run.qualname, run.scope, run.blueprint)] = run
            elif stage == "hook_exit":
                key = (str(ev.get("hook") or ev.get("name") or "?"), str(ev.get("scope") or "app"), ev.get("blueprint"))
                found = open_hooks.pop(key, None)
                if found is not None:
                    run = found
                else:  # an exit without its enter: keep what we know
                    run = HookRun(name=str(ev.get("name") or key[0]), qualname=key[0], scope=key[1], blueprint=key[2], outcome="running")
                    p.hooks.append(run)
                run.outcome = str(ev.get("outcome") or "none")
                run.exception = ev.get("exception")
                run.ms = ev.get("ms")
                run.socket_closed = ev.get("socket_closed")
            elif stage == "routing":
                p.routing_ok = ev.get("ok")
                p.routing_dispatched = ev.get("dispatched")
                p.rule = ev.get("rule")
                p.endpoint = ev.get("endpoint")
                p.detected_websocket = ev.get("detected_websocket")
                p.rule_websocket = ev.get("rule_websocket")
                p.routing_exception = ev.get("exception")
                p.routing_code = ev.get("code")
                p.new_url = ev.get("new_url")
                p.valid_methods = ev.get("valid_methods")
                p.other_rule = ev.get("other_rule")
                p.other_endpoint = ev.get("other_endpoint")
                p.skipped_blueprint_hooks = list(ev.get("skipped_blueprint_hooks") or [])
            elif stage == "view_enter":
                p.view = str(ev.get("name") or ev.get("view") or ev.get("endpoint") or "?")
                p.view_outcome = "running"
            elif stage == "view_exit":
                p.view = p.view or str(ev.get("name") or ev.get("view") or "?")
                p.view_outcome = str(ev.get("outcome") or "returned")
                p.view_exception = ev.get("exception")
                p.view_ms = ev.get("ms")
                p.view_socket_closed = ev.get("socket_closed")
            elif stage == "end":
                p.complete = True
                p.status = ev.get("status")
                p.discarded = bool(ev.get("discarded"))
                p.app_exception = ev.get("exception")
                p.app_exception_in = ev.get("raised_in")
                p.total_ms = ev.get("ms")
        return p

    # -- derived facts -----------------------------------------------------------------

    @property
    def stopping_hook(self) -> HookRun | None:
        """The hook that ended the request (answered or raised), if one did."""
        for run in self.hooks:
            if run.outcome in ("response", "raised"):
                return run
        return None

    @property
    def reached(self) -> str:
        """``view`` | ``before_request`` | ``routing`` | ``request`` (see the constants)."""
        if self.view_outcome is not None:
            return REACHED_VIEW
        if self.stopping_hook is not None or any(h.outcome == "running" for h in self.hooks):
            return REACHED_BEFORE_REQUEST
        if self.routing_ok is False and self.routing_dispatched:
            return REACHED_ROUTING
        return REACHED_REQUEST

    @property
    def view_ran(self) -> bool:
        return self.view_outcome is not None

    @property
    def served_by(self) -> str | None:
        """Who served the socket: ``view:<name>``, ``hook:<label>``, or None."""
        hook = self.stopping_hook
        if hook is not None and hook.served_socket:
            return f"hook:{hook.label}"
        if self.view_outcome == "returned" and self.view_socket_closed:
            return f"view:{self.view}"
        if self.view_outcome == "running":
            return f"view:{self.view}"
        return None

    @property
    def socket_served(self) -> bool:
        return self.served_by is not None

    @property
    def hidden_status(self) -> int | None:
        """The status Flask produced that nobody saw (None when it was sent, or unknown)."""
        return self.status if self.discarded else None

    @property
    def hooks_run(self) -> list[str]:
        return [h.label for h in self.hooks]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(reached=self.reached, served_by=self.served_by, hidden_status=self.hidden_status,
                 hooks_run=self.hooks_run, rendered=render_path(self))
        return d


# -- wording -----------------------------------------------------------------------------

def _status_note(path: StagePath, status: int | None) -> str:
    if status is None:
        return ""
    if path.discarded:
        return f"{status}, discarded by gevent-websocket" if _is_gevent_websocket(path) else f"{status}, discarded by the server"
    return f"{status}, sent to the client"


def _is_gevent_websocket(path: StagePath) -> bool:
    return path.socket_class is None or path.socket_class.startswith("geventwebsocket")


def _ms(v: float | None) -> str:
    return "?" if v is None else f"{v:.1f} ms"


def _routing_segment(path: StagePath) -> str:
    if path.routing_ok is None:
        return "routing ?" if path.complete else "routing (not yet)"
    if path.routing_ok:
        return f"routing ✓ {path.rule}"
    exc = path.routing_exception or "error"
    if path.routing_exception == "RequestRedirect" and path.new_url:
        exc = f"RequestRedirect to {path.new_url}"
    if not path.routing_dispatched:
        return f"routing ✗ {exc} (not raised: before_request answered first)"
    status = path.status if path.status is not None else path.routing_code
    note = _status_note(path, status)
    return f"routing ✗ {exc}" + (f" ({note})" if note else "")


def _view_segment(path: StagePath) -> str:
    if path.view_outcome is None:
        seg = "view never ran" if path.complete else "view not reached (yet)"
        if path.skipped_blueprint_hooks:
            seg += "; skipped: blueprint before_request " + ", ".join(path.skipped_blueprint_hooks)
        return seg
    if path.view_outcome == "running":
        return f"view {path.view} running (socket open)"
    if path.view_outcome == "raised":
        note = _status_note(path, path.status)
        return f"view {path.view} raised {path.view_exception} after {_ms(path.view_ms)}" + (f" ({note})" if note else "")
    if path.view_socket_closed:
        return f"view {path.view} served the socket for {_ms(path.view_ms)}"
    seg = f"view {path.view} returned after {_ms(path.view_ms)}"
    if path.discarded and path.status is not None and path.status >= 300:
        seg += f" ({_status_note(path, path.status)})"
    return seg


def render_path(path: StagePath) -> str:
    """One line: ``before_request(app:check_auth) ✓ → routing ✗ WebsocketMismatch (400, ...) → view never ran``."""
    segments: list[str] = []
    passed = [h for h in path.hooks if h.outcome == "none"]
    stop = path.stopping_hook
    running = [h for h in path.hooks if h.outcome == "running"]
    if passed:
        segments.append(f"before_request({', '.join(h.label for h in passed)}) ✓")
    elif stop is None and not running:
        segments.append("before_request ✓")
    if stop is not None:
        if stop.served_socket:
            segments.append(f"before_request({stop.label}) served the socket (workaround)")
        elif stop.outcome == "raised":
            note = _status_note(path, path.status)
            segments.append(f"before_request({stop.label}) ✗ raised {stop.exception}" + (f" ({note})" if note else ""))
        else:
            note = _status_note(path, path.status)
            segments.append(f"before_request({stop.label}) answered" + (f" ({note})" if note else ""))
        segments.append(_routing_segment(path))
        segments.append(_view_segment(path))
        return " → ".join(segments)
    if running:
        segments.append(f"before_request({running[0].label}) running (socket open)")
        return " → ".join(segments)
    segments.append(_routing_segment(path))
    segments.append(_view_segment(path))
    if path.complete and path.app_exception and path.view_outcome is None:
        where = f" in {path.app_exception_in}" if path.app_exception_in else ""
        segments.append(f"app raised {path.app_exception}{where}")
    return " → ".join(segments)


def _rule_fix(rule: str | None, endpoint: str | None) -> str:
    if not rule:
        return "declare the route with websocket=True"
    if endpoint and "." in endpoint:
        bp = endpoint.rpartition(".")[0]
        return f"add websocket=True to the route of blueprint {bp!r} for {rule} (endpoint {endpoint!r})"
    return f"@app.route({rule!r}, websocket=True)"


def _routing_reason(path: StagePath) -> tuple[str, str]:
    """(why, fix) for a routing failure."""
    exc = path.routing_exception or "routing error"
    if exc == "WebsocketMismatch":
        if path.detected_websocket is False:
            rule = path.other_rule or "the rule"
            return (
                f"WebsocketMismatch: {rule} has websocket=True, but Werkzeug did not route this upgrade "
                "as a WebSocket (Werkzeug 1.0 never does; 2.0.0/2.0.1 only for 'Connection: Upgrade' exactly)",
                "upgrade Werkzeug to >= 2.0.2, or also register the view on a plain rule for the same path",
            )
        rule = path.other_rule or path.path
        return ("WebsocketMismatch: the route lacks websocket=True", _rule_fix(rule, path.other_endpoint))
    if exc == "NotFound":
        return (f"NotFound: no rule matches {path.path}",
                f"connect to an existing WebSocket route, or add @app.route({path.path!r}, websocket=True)")
    if exc == "MethodNotAllowed":
        allowed = ", ".join(path.valid_methods or []) or "other methods"
        return (f"MethodNotAllowed: the rule for {path.path} allows {allowed} only",
                "allow GET on the rule (a WebSocket handshake is a GET)")
    if exc == "RequestRedirect":
        return (f"RequestRedirect to {path.new_url}: strict_slashes or merge_slashes",
                "connect to the canonical path, or set strict_slashes=False on the rule")
    return (exc, "see the routing exception above")


def hidden_outcome_message(path: StagePath) -> str | None:
    """The warning the extension logs when the server's 101 hid what Flask did; else None.

    Silent for a served socket, a trace that is not complete, and requests whose status the
    client did see (no ``wsgi.websocket``: the server had not answered 101).
    """
    if not path.complete or not path.websocket:
        return None
    who = "gevent-websocket" if _is_gevent_websocket(path) else "the server"
    head = f"wsdiag: {path.method} {path.path} upgraded by {who}, but "
    tail = " — the client saw 101 then close. Fix: "
    status = path.status
    stop = path.stopping_hook
    if stop is not None:
        if stop.served_socket:
            return None
        if stop.outcome == "raised":
            why = f"before_request hook {stop.label} raised {stop.exception}"
        else:
            why = f"before_request hook {stop.label} returned a response without serving the socket"
        return (f"{head}Flask answered {status} ({why}){tail}reject the client before the upgrade "
                "(WSGI middleware), or accept it and send an error message over the socket before closing")
    if path.routing_ok is False and path.routing_dispatched:
        why, fix = _routing_reason(path)
        return f"{head}Flask answered {status if status is not None else path.routing_code} ({why}){tail}{fix}"
    if path.view_outcome == "raised":
        return (f"{head}Flask answered {status} (the view {path.view} raised {path.view_exception}){tail}"
                "see the traceback Flask logged; handle errors inside the view and close the socket deliberately")
    if path.view_outcome == "returned" and path.view_socket_closed is False:
        return (f"{head}the view {path.view} returned after {_ms(path.view_ms)} with the socket still open, "
                f"so {who} closed it{tail}keep the view running while the socket is in use "
                "(loop on ws.receive() until it returns None)")
    if path.app_exception and path.view_outcome is None:
        where = f" in {path.app_exception_in}" if path.app_exception_in else ""
        return f"{head}the app raised {path.app_exception}{where}{tail}see the traceback"
    if status is not None and status >= 300 and path.view_outcome != "returned":
        return f"{head}Flask answered {status}{tail}see the app's handling of {path.path}"
    if status is not None and status >= 400:
        return f"{head}Flask answered {status} after the view {path.view} returned{tail}see the view"
    return None


PROBE_HEADER = "X-Wsdiag-Probe"  # the request header carrying a probe's id to the traced app
_PROBE_ID = re.compile(r"[0-9a-fA-F]{1,32}\Z")


def valid_probe_id(value: str | None) -> str | None:
    """The probe id in canonical form (lower-case hex, at most 32 chars), or None."""
    if value and _PROBE_ID.match(value.strip()):
        return value.strip().lower()
    return None


def new_probe_id() -> str:
    """A fresh random probe id (32 hex chars) for the ``X-Wsdiag-Probe`` header."""
    import os

    return os.urandom(16).hex()
