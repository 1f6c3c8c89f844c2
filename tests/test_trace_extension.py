"""WsdiagTrace in process: same behaviour as without it, what it records, the channel and its client."""

from __future__ import annotations

import asyncio
import http.client
import inspect
import json
import logging
import socket
import threading

import pytest
from flask import Blueprint, Flask, abort, request

from wsdiag.flaskapp import trace as trace_mod
from wsdiag.flaskapp.trace import WsdiagTrace, fetch_trace, fetch_trace_document, valid_probe_id
from wsdiag.core.stages import SCHEMA, StagePath, render_path

try:
    from importlib.metadata import version as _version
except ImportError:  # pragma: no cover
    _version = None
# Werkzeug 1 never routes an upgrade as ws:// (tests/matrix/FACTS.md): a plain rule is what an
# upgrade reaches there, and a websocket=True rule is what fails.  These keep each test's intent.
WERKZEUG_1 = int(_version("werkzeug").split(".")[0]) < 2
REACH = {} if WERKZEUG_1 else {"websocket": True}  # rules an upgrade reaches on this release
MISMATCH = {"websocket": True} if WERKZEUG_1 else {}  # rules an upgrade fails on (WebsocketMismatch)

pytestmark = pytest.mark.timeout(20)

UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
           "Sec-WebSocket-Version": "13"}


class FakeSocket:
    """Stands in for gevent-websocket's WebSocket: only ``closed`` is read."""

    closed = False


class Boom(Exception):
    pass


def make_app() -> Flask:
    """The same app every time: plain rules, a ws rule, a blueprint, errors, hooks."""
    app = Flask("wsdiag_trace_test")
    app.config["SECRET_KEY"] = "x"
    calls = app.config["CALLS"] = []

    @app.before_request
    def check_auth():
        calls.append("check_auth")
        if request.args.get("deny"):
            return "denied", 401
        return None

    bp = Blueprint("api", __name__, url_prefix="/api")

    @bp.before_request
    def require_token():
        calls.append("require_token")

    @bp.route("/ws")
    def bp_ws():
        return "bp plain"

    @bp.route("/mismatch", **MISMATCH)
    def bp_mismatch():
        return "bp mismatch"

    @app.route("/")
    def index():
        return {"hello": "world", "args": request.args.to_dict()}

    @app.route("/ws")
    def ws():
        return "plain ws rule" if not request.environ.get("wsgi.websocket") else ""

    @app.route("/wsrule", websocket=True)
    def wsrule():
        return "websocket rule"

    @app.route("/slash/")
    def slash():
        return "slash"

    @app.route("/abort")
    def aborted():
        abort(403)

    @app.route("/boom")
    def boom():
        raise Boom("the view failed")

    @app.route("/mismatch", **MISMATCH)
    def mismatch():
        return "mismatch"

    @app.route("/reach", **REACH)
    def reach():
        return "reached"

    @app.route("/wsboom", **REACH)
    def wsboom():
        exc = app.config["RAISED"] = Boom("the view failed")
        raise exc

    @app.route("/form", methods=["POST"])
    def form():
        return f"posted {request.get_data(as_text=True)}", 201, {"X-Custom": "1"}

    app.register_blueprint(bp)
    return app


REQUESTS = [
    ("GET", "/", {}), ("GET", "/?a=1&b=2", {}), ("GET", "/missing", {}), ("POST", "/", {}), ("HEAD", "/", {}),
    ("OPTIONS", "/", {}), ("GET", "/ws", {}), ("GET", "/wsrule", {}), ("GET", "/slash", {}), ("GET", "/abort", {}),
    ("GET", "/boom", {}), ("GET", "/wsboom", {}), ("POST", "/form", {}), ("GET", "/api/ws", {}), ("GET", "/?deny=1", {}),
    ("GET", "/ws", UPGRADE), ("GET", "/wsrule", UPGRADE), ("GET", "/api/ws", UPGRADE), ("GET", "/nope", UPGRADE),
    ("GET", "/wsboom", UPGRADE), ("GET", "/?deny=1", UPGRADE), ("GET", "/reach", UPGRADE), ("GET", "/mismatch", UPGRADE),
    ("GET", "/api/mismatch", UPGRADE), ("GET", "/reach", {}), ("GET", "/mismatch", {}),
]


def answer(app: Flask, method: str, url: str, headers: dict, environ_base: dict | None = None):
    with app.test_client() as c:
        r = c.open(url, method=method, headers=headers, data="x=1" if method == "POST" else None,
                   environ_base=environ_base or {})
        return r.status_code, r.get_data(), sorted((k, v) for k, v in r.headers.items()), list(app.config["CALLS"])


