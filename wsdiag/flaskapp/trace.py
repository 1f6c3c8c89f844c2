"""Stage tracing inside a Flask app: where did an upgrade request die?

``WsdiagTrace(app)`` (or ``trace.init_app(app)``) records, for each request that carries
WebSocket upgrade headers or ``wsgi.websocket``, the stages it went through — before_request
hooks, URL matching, the view — and the final status Flask produced, which gevent-websocket
throws away once it has sent 101.  The event format (``wsdiag.trace/1``) is defined in
``wsdiag.core.stages``.  A hidden failure is logged as a WARNING on the ``wsdiag.trace`` logger,
with the fix, whether or not a probe is running.

Rules this module keeps:

* Never change the app's behaviour: wrappers return what the wrapped callable returned and
  re-raise its exception unchanged; any failure of the recording itself is swallowed.
* Ordinary HTTP requests skip recording: the WSGI middleware looks at two environ keys
  and calls the app directly.  Hooks, ``dispatch_request`` and ``request_context`` are
  wrapped lazily, at the first upgrade request (and hooks registered later are wrapped at
  the next one); after that a plain request pays one ContextVar lookup per wrapped call.
* The probe <-> trace channel is off by default.  When enabled it serves traces on a
  separate listener bound to 127.0.0.1 (never the app's port), behind a bearer token
  compared in constant time.
* Flask is imported lazily, so ``fetch_trace`` (the client side) is cheap to import.
"""

from __future__ import annotations

import contextvars
import functools
import hmac
import inspect
import json
import logging
import os
import re
import threading
import time
from collections import OrderedDict, deque
from typing import Any, Callable

from wsdiag.core import stages
from wsdiag.core.stages import PROBE_HEADER, new_probe_id, valid_probe_id  # noqa: F401  (re-exported)

log = logging.getLogger("wsdiag.trace")

TOKEN_ENV = "WSDIAG_TRACE_TOKEN"
PORT_ENV = "WSDIAG_TRACE_PORT"
EXTENSION_KEY = "wsdiag_trace"
_PROBE_ENVIRON = "HTTP_X_WSDIAG_PROBE"
_MARK = "__wsdiag_trace__"  # set on every wrapper this module makes
_TRACE_PATH = re.compile(r"/trace/([0-9a-fA-F]{1,32})\Z")

_current: contextvars.ContextVar["_Trace | None"] = contextvars.ContextVar("wsdiag_trace", default=None)


def _is_upgrade(environ: dict) -> bool:
    if environ.get("wsgi.websocket") is not None:
        return True
    up = environ.get("HTTP_UPGRADE")
    return bool(up) and "websocket" in up.lower()


def _names(f: Any) -> tuple[str, str, str]:
    """(__name__, __qualname__, module) of a hook or view; class-based views by their class."""
    f = inspect.unwrap(f) if callable(f) else f
    cls = getattr(f, "view_class", None)
    if cls is not None:
        f = cls
    name = getattr(f, "__name__", None) or type(f).__name__
    return name, getattr(f, "__qualname__", name), getattr(f, "__module__", None) or "?"


def _raised_in(exc: BaseException) -> str | None:
    """The module of the innermost frame outside Werkzeug, Flask and wsdiag that ``exc`` left:
    the WSGI middleware or app code it came from (``flask_sockets`` for FAILURES.md FM-16)."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        name = str(tb.tb_frame.f_globals.get("__name__") or "")
        if name.split(".")[0] not in ("werkzeug", "flask", "wsdiag"):
            found = name
        tb = tb.tb_next
    return found


def _parse_status(line: str | None) -> int | None:
    try:
        return int(str(line).split(None, 1)[0])
    except (ValueError, IndexError, TypeError):
        return None


class _Trace:
    """The events of one upgrade request; appended from the request's own greenlet/thread."""

    __slots__ = ("t0", "events", "probe_id", "ws", "ctx", "routed", "status_line", "complete", "path")

    def __init__(self, environ: dict, probe_id: str | None) -> None:
        self.t0 = time.perf_counter()
        self.events: list[dict[str, Any]] = []
        self.probe_id = probe_id
        self.ws = environ.get("wsgi.websocket")
        self.ctx = None  # Flask's RequestContext, captured from app.request_context
        self.routed = False
        self.status_line: str | None = None
        self.complete = False
        self.path = (environ.get("SCRIPT_NAME") or "") + (environ.get("PATH_INFO") or "")

    def ms(self) -> float:
        return round((time.perf_counter() - self.t0) * 1000.0, 3)

    def add(self, stage: str, **fields: Any) -> dict[str, Any]:
        event = {"stage": stage, "t_ms": self.ms()}
        event.update(fields)
        self.events.append(event)
        return event

    def socket_closed(self) -> bool | None:
        if self.ws is None:
            return None
        closed = getattr(self.ws, "closed", None)
        return closed if isinstance(closed, bool) else None

    def document(self) -> dict[str, Any]:
        return {"schema": stages.SCHEMA, "probe_id": self.probe_id, "complete": self.complete,
                "events": list(self.events)}


