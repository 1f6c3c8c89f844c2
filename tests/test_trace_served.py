"""Fixture apps served by start_app under real gevent-websocket: the stage path each upgrade takes.

The apps run in child processes on 127.0.0.1:0, instrumented by the appserver; the client is
a raw socket sending ``X-Wsdiag-Probe``; the trace comes back over the loopback channel.
``WSDIAG_TRACE_PYTHON=/path/to/venv/bin/python`` runs the children under another Flask /
Werkzeug install (the expectations follow its Werkzeug release, as in tests/matrix/FACTS.md).
"""

from __future__ import annotations

import base64
import http.client
import os
import re
import socket
import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from wsdiag.flaskapp.appserver import AppStartError, parse_app_spec, start_app
from wsdiag.flaskapp.trace import new_probe_id
from wsdiag.core.stages import StagePath, render_path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = os.environ.get("WSDIAG_TRACE_PYTHON") or sys.executable
pytestmark = pytest.mark.timeout(60)

SPECS = {
    "seed_route": "fixtures.trace.seed_route:app",
    "seed_hook": "fixtures.trace.seed_hook",
    "seed_fixed": "fixtures.trace.seed_fixed:app",
    "blueprint": "fixtures.trace.blueprint:app",
    "missing_route": "fixtures.trace.missing_route",
    "view_returns": "fixtures.trace.view_returns:app",
    "view_raises": "fixtures.trace.view_raises:app",
    "routing_errors": "fixtures.trace.routing_errors:app",
    "factory": "fixtures.trace.factory:create_app('testing')",
}