def test_plain_http_unchanged_by_the_extension():
    """Statuses, bodies, headers and hook calls match an uninstrumented copy, before and after tracing."""
    plain, traced = make_app(), make_app()
    WsdiagTrace(traced)
    for method, url, headers in REQUESTS:
        assert answer(traced, method, url, headers) == answer(plain, method, url, headers), (method, url)
    # A traced upgrade wraps hooks and dispatch; plain requests must still be identical.
    answer(traced, "GET", "/ws", dict(UPGRADE, **{"X-Wsdiag-Probe": "aa"}), {"wsgi.websocket": FakeSocket()})
    answer(plain, "GET", "/ws", dict(UPGRADE, **{"X-Wsdiag-Probe": "aa"}), {"wsgi.websocket": FakeSocket()})
    for method, url, headers in REQUESTS:
        assert answer(traced, method, url, headers) == answer(plain, method, url, headers), (method, url)


def test_traced_upgrades_unchanged_by_the_extension():
    """Upgrade requests (with wsgi.websocket) get the same status and body as without the extension."""
    plain, traced = make_app(), make_app()
    WsdiagTrace(traced, log_hidden=False)
    for method, url, headers in REQUESTS:
        env = {"wsgi.websocket": FakeSocket()}
        assert answer(traced, method, url, headers, env) == answer(plain, method, url, headers, env), (method, url)


def test_exceptions_reraised_unchanged():
    """With exceptions propagating, the very same exception object reaches the caller."""
    app = make_app()
    app.config["PROPAGATE_EXCEPTIONS"] = True
    ext = WsdiagTrace(app, log_hidden=False)
    with app.test_client() as c:
        with pytest.raises(Boom) as info:
            c.get("/wsboom", headers=dict(UPGRADE, **{"X-Wsdiag-Probe": "b1"}), environ_base={"wsgi.websocket": FakeSocket()})
    assert info.value is app.config["RAISED"]
    events = ext.get_trace("b1")["events"]
    assert [e["stage"] for e in events][-3:] == ["view_enter", "view_exit", "end"]
    assert events[-2]["outcome"] == "raised" and events[-2]["exception"] == "Boom"
    assert events[-1]["exception"] == "Boom"


def test_hook_exception_reraised_and_recorded():
    """A hook that raises: recorded as raised, and Flask's answer is unchanged (403)."""
    app = Flask("hook_raises")

    @app.before_request
    def gate():
        abort(403)

    @app.route("/ws", websocket=True)
    def ws():
        return ""

    ext = WsdiagTrace(app, log_hidden=False)
    status = app.test_client().get("/ws", headers=dict(UPGRADE, **{"X-Wsdiag-Probe": "c1"}),
                                   environ_base={"wsgi.websocket": FakeSocket()}).status_code
    assert status == 403
    p = StagePath.from_events(ext.get_trace("c1")["events"])
    assert (p.stopping_hook.outcome, p.stopping_hook.exception, p.hidden_status) == ("raised", "Forbidden", 403)
    assert render_path(p).startswith("before_request(app:gate) ✗ raised Forbidden (403, discarded by the server)")


def test_records_the_stages_in_order():
    """A hidden WebsocketMismatch: request, app hook, routing failure, end; the blueprint hook skipped."""
    app = make_app()
    ext = WsdiagTrace(app, log_hidden=False)
    answer(app, "GET", "/api/mismatch", dict(UPGRADE, **{"X-Wsdiag-Probe": "D2"}), {"wsgi.websocket": FakeSocket()})
    doc = ext.get_trace("d2")
    assert doc["schema"] == SCHEMA and doc["complete"] and doc["probe_id"] == "d2"
    stages = [e["stage"] for e in doc["events"]]
    assert stages == ["request", "hook_enter", "hook_exit", "routing", "end"]
    routing = doc["events"][3]
    assert (routing["exception"], routing["code"], routing["dispatched"], routing["other_rule"]) == (
        "WebsocketMismatch", 400, True, "/api/mismatch")
    assert routing["skipped_blueprint_hooks"] == ["api:require_token"]
    assert doc["events"][-1]["status"] == 400 and doc["events"][-1]["discarded"] is True
    times = [e["t_ms"] for e in doc["events"]]
    assert times == sorted(times)
    json.dumps(doc)  # the wire format is JSON