class WsdiagTrace:
    """Flask extension recording the stages of WebSocket upgrade requests.

    ``channel``: serve traces to probes (``None``: only when ``WSDIAG_TRACE_TOKEN`` is set).
    ``token``: the bearer token of the channel (default: ``WSDIAG_TRACE_TOKEN``).
    ``channel_port``: the channel's loopback port (default ``WSDIAG_TRACE_PORT`` or a free one).
    ``max_traces``: how many probe-marked traces to keep (oldest dropped first).
    ``log_hidden``: log hidden outcomes as WARNINGs on ``wsdiag.trace``.
    ``on_trace``: called with each finished trace document (errors in it are swallowed).
    """

    def __init__(self, app=None, *, channel: bool | None = None, token: str | None = None,
                 channel_port: int | None = None, max_traces: int = 512, log_hidden: bool = True,
                 on_trace: Callable[[dict[str, Any]], None] | None = None) -> None:
        env_token = os.environ.get(TOKEN_ENV) or None
        self.token = token or env_token
        self.channel_enabled = bool(env_token) if channel is None else bool(channel)
        if self.channel_enabled and not self.token:
            raise ValueError(f"the trace channel needs a token (token=... or {TOKEN_ENV})")
        if channel_port is None:
            channel_port = int(os.environ.get(PORT_ENV) or 0)
        self.channel_port = channel_port
        self.max_traces = max(1, int(max_traces))
        self.log_hidden = log_hidden
        self.on_trace = on_trace
        self._traces: "OrderedDict[str, _Trace]" = OrderedDict()
        self._recent: deque = deque(maxlen=64)
        self._lock = threading.Lock()
        self._wrap_lock = threading.Lock()
        self._server = None
        self._server_thread: threading.Thread | None = None
        self.apps: list = []
        if app is not None:
            self.init_app(app)

    # -- instrumentation ------------------------------------------------------------------

    def init_app(self, app) -> None:
        """Instrument ``app`` (idempotent) and start the channel if it is enabled."""
        existing = app.extensions.get(EXTENSION_KEY)
        if existing is self:
            return
        if existing is not None:
            raise RuntimeError("this app is already instrumented by another WsdiagTrace")
        app.extensions[EXTENSION_KEY] = self
        app.wsgi_app = self._middleware(app, app.wsgi_app)
        self.apps.append(app)
        if self.channel_enabled and self._server is None:
            self.start_channel()

    def _middleware(self, app, inner):
        traced = self._traced

        def wsdiag_trace_middleware(environ, start_response):
            # The fast path: a plain HTTP request costs two dict lookups.
            if environ.get("HTTP_UPGRADE") is None and environ.get("wsgi.websocket") is None:
                return inner(environ, start_response)
            if not _is_upgrade(environ):
                return inner(environ, start_response)
            return traced(app, inner, environ, start_response)

        wsdiag_trace_middleware.__wrapped__ = inner  # type: ignore[attr-defined]
        setattr(wsdiag_trace_middleware, _MARK, True)
        return wsdiag_trace_middleware

    def _traced(self, app, inner, environ, start_response):
        tr = None
        try:
            tr = self._begin(app, environ)
        except Exception:  # recording must never break the request
            log.debug("wsdiag: could not start a trace", exc_info=True)
        if tr is None:
            return inner(environ, start_response)

        def capture_start_response(status, headers, *args, **kwargs):
            tr.status_line = status
            return start_response(status, headers, *args, **kwargs)

        token = _current.set(tr)
        try:
            result = inner(environ, capture_start_response)
        except BaseException as exc:
            _current.reset(token)
            self._finish(app, tr, exc)
            raise
        _current.reset(token)
        self._finish(app, tr, None)
        return result

    def _begin(self, app, environ) -> _Trace:
        probe_id = valid_probe_id(environ.get(_PROBE_ENVIRON))
        tr = _Trace(environ, probe_id)
        ws = tr.ws
        tr.add(
            "request",
            method=environ.get("REQUEST_METHOD", "GET"),
            path=tr.path,
            probe_id=probe_id,
            websocket=ws is not None,
            socket_class=None if ws is None else f"{type(ws).__module__}.{type(ws).__qualname__}",
            upgrade=environ.get("HTTP_UPGRADE"),
            connection=environ.get("HTTP_CONNECTION"),
            server=environ.get("SERVER_SOFTWARE"),
            flask=_version("flask"),
            werkzeug=_version("werkzeug"),
            started_at=round(time.time(), 6),
        )
        with self._wrap_lock:
            self._wrap(app)
        if probe_id is not None:
            with self._lock:
                self._traces[probe_id] = tr
                self._traces.move_to_end(probe_id)
                while len(self._traces) > self.max_traces:
                    self._traces.popitem(last=False)
        return tr

    def _wrap(self, app) -> None:
        """Wrap what is not wrapped yet: request_context, dispatch_request, every hook."""
        if not getattr(app.request_context, _MARK, False):
            app.request_context = self._wrap_request_context(app.request_context)
        if not getattr(app.dispatch_request, _MARK, False):
            app.dispatch_request = self._wrap_dispatch(app, app.dispatch_request)
        for key, funcs in list(app.before_request_funcs.items()):
            for i, f in enumerate(list(funcs)):
                if not getattr(f, _MARK, False):
                    try:
                        if funcs[i] is f:
                            funcs[i] = _wrap_hook(f, key)
                    except (IndexError, TypeError):  # a list changed under us, or a tuple
                        pass

    @staticmethod
    def _wrap_request_context(original):
        @functools.wraps(original)
        def request_context(*args, **kwargs):
            ctx = original(*args, **kwargs)
            tr = _current.get()
            if tr is not None and tr.ctx is None:
                tr.ctx = ctx
            return ctx

        setattr(request_context, _MARK, True)
        return request_context

    def _wrap_dispatch(self, app, original):
        routing = self._routing_event

        @functools.wraps(original)
        def dispatch_request(*args, **kwargs):
            tr = _current.get()
            if tr is None:
                return original(*args, **kwargs)
            view = None
            try:
                event = routing(app, tr, dispatched=True)
                rule = getattr(tr.ctx.request, "url_rule", None) if tr.ctx is not None else None
                auto_options = (getattr(rule, "provide_automatic_options", False)
                                and tr.ctx.request.method == "OPTIONS")
                if event.get("ok") and not auto_options:
                    endpoint = event.get("endpoint")
                    name, qualname, module = _names(app.view_functions.get(endpoint))
                    view = (endpoint, qualname, name)
                    tr.add("view_enter", endpoint=endpoint, view=qualname, name=name, module=module)
            except Exception:
                log.debug("wsdiag: could not record routing", exc_info=True)
            if view is None:
                return original(*args, **kwargs)
            start = time.perf_counter()
            try:
                rv = original(*args, **kwargs)
            except BaseException as exc:
                _exit(tr, "view_exit", start, endpoint=view[0], view=view[1], name=view[2],
                      outcome="raised", exception=type(exc).__name__)
                raise
            _exit(tr, "view_exit", start, endpoint=view[0], view=view[1], name=view[2],
                  outcome="returned", exception=None)
            return rv

        setattr(dispatch_request, _MARK, True)
        return dispatch_request

    def _routing_event(self, app, tr: _Trace, dispatched: bool) -> dict[str, Any]:
        tr.routed = True
        ctx = tr.ctx
        if ctx is None:
            return tr.add("routing", ok=None, dispatched=dispatched)
        req = ctx.request
        exc = getattr(req, "routing_exception", None)
        rule = getattr(req, "url_rule", None)
        adapter = getattr(ctx, "url_adapter", None)
        detected = getattr(adapter, "websocket", None)
        detected = detected if isinstance(detected, bool) else None
        endpoint = getattr(rule, "endpoint", None)
        fields: dict[str, Any] = {
            "ok": exc is None and rule is not None,
            "rule": getattr(rule, "rule", None),
            "endpoint": endpoint,
            "blueprint": _blueprint_of(endpoint),
            "rule_websocket": getattr(rule, "websocket", None) if rule is not None else None,
            "detected_websocket": detected,
            "exception": None, "code": None, "new_url": None, "valid_methods": None,
            "other_rule": None, "other_endpoint": None, "skipped_blueprint_hooks": [],
            "dispatched": dispatched,
        }
        if exc is not None:
            fields["exception"] = type(exc).__name__
            fields["code"] = getattr(exc, "code", None)
            fields["new_url"] = getattr(exc, "new_url", None)
            methods = getattr(exc, "valid_methods", None)
            fields["valid_methods"] = sorted(methods) if methods else None
            if type(exc).__name__ == "WebsocketMismatch" and adapter is not None and detected is not None:
                try:  # the rule that would match with the other websocket flag (side-effect free)
                    other, _ = adapter.match(return_rule=True, websocket=not detected)
                except Exception:
                    other = None
                if other is not None:
                    fields["other_rule"] = getattr(other, "rule", None)
                    fields["other_endpoint"] = getattr(other, "endpoint", None)
                    fields["skipped_blueprint_hooks"] = _blueprint_hooks(app, fields["other_endpoint"])
        return tr.add("routing", **fields)

    def _finish(self, app, tr: _Trace, exc: BaseException | None) -> None:
        if not tr.routed:
            try:
                self._routing_event(app, tr, dispatched=False)
            except Exception:
                log.debug("wsdiag: could not record routing", exc_info=True)
        try:
            tr.add("end", status=_parse_status(tr.status_line), status_line=tr.status_line,
                   discarded=tr.ws is not None, socket_closed=tr.socket_closed(),
                   exception=None if exc is None else type(exc).__name__,
                   raised_in=None if exc is None else _raised_in(exc), ms=tr.ms())
            tr.complete = True
            tr.ctx = None  # do not keep the request alive in the trace store
            doc = tr.document()
            with self._lock:
                self._recent.append(doc)
            if self.log_hidden:
                message = stages.hidden_outcome_message(stages.StagePath.from_events(doc["events"]))
                if message:
                    log.warning("%s", message)
            if self.on_trace is not None:
                self.on_trace(doc)
        except Exception:
            log.debug("wsdiag: could not finish a trace", exc_info=True)

    # -- reading traces -------------------------------------------------------------------

    def get_trace(self, probe_id: str) -> dict[str, Any] | None:
        """The trace document of a probe id (``wsdiag.trace/1``), or None when unknown."""
        pid = valid_probe_id(probe_id)
        with self._lock:
            tr = self._traces.get(pid) if pid else None
            return None if tr is None else tr.document()

    def recent(self) -> list[dict[str, Any]]:
        """The last finished upgrade traces (probe-marked or not), oldest first."""
        with self._lock:
            return list(self._recent)

    # -- the channel ----------------------------------------------------------------------

    @property
    def channel_address(self) -> tuple[str, int] | None:
        return None if self._server is None else self._server.server_address[:2]

    @property
    def trace_url(self) -> str | None:
        addr = self.channel_address
        return None if addr is None else f"http://{addr[0]}:{addr[1]}"

    def start_channel(self, token: str | None = None, port: int | None = None) -> tuple[str, int]:
        """Serve ``GET /trace/<id>`` on 127.0.0.1 (its own port); returns (host, port)."""
        if self._server is not None:
            return self.channel_address  # type: ignore[return-value]
        if token:
            self.token = token
        if not self.token:
            raise ValueError(f"the trace channel needs a token (token=... or {TOKEN_ENV})")
        self.channel_enabled = True
        from http.server import ThreadingHTTPServer

        server = ThreadingHTTPServer(("127.0.0.1", self.channel_port if port is None else port), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._server_thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                               name="wsdiag-trace-channel", daemon=True)
        self._server_thread.start()
        return self.channel_address  # type: ignore[return-value]

    def stop_channel(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def _channel_answer(self, path: str, authorization: str | None) -> tuple[int, dict[str, Any]]:
        expected = ("Bearer " + (self.token or "")).encode("utf-8")
        given = (authorization or "").strip().encode("utf-8", "replace")
        if not self.token or not hmac.compare_digest(given, expected):
            return 401, {"schema": stages.SCHEMA, "error": "unauthorized"}
        m = _TRACE_PATH.match(path.split("?", 1)[0])
        doc = self.get_trace(m.group(1)) if m else None
        if doc is None:
            return 404, {"schema": stages.SCHEMA, "error": "unknown probe id"}
        return 200, doc


def _handler_for(ext: WsdiagTrace):
    from http.server import BaseHTTPRequestHandler

    class TraceHandler(BaseHTTPRequestHandler):
        server_version = "wsdiag-trace"
        timeout = 5

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            status, doc = ext._channel_answer(self.path, self.headers.get("Authorization"))
            body = json.dumps(doc, default=str).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            if status == 401:
                self.send_header("WWW-Authenticate", 'Bearer realm="wsdiag-trace"')
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args) -> None:  # quiet: the app's log is not ours
            pass

    return TraceHandler