def upgrade(port: int, path: str, probe_id: str, connection: str = "Upgrade", timeout: float = 5.0):
    """Raw handshake with the probe header; after a 101 send a close frame and read to EOF."""
    s = socket.create_connection(("127.0.0.1", port), timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: {connection}\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
               f"X-Wsdiag-Probe: {probe_id}\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    status = int(head.split()[1]) if head else None
    if status == 101:
        mask, payload = os.urandom(4), struct.pack("!H", 1000)
        s.sendall(bytes([0x88, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            rest += chunk
    except OSError:
        pass
    s.close()
    return status, rest


@pytest.fixture(scope="module")
def apps():
    """Every fixture app, started concurrently once for the module."""
    with ThreadPoolExecutor(len(SPECS)) as pool:
        futures = {name: pool.submit(start_app, spec, cwd=str(ROOT), python=PYTHON) for name, spec in SPECS.items()}
        started = {}
        errors = []
        for name, fut in futures.items():
            try:
                started[name] = fut.result()
            except Exception as exc:  # keep going so every child gets stopped
                errors.append(f"{name}: {exc}")
    try:
        if errors:
            pytest.fail("; ".join(errors))
        yield started
    finally:
        for app in started.values():
            app.stop()


def werkzeug_major(apps) -> int:
    return int(str(apps["seed_fixed"].versions["werkzeug"]).split(".")[0])


def path_of(app, path: str, connection: str = "Upgrade") -> tuple[StagePath, bytes]:
    pid = new_probe_id()
    status, after = upgrade(app.port, path, pid, connection)
    assert status == 101, f"{path}: expected 101, got {status}"
    events = app.fetch_trace(pid, timeout=2.0)
    assert events, f"no trace for {path}"
    return StagePath.from_events(events), after


def plain(rendered: str) -> str:
    return re.sub(r"\d+\.\d ms", "N ms", re.sub(r"(ws|http)://127\.0\.0\.1:\d+", r"\1://HOST", rendered))


# Werkzeug >= 2.0 with `Connection: Upgrade` (every browser): the path each fixture must take.
MODERN = {
    ("seed_route", "/ws"): "before_request(app:check_auth) ✓ → routing ✗ WebsocketMismatch (400, discarded by gevent-websocket) → view never ran",
    ("seed_hook", "/ws"): "before_request(app:serve_socket) served the socket (workaround) → routing ✗ WebsocketMismatch (not raised: before_request answered first) → view never ran",
    ("seed_fixed", "/ws"): "before_request ✓ → routing ✓ /ws → view ws served the socket for N ms",
    ("blueprint", "/api/ws"): "before_request(app:log_request) ✓ → routing ✗ WebsocketMismatch (400, discarded by gevent-websocket) → view never ran; skipped: blueprint before_request api:require_token",
    ("blueprint", "/api/live"): "before_request(app:log_request, api:require_token) ✓ → routing ✓ /api/live → view live served the socket for N ms",
    ("missing_route", "/ws"): "before_request ✓ → routing ✗ NotFound (404, discarded by gevent-websocket) → view never ran",
    ("view_returns", "/ws"): "before_request ✓ → routing ✓ /ws → view ws returned after N ms",
    ("view_raises", "/ws"): "before_request ✓ → routing ✓ /ws → view ws raised KeyError after N ms (500, discarded by gevent-websocket)",
    ("routing_errors", "/slash"): "before_request(app:require_token) ✓ → routing ✗ RequestRedirect to ws://HOST/slash/ (308, discarded by gevent-websocket) → view never ran",
    ("routing_errors", "/post-only"): "before_request(app:require_token) ✓ → routing ✗ MethodNotAllowed (405, discarded by gevent-websocket) → view never ran",
    ("routing_errors", "/private"): "before_request(app:require_token) answered (401, discarded by gevent-websocket) → routing ✓ /private → view never ran",
    ("factory", "/chat/lobby/ws"): "before_request ✓ → routing ✓ /chat/<room>/ws → view room_socket served the socket for N ms",
}
# Werkzeug 1.0.1 never routes an upgrade as ws:// (FACTS.md): where it differs.
WERKZEUG_1 = {**MODERN, **{
    ("seed_route", "/ws"): "before_request(app:check_auth) ✓ → routing ✓ /ws → view ws served the socket for N ms",
    ("seed_hook", "/ws"): "before_request(app:serve_socket) served the socket (workaround) → routing ✓ /ws → view never ran",
    ("seed_fixed", "/ws"): "before_request ✓ → routing ✗ WebsocketMismatch (400, discarded by gevent-websocket) → view never ran",
    ("blueprint", "/api/ws"): "before_request(app:log_request, api:require_token) ✓ → routing ✓ /api/ws → view ws served the socket for N ms",
    ("blueprint", "/api/live"): "before_request(app:log_request) ✓ → routing ✗ WebsocketMismatch (400, discarded by gevent-websocket) → view never ran; skipped: blueprint before_request api:require_token",
    ("view_returns", "/ws"): "before_request ✓ → routing ✗ WebsocketMismatch (400, discarded by gevent-websocket) → view never ran",
    ("view_raises", "/ws"): "before_request ✓ → routing ✗ WebsocketMismatch (400, discarded by gevent-websocket) → view never ran",
    ("routing_errors", "/slash"): "before_request(app:require_token) ✓ → routing ✗ RequestRedirect to http://HOST/slash/ (308, discarded by gevent-websocket) → view never ran",
    ("routing_errors", "/private"): "before_request(app:require_token) answered (401, discarded by gevent-websocket) → routing ✗ WebsocketMismatch (not raised: before_request answered first) → view never ran",
    ("factory", "/chat/lobby/ws"): "before_request ✓ → routing ✗ WebsocketMismatch (400, discarded by gevent-websocket) → view never ran",
}}


@pytest.mark.parametrize("fixture, path", list(MODERN))
def test_stage_path(apps, fixture, path):
    """Each fixture's upgrade takes exactly the expected stage path (per Werkzeug release)."""
    expected = (WERKZEUG_1 if werkzeug_major(apps) < 2 else MODERN)[(fixture, path)]
    p, _ = path_of(apps[fixture], path)
    assert plain(render_path(p)) == expected


def test_seed_route_facts(apps):
    """Seed route: app hook ran, WebsocketMismatch 400 hidden behind the 101, the view never ran."""
    if werkzeug_major(apps) < 2:
        pytest.skip("Werkzeug 1 routes the plain rule to the view")
    p, after = path_of(apps["seed_route"], "/ws")
    assert after == b"\x88\x00"  # the empty close frame gevent-websocket sends (FACTS.md)
    assert (p.reached, p.routing_exception, p.hidden_status, p.hooks_run, p.view_ran, p.detected_websocket) == (
        "routing", "WebsocketMismatch", 400, ["app:check_auth"], False, True)


def test_seed_hook_facts(apps):
    """Seed hook: the hook served the socket; the view never ran."""
    p, _ = path_of(apps["seed_hook"], "/ws")
    assert (p.reached, p.served_by, p.view_ran) == ("before_request", "hook:app:serve_socket", False)


def test_seed_fixed_facts(apps):
    """Seed fixed: the view was reached and served the socket."""
    if werkzeug_major(apps) < 2:
        pytest.skip("Werkzeug 1 never matches websocket=True rules")
    p, _ = path_of(apps["seed_fixed"], "/ws")
    assert (p.reached, p.served_by, p.rule, p.hidden_status) == ("view", "view:ws", "/ws", 200)


def test_blueprint_hook_not_run_on_routing_failure(apps):
    """The blueprint's before_request does not run when routing fails, but does when it matches."""
    if werkzeug_major(apps) < 2:
        pytest.skip("on Werkzeug 1 the failing rule is /api/live")
    failed, _ = path_of(apps["blueprint"], "/api/ws")
    ok, _ = path_of(apps["blueprint"], "/api/live")
    assert failed.hooks_run == ["app:log_request"] and failed.skipped_blueprint_hooks == ["api:require_token"]
    assert ok.hooks_run == ["app:log_request", "api:require_token"] and ok.view_ran


def test_firefox_legacy_connection_header(apps):
    """`Connection: keep-alive, Upgrade` is routed like `Upgrade` from Werkzeug 2.0.2 on."""
    if werkzeug_major(apps) < 2:
        pytest.skip("release-specific")
    p, _ = path_of(apps["seed_route"], "/ws", connection="keep-alive, Upgrade")
    assert p.detected_websocket in (True, False)  # 2.0.0/2.0.1 route it as http (FACTS.md)
    assert p.routing_exception == ("WebsocketMismatch" if p.detected_websocket else None)


def test_hidden_400_warning_in_the_app_log(apps):
    """The instrumented app logs the hidden WebsocketMismatch as a warning, with the fix."""
    if werkzeug_major(apps) < 2:
        pytest.skip("no mismatch on Werkzeug 1 for this rule")
    app = apps["seed_route"]
    path_of(app, "/ws")
    deadline = time.monotonic() + 3
    wanted = ("wsdiag: GET /ws upgraded by gevent-websocket, but Flask answered 400 (WebsocketMismatch: the route "
              "lacks websocket=True) — the client saw 101 then close. Fix: @app.route('/ws', websocket=True)")
    while time.monotonic() < deadline and wanted not in app.log_tail(500):
        time.sleep(0.05)
    assert wanted in app.log_tail(500)


def test_plain_http_still_served(apps):
    """Plain requests pass through the instrumented app untouched (factory built with an argument)."""
    app = apps["factory"]
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=5)
    conn.request("GET", "/")
    r = conn.getresponse()
    assert (r.status, r.read()) == (200, b"config=testing")
    conn.close()


def test_routes_found(apps):
    """Candidate WebSocket routes: websocket=True rules, views reading wsgi.websocket, socket hooks."""
    by_rule = {r["rule"]: r for r in apps["blueprint"].routes}
    assert by_rule["/api/ws"]["reads_wsgi_websocket"] and not by_rule["/api/ws"]["websocket"]
    assert by_rule["/api/live"]["websocket"] and by_rule["/api/live"]["blueprint"] == "api"
    assert {"rule", "endpoint", "websocket", "methods", "blueprint", "reads_wsgi_websocket", "example_path"} <= set(by_rule["/api/ws"])
    assert apps["factory"].routes[0]["example_path"] == "/chat/x/ws"
    assert any("serve_socket" in n for n in apps["seed_hook"].notes)
    assert apps["seed_hook"].routes[0]["rule"] == "/ws"


def test_channel_is_separate_and_loopback(apps):
    """The trace channel has its own loopback port and refuses requests without the token."""
    app = apps["seed_fixed"]
    assert app.trace_url.startswith("http://127.0.0.1:") and not app.trace_url.endswith(f":{app.port}")
    port = int(app.trace_url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/trace/abcd")
    assert conn.getresponse().status == 401
    conn.close()


# -- starting apps that cannot start --------------------------------------------------------

@pytest.mark.parametrize("spec, message", [
    ("fixtures.trace.import_fails:app",
     "importing 'fixtures.trace.import_fails' raised ModuleNotFoundError: No module named "
     "'wsdiag_fixture_missing_dependency' (fixtures/trace/import_fails.py:5)"),
    ("fixtures.trace.factory_raises:create_app()",
     "create_app() in 'fixtures.trace.factory_raises' raised RuntimeError: WSDIAG_FIXTURE_DATABASE_URL is not set "
     "(fixtures/trace/factory_raises.py:11)"),
    ("fixtures.trace.no_such_module", "could not import 'fixtures.trace.no_such_module': ModuleNotFoundError: "
     "No module named 'fixtures.trace.no_such_module'"),
    ("fixtures.trace.seed_route:nope", "'fixtures.trace.seed_route' has no attribute 'nope'"),
    ("fixtures.trace.view_raises:ROOMS", "fixtures.trace.view_raises:ROOMS is a dict, not a Flask app"),
    ("fixtures.trace.seed_route:app(", "bad app spec 'fixtures.trace.seed_route:app(': 'app(' is not a name or a call"),
    ("fixtures.trace.factory:create_app(os.environ)",
     "bad app spec 'fixtures.trace.factory:create_app(os.environ)': factory arguments must be literals"),
])
def test_app_start_errors(spec, message):
    """Each failure to start is one AppStartError line: the exception type, message and place."""
    with pytest.raises(AppStartError) as info:
        start_app(spec, cwd=str(ROOT), python=PYTHON, timeout=20)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_app_that_never_gets_ready(tmp_path):
    """An app stuck at import: a bounded wait, then one line (and the child is gone)."""
    (tmp_path / "stuck.py").write_text("import time\ntime.sleep(60)\n")
    t0 = time.monotonic()
    with pytest.raises(AppStartError, match=r"^the app was not ready within 1\.5 s$"):
        start_app("stuck:app", cwd=str(tmp_path), python=PYTHON, timeout=1.5)
    assert time.monotonic() - t0 < 10


def test_app_that_crashes(tmp_path):
    """An app that kills its process at import: reported as an exit, not a traceback."""
    (tmp_path / "crash.py").write_text("import os\nos._exit(7)\n")
    with pytest.raises(AppStartError, match=r"^the app exited before it was ready: exited with status 7$"):
        start_app("crash:app", cwd=str(tmp_path), python=PYTHON)


def test_flask_app_env_fallback():
    """No spec: FLASK_APP names the app, as with `flask run`."""
    app = start_app(None, cwd=str(ROOT), python=PYTHON, env={"FLASK_APP": "fixtures.trace.seed_fixed"})
    try:
        assert [r["rule"] for r in app.routes] == ["/ws"]
    finally:
        app.stop()


def test_path_hint_listed_first():
    """A --path hint is resolved against the url map and listed first."""
    app = start_app("fixtures.trace.missing_route", cwd=str(ROOT), python=PYTHON, path_hint="/socket")
    try:
        first = app.routes[0]
        assert (first["example_path"], first["rule"], first["reason"]) == ("/socket", "/socket", "path hint")
    finally:
        app.stop()


def test_stop_ends_the_child_and_parent_loss_ends_it_too():
    """stop() ends the child; a child whose parent vanished (its lifeline closed) ends itself."""
    app = start_app("fixtures.trace.seed_fixed", cwd=str(ROOT), python=PYTHON)
    os.close(app.proc.lifeline)  # what the OS does when the parent dies
    app.proc.lifeline = None
    try:
        app.proc.wait(timeout=5)
    finally:
        app.stop()
    assert app.proc.poll() is not None


def test_spec_parsing():
    """Specs parse like flask --app: module, attribute, factory call with literal arguments."""
    s = parse_app_spec("pkg.mod:create_app('prod', debug=True)")
    assert (s.target, s.name, s.call, s.args, s.kwargs) == ("pkg.mod", "create_app", True, ("prod",), {"debug": True})
    assert parse_app_spec("pkg/app.py").target == "pkg/app.py" and parse_app_spec("m:app").name == "app"
    assert parse_app_spec(r"C:\apps\x.py:app").target == r"C:\apps\x.py"


def test_gunicorn_worker():
    """Under gunicorn with GeventWebSocketWorker the same hidden 400 is traced (if gunicorn is installed)."""
    pytest.importorskip("gunicorn")
    app = start_app("fixtures.trace.seed_route:app", cwd=str(ROOT), gunicorn=True)
    try:
        assert "GeventWebSocketWorker" in app.server
        p, _ = path_of(app, "/ws")
        assert (p.routing_exception, p.hidden_status) == ("WebsocketMismatch", 400)
    finally:
        app.stop()