def test_hooks_registered_later_are_wrapped():
    """A hook added after the first traced request shows up in the next trace."""
    app = make_app()
    ext = WsdiagTrace(app, log_hidden=False)
    env = {"wsgi.websocket": FakeSocket()}
    answer(app, "GET", "/reach", dict(UPGRADE, **{"X-Wsdiag-Probe": "e1"}), env)

    def late_hook():
        return None

    app.before_request_funcs.setdefault(None, []).append(late_hook)
    answer(app, "GET", "/reach", dict(UPGRADE, **{"X-Wsdiag-Probe": "e2"}), env)
    assert StagePath.from_events(ext.get_trace("e1")["events"]).hooks_run == ["app:check_auth"]
    assert StagePath.from_events(ext.get_trace("e2")["events"]).hooks_run == ["app:check_auth", "app:late_hook"]
    # wrapped hooks keep their identity for introspection
    wrapped = app.before_request_funcs[None][-1]
    assert wrapped.__name__ == "late_hook" and inspect.unwrap(wrapped) is late_hook


def test_async_hook_stays_a_coroutine_function():
    """An async hook is wrapped by an async wrapper (Flask's ensure_sync still sees a coroutine)."""
    async def ahook():
        return "from async"

    wrapped = trace_mod._wrap_hook(ahook, None)
    assert inspect.iscoroutinefunction(wrapped)
    assert asyncio.run(wrapped()) == "from async"
    tr = trace_mod._Trace({}, None)
    token = trace_mod._current.set(tr)
    try:
        assert asyncio.run(wrapped()) == "from async"
    finally:
        trace_mod._current.reset(token)
    assert [(e["stage"], e.get("outcome")) for e in tr.events] == [("hook_enter", None), ("hook_exit", "response")]


def test_hidden_400_is_logged(caplog):
    """The hidden WebsocketMismatch is logged as a WARNING on wsdiag.trace, with the fix."""
    app = make_app()
    WsdiagTrace(app)
    with caplog.at_level(logging.WARNING, logger="wsdiag.trace"):
        answer(app, "GET", "/mismatch", UPGRADE, {"wsgi.websocket": FakeSocket()})
    records = [r for r in caplog.records if r.name == "wsdiag.trace"]
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    msg = records[0].getMessage()
    if WERKZEUG_1:
        assert "Flask answered 400 (WebsocketMismatch: /mismatch has websocket=True, but Werkzeug did not" in msg
        return
    assert "GET /mismatch upgraded by the server, but Flask answered 400 (WebsocketMismatch: the route lacks websocket=True)" in msg
    assert msg.endswith("Fix: @app.route('/mismatch', websocket=True)")


def test_no_warning_without_wsgi_websocket(caplog):
    """Upgrade headers without a server upgrade (status visible to the client): nothing logged."""
    app = make_app()
    WsdiagTrace(app)
    with caplog.at_level(logging.WARNING, logger="wsdiag.trace"):
        answer(app, "GET", "/mismatch", UPGRADE)
    assert not [r for r in caplog.records if r.name == "wsdiag.trace"]


def test_probe_store_is_bounded_and_ids_validated():
    """Only valid hex ids are kept, at most max_traces of them, newest kept."""
    app = make_app()
    ext = WsdiagTrace(app, max_traces=3, log_hidden=False)
    env = {"wsgi.websocket": FakeSocket()}
    for pid in ["01", "02", "03", "04", "05", "not-hex", "f" * 33]:
        answer(app, "GET", "/reach", dict(UPGRADE, **{"X-Wsdiag-Probe": pid}), env)
    assert [ext.get_trace(p) is not None for p in ["01", "02", "03", "04", "05"]] == [False, False, True, True, True]
    assert valid_probe_id("not-hex") is None and valid_probe_id("f" * 33) is None and valid_probe_id(" AB ") == "ab"
    assert len(ext.recent()) == 7


def test_on_trace_errors_are_swallowed():
    """A failing on_trace callback never changes the answer."""
    app = make_app()

    def explode(doc):
        raise RuntimeError("callback bug")

    WsdiagTrace(app, on_trace=explode, log_hidden=False)
    assert answer(app, "GET", "/reach", UPGRADE, {"wsgi.websocket": FakeSocket()})[0] == 200


def test_double_instrumentation():
    """init_app twice with one extension is a no-op; a second extension is refused."""
    app = make_app()
    ext = WsdiagTrace(app)
    ext.init_app(app)
    with pytest.raises(RuntimeError):
        WsdiagTrace(app)