def _exit(tr: _Trace, stage: str, start: float, **fields: Any) -> None:
    try:
        tr.add(stage, ms=round((time.perf_counter() - start) * 1000.0, 3), socket_closed=tr.socket_closed(), **fields)
    except Exception:
        log.debug("wsdiag: could not record %s", stage, exc_info=True)


def _wrap_hook(f, key):
    """Wrap one before_request hook: same return value, same exception, plus two events."""
    scope = "app" if key is None else "blueprint"
    name, qualname, module = _names(f)
    ident = {"hook": qualname, "name": name, "module": module, "scope": scope, "blueprint": key}

    def enter(tr):
        try:
            tr.add("hook_enter", **ident)
        except Exception:
            log.debug("wsdiag: could not record a hook", exc_info=True)
        return time.perf_counter()

    if inspect.iscoroutinefunction(f):
        @functools.wraps(f)
        async def hook(*args, **kwargs):
            tr = _current.get()
            if tr is None:
                return await f(*args, **kwargs)
            start = enter(tr)
            try:
                rv = await f(*args, **kwargs)
            except BaseException as exc:
                _exit(tr, "hook_exit", start, outcome="raised", exception=type(exc).__name__, **ident)
                raise
            _exit(tr, "hook_exit", start, outcome="none" if rv is None else "response", exception=None, **ident)
            return rv
    else:
        @functools.wraps(f)
        def hook(*args, **kwargs):
            tr = _current.get()
            if tr is None:
                return f(*args, **kwargs)
            start = enter(tr)
            try:
                rv = f(*args, **kwargs)
            except BaseException as exc:
                _exit(tr, "hook_exit", start, outcome="raised", exception=type(exc).__name__, **ident)
                raise
            _exit(tr, "hook_exit", start, outcome="none" if rv is None else "response", exception=None, **ident)
            return rv

    setattr(hook, _MARK, True)
    return hook


def _blueprint_of(endpoint: str | None) -> str | None:
    if endpoint and "." in endpoint:
        return endpoint.rpartition(".")[0]
    return None


def _blueprint_hooks(app, endpoint: str | None) -> list[str]:
    """Hooks registered for the blueprint (and its parents) of ``endpoint``, as ``bp:name``."""
    bp = _blueprint_of(endpoint)
    out: list[str] = []
    while bp:
        for f in app.before_request_funcs.get(bp, ()) or ():
            out.append(f"{bp}:{_names(f)[0]}")
        bp = bp.rpartition(".")[0] if "." in bp else None
    return out


@functools.lru_cache(maxsize=None)
def _version(dist: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return None

# The client side (fetch_trace) lives in wsdiag.net.traceclient: it needs no Flask.
from wsdiag.net.traceclient import fetch_trace, fetch_trace_document  # noqa: E402,F401  (re-exported)