# -- the channel ----------------------------------------------------------------------------

@pytest.fixture()
def channel_app(monkeypatch):
    monkeypatch.delenv("WSDIAG_TRACE_TOKEN", raising=False)
    app = make_app()
    ext = WsdiagTrace(app, channel=True, token="s3cret-token", log_hidden=False)
    yield app, ext
    ext.stop_channel()


def get(url_base: str, path: str, token: str | None):
    host, port = url_base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token is not None else {})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, json.loads(body)


def test_channel_off_by_default(monkeypatch):
    """Without channel=True or WSDIAG_TRACE_TOKEN no listener is started."""
    monkeypatch.delenv("WSDIAG_TRACE_TOKEN", raising=False)
    ext = WsdiagTrace(make_app())
    assert ext.trace_url is None and ext.channel_address is None and not ext.channel_enabled


def test_channel_enabled_by_env_token(monkeypatch):
    """WSDIAG_TRACE_TOKEN enables the channel and is its token."""
    monkeypatch.setenv("WSDIAG_TRACE_TOKEN", "from-env")
    ext = WsdiagTrace(make_app())
    try:
        assert ext.channel_address is not None and ext.token == "from-env"
    finally:
        ext.stop_channel()


def test_channel_needs_a_token(monkeypatch):
    """channel=True without any token is refused."""
    monkeypatch.delenv("WSDIAG_TRACE_TOKEN", raising=False)
    with pytest.raises(ValueError):
        WsdiagTrace(make_app(), channel=True)


def test_channel_binds_loopback_and_checks_the_token(channel_app):
    """Loopback only; 401 without or with a wrong token, 404 for an unknown id, 200 with the trace."""
    app, ext = channel_app
    host, port = ext.channel_address
    assert host == "127.0.0.1"
    answer(app, "GET", "/ws", dict(UPGRADE, **{"X-Wsdiag-Probe": "abc123"}), {"wsgi.websocket": FakeSocket()})
    base = ext.trace_url
    assert get(base, "/trace/abc123", None)[0] == 401
    assert get(base, "/trace/abc123", "wrong")[0] == 401
    assert get(base, "/trace/abc123", "s3cret-token-and-more")[0] == 401
    assert get(base, "/trace/ffff", "s3cret-token")[0] == 404
    assert get(base, "/nothing", "s3cret-token")[0] == 404
    status, doc = get(base, "/trace/abc123", "s3cret-token")
    assert status == 200 and doc["schema"] == SCHEMA and doc["complete"]
    assert fetch_trace(base, "s3cret-token", "abc123") == doc["events"]
    assert fetch_trace(base, "wrong", "abc123") is None


def test_channel_not_reachable_on_other_addresses(channel_app):
    """The listener is not bound to a non-loopback address of this host."""
    _, ext = channel_app
    _, port = ext.channel_address
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outbound address
            addr = s.getsockname()[0]
        except OSError:
            pytest.skip("no non-loopback address")
    if addr.startswith("127."):
        pytest.skip("no non-loopback address")
    with pytest.raises(OSError):
        socket.create_connection((addr, port), timeout=1).close()


def test_fetch_trace_never_raises_on_network_errors():
    """A closed port, a bad URL or a bad id give None, quickly."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert fetch_trace(f"http://127.0.0.1:{port}", "t", "ab", timeout=0.5) is None
    assert fetch_trace("not a url", "t", "ab") is None
    assert fetch_trace("http://127.0.0.1:1", "t", "not-hex") is None


def test_fetch_trace_polls_until_complete(channel_app):
    """While the view still runs the trace is partial; fetch_trace waits (bounded) for the end."""
    app, ext = channel_app
    release = threading.Event()

    @app.route("/hold", **REACH)
    def hold():
        release.wait(5)
        return ""

    t = threading.Thread(target=answer, args=(app, "GET", "/hold", dict(UPGRADE, **{"X-Wsdiag-Probe": "77"}),
                                              {"wsgi.websocket": FakeSocket()}))
    t.start()
    try:
        partial = fetch_trace_document(ext.trace_url, "s3cret-token", "77", timeout=0.3)
        assert partial is not None and not partial["complete"]
        assert [e["stage"] for e in partial["events"]][-1] == "view_enter"
        threading.Timer(0.2, release.set).start()
        events = fetch_trace(ext.trace_url, "s3cret-token", "77", timeout=3)
        assert events[-1]["stage"] == "end"
    finally:
        release.set()
        t.join(5)
