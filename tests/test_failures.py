"""FAILURES.md sections A-D against real servers: the leading cause, its confidence and its fix.

Every server here is real (gevent-websocket, gevent pywsgi, Werkzeug's dev server, gunicorn)
and started from ``fixtures/failures/stack.py`` on 127.0.0.1:0. Where a client or an
intermediary is the cause, the test sends the exact request it would forward (a profile as
data); the nginx-backed reproductions are in tests/test_failures_nginx.py. The server-stack
tells of ``wsdiag.core.fingerprint`` are checked against the same servers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from wsdiag.core.findings import Verdict
from wsdiag.core.profiles import PROFILES, Profile, resolve
from wsdiag.net.probe import ProbeOptions, probe
from wsdiag.net.transport import Settings
from wsdiag.proc import READY, OutputTail, wait_ready

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parent.parent


class Stack:
    """A server child in its own process group; ``stop`` ends the whole group at once."""

    def __init__(self, proc, host, port):
        self.proc, self.host, self.port = proc, host, port
        self.tail = OutputTail(proc)

    def url(self, path: str = "/ws") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # test servers: no graceful shutdown needed
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self.tail.join(timeout=2)


def start_stack(stack: str, module: str, args: tuple[str, ...] = (), pythonpath: tuple[str, ...] = (),
                python: str | None = None) -> Stack:
    """``pythonpath``: extra import directories for the server (a package outside the test env);
    ``python``: another environment's interpreter (a matrix virtualenv's)."""
    cmd = [python or sys.executable, "-m", "fixtures.failures.stack", stack, module, *args]
    if stack == "wsproto":
        cmd = [sys.executable, "-m", "fixtures.stacks.serve_stack", "wsproto"]
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=os.pathsep.join((str(ROOT), *pythonpath)))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        host, port = wait_ready(proc, READY, 30)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        raise
    return Stack(proc, host, port)


@pytest.fixture(scope="session")
def stack():
    """Factory: stack('gws', 'fixtures.failures.gws_echo') -> a started server (cached)."""
    started: dict[tuple, Stack] = {}

    def get(kind: str, module: str = "", args: tuple[str, ...] = ()) -> Stack:
        if (kind, module, args) not in started:
            started[(kind, module, args)] = start_stack(kind, module, args)
        return started[(kind, module, args)]

    yield get
    for s in started.values():
        s.stop()


def run(url: str, profiles=("default",), **kw):
    chosen = [p for p in profiles if isinstance(p, Profile)]
    names = [p for p in profiles if isinstance(p, str)]
    opts = ProbeOptions(resolve(names) + chosen if names else chosen,
                        Settings(timeout=5, watch=1, use_env_proxy=False), **kw)
    return probe([url], opts)[0]


def lead(report):
    assert report.causes, "no cause"
    return report.causes[0]


def stack_of(report) -> str:
    f = next(f for f in report.facts if f.code in ("WS720", "WS721"))
    return f.evidence.get("stack", "") if f.code == "WS720" else ""


def client(name: str, drop: tuple[str, ...] = (), set_: dict | None = None, http_version: str = "HTTP/1.1") -> Profile:
    """A client (or what an intermediary forwards) as data: the minimal handshake, altered."""
    base = PROFILES["minimal"]
    headers = tuple((n, (set_ or {}).get(n, v)) for n, v in base.headers if n not in drop)
    return Profile(name, f"minimal, without {drop}", "test", headers, http_version=http_version)


# -- A. handshake validation inside gevent-websocket --------------------------------------------


def test_fm01_http10_client_gets_gevent_websockets_402(stack):
    """An HTTP/1.0 client: '402 Bad Request', gevent-websocket identified, the cause WS204."""
    report = run(stack("gws", "fixtures.failures.gws_echo").url(), [client("old", http_version="HTTP/1.0")])
    assert {r.status for r in report.results} == {402}
    assert (lead(report).code, lead(report).confidence) == ("WS204", "likely")
    assert "gevent-websocket" in stack_of(report)
    assert "WS702" not in [c.code for c in report.causes]


@pytest.mark.parametrize("drop,set_,expect", [
    (("Sec-WebSocket-Version",), None, "Sec-WebSocket-Version (missing)"),
    ((), {"Sec-WebSocket-Version": "12"}, "Sec-WebSocket-Version (unsupported value)"),
    (("Sec-WebSocket-Key",), None, "Sec-WebSocket-Key (missing or empty)"),
    ((), {"Sec-WebSocket-Key": "YWJj"}, "Sec-WebSocket-Key (not 16 bytes"),
    ((), {"Sec-WebSocket-Key": "abc"}, "Sec-WebSocket-Key (not base64"),
])
def test_fm02_fm03_gevent_websockets_own_refusals_blame_the_client_not_the_server(stack, drop, set_, expect):
    """426/400/500 from gevent-websocket itself: the handler is there, the request was altered (WS220)."""
    report = run(stack("gws", "fixtures.failures.gws_echo").url(), [client("cdn", drop, set_)])
    f = lead(report)
    assert (f.code, f.confidence) == ("WS220", "likely")
    assert expect in f.summary
    assert "the client sent" in f.summary
    codes = [c.code for c in report.causes]
    assert "WS702" not in codes  # never "add WebSocketHandler" to gevent-websocket's own refusal
    assert "WebSocketHandler" not in f.info.fix
    assert "gevent-websocket" in stack_of(report)


@pytest.mark.parametrize("drop", ["Sec-WebSocket-Version", "Sec-WebSocket-Key"])
def test_fm02_flask_sock_answers_500_to_a_missing_header_and_is_not_called_websocket_less(stack, drop):
    """flask-sock (simple-websocket/wsproto) answers 500 when a Sec-WebSocket header is missing: WS220, never WS702."""
    report = run(stack("pywsgi", "fixtures.failures.sock_echo").url(), [client("cdn", (drop,))])
    assert {r.status for r in report.results} == {500}
    f = lead(report)
    assert (f.code, f.confidence) == ("WS220", "likely")
    assert drop in f.summary
    assert "WS702" not in [c.code for c in report.causes]


def test_fm02_missing_version_answer_is_shown_with_its_evidence(stack):
    """The human report shows the status, the headers that matter and the (empty) body."""
    from tests.test_render_report import render_text

    report = run(stack("gws", "fixtures.failures.gws_echo").url(), [client("cdn", ("Sec-WebSocket-Version",))])
    text = render_text(report)
    assert "426 Upgrade Required" in text
    assert "Sec-WebSocket-Version: 13, 8, 7" in text
    assert "Content-Length: 37 (0 received)" in text
    assert "body: (empty)" in text


@pytest.mark.parametrize("kind,limit,server", [("gws", 8192, "gevent pywsgi"), ("gunicorn-gthread", 4094, "gunicorn")])
def test_fm06_request_line_over_the_servers_limit(stack, kind, limit, server):
    """A 9,000-byte token in the query: 414 from the server itself, the limit named (WS221)."""
    module = "fixtures.failures.gws_echo" if kind == "gws" else "fixtures.failures.sock_echo"
    report = run(stack(kind, module).url("/ws?token=" + "a" * 9000), ["minimal", "chrome"])
    f = lead(report)
    assert (f.code, f.confidence) == ("WS221", "likely")
    assert f.evidence["limit"] == limit
    assert f.evidence["length"] > limit
    assert server in stack_of(report)


# -- C. servers without gevent-websocket's handler ---------------------------------------------


@pytest.mark.parametrize("kind,server", [("pywsgi", "gevent pywsgi"), ("werkzeug", "Werkzeug development server"),
                                         ("gunicorn-gthread", "gunicorn")])
def test_fm10_server_without_websocket_handler(stack, kind, server):
    """A gevent-websocket app served without WebSocketHandler: WS702 leads, the server named."""
    report = run(stack(kind, "fixtures.failures.gws_echo").url())
    assert all(r.status != 101 for r in report.results)
    f = lead(report)
    assert (f.code, f.confidence) == ("WS702", "likely")
    assert "WebSocketHandler" in f.info.fix
    assert server in stack_of(report)
    assert "gevent-websocket" not in stack_of(report)


def test_fm14_flask_sock_on_unpatched_gevent_stalls_after_the_first_session(stack):
    """No monkey.patch_all(): the first session is served, then the hub blocks and nothing answers (WS726)."""
    s = start_stack("pywsgi-unpatched", "fixtures.failures.sock_echo")  # not shared: this server is ruined after one probe
    try:
        # One at a time, so the first session is over (and the hub blocked) before the next handshake.
        opts = ProbeOptions(resolve(["minimal", "firefox", "firefox-legacy", "chrome"]), Settings(timeout=1.5, watch=0.5, use_env_proxy=False),
                            concurrency=1, controls=False)
        report = probe([s.url()], opts)[0]
    finally:
        s.stop()
    f = lead(report)
    assert (f.code, f.confidence) == ("WS726", "likely")
    assert "monkey.patch_all()" in f.info.fix
    assert f.evidence["served"] and f.evidence["stalled"]


# -- D. routing and app hooks ------------------------------------------------------------------


def test_fm17_visible_redirect_and_its_working_target(stack):
    """flask-sock rule '/ws/' asked as '/ws': 308, and wsdiag probed the Location: it works (WS224)."""
    s = stack("werkzeug", "fixtures.failures.sock_slash")
    report = run(s.url("/ws"), ["minimal", "chrome"])
    f = lead(report)
    assert (f.code, f.confidence) == ("WS224", "likely")
    assert f.evidence["location"] == s.url("/ws/")
    assert f.evidence["target_verdict"] == "serviced"
    assert "is upgraded and served" in f.summary
    loc = next(c for c in report.controls if c.name == "location")
    assert loc.verdict is Verdict.SERVICED


def test_fm17_hidden_redirect_under_gevent_websocket(stack):
    """Under gevent-websocket the 308 is hidden; the slash variant is served, so WS605 (likely) leads."""
    s = stack("gws", "fixtures.failures.gws_slash")
    report = run(s.url("/ws"))
    assert {r.verdict for r in report.results} == {Verdict.ABANDONED}
    f = lead(report)
    assert (f.code, f.confidence) == ("WS605", "likely")
    assert f.evidence["location"] == s.url("/ws/")
    assert "WS602" not in [c.code for c in report.causes]  # the plain GET's 404 is not the story


@pytest.mark.parametrize("kind,module,code", [("werkzeug", "fixtures.failures.sock_echo", "WS226"),
                                              ("gws", "fixtures.failures.gws_echo", "WS602")])
def test_fm18_extra_trailing_slash_is_a_404_and_the_working_path_is_named(stack, kind, module, code):
    """'/ws/' for a rule '/ws' is a 404 (no redirect that way): visible (WS226) or hidden (WS602)."""
    s = stack(kind, module)
    report = run(s.url("/ws/"), ["minimal", "firefox"])
    f = lead(report)
    assert (f.code, f.confidence) == (code, "likely")
    assert f.evidence["working_url"] == s.url("/ws")
    assert "WS605" not in [c.code for c in report.causes]


@pytest.mark.parametrize("kind", ["werkzeug", "gws"])
def test_fm18_trusted_hosts(stack, kind):
    """Flask 3.1 TRUSTED_HOSTS without the Host clients send: WS223, visible or hidden."""
    report = run(stack(kind, "fixtures.failures.trusted_hosts").url())
    f = lead(report)
    assert (f.code, f.confidence) == ("WS223", "likely")
    assert f.evidence["host"].startswith("127.0.0.1")
    assert "TRUSTED_HOSTS" in f.info.fix
    if kind == "gws":
        assert {r.verdict for r in report.results} == {Verdict.ABANDONED}


def test_fm19_origin_refused_visibly(stack):
    """An app refusing unknown origins with 403 'Origin not allowed': WS222, the Origin sent named."""
    s = stack("werkzeug", "fixtures.failures.origin_check")
    report = run(s.url(), ["minimal", "chrome"])
    f = lead(report)
    assert (f.code, f.confidence) == ("WS222", "likely")
    assert "Origin not allowed" in f.summary
    assert f.evidence["origin"].split(", ") == ["none sent", f"http://127.0.0.1:{s.port}"]


def test_fm19_origin_refused_hidden_by_gevent_websocket(stack):
    """The same app under gevent-websocket: 101 then close; the plain GET's 403 text names WS222."""
    report = run(stack("gws", "fixtures.failures.origin_check_gws").url())
    assert {r.verdict for r in report.results} == {Verdict.ABANDONED}
    f = lead(report)
    assert (f.code, f.confidence) == ("WS222", "likely")


@pytest.mark.parametrize("kind,module", [("gws", "fixtures.failures.gws_echo"), ("pywsgi", "fixtures.failures.sock_echo")])
def test_fm21_plain_get_refused_is_noted_without_failing_a_healthy_route(stack, kind, module):
    """A healthy websocket=True route answers a plain GET with 400: an info note (WS225), report ok."""
    report = run(stack(kind, module).url(), ["minimal"])
    assert {r.verdict for r in report.results} == {Verdict.SERVICED}
    assert "WS225" in [f.code for f in report.facts]
    assert report.causes == []
    assert report.worst is None or report.worst.value != "error"


def test_fm22_view_returns_at_once_says_it_is_undecided_and_names_the_command(stack):
    """101 then close with routing fine: WS603 likely, and the one command that decides (--app)."""
    report = run(stack("gws", "fixtures.apps.view_returns").url())
    f = lead(report)
    assert (f.code, f.confidence) == ("WS603", "likely")
    assert "--app" in f.evidence["decide_with"]


def test_core_case_is_likely_from_outside_and_names_the_deciding_command(stack):
    """The report's own case from outside: WS601 likely, never certain without the trace."""
    report = run(stack("gws", "fixtures.apps.seed_route").url())
    f = lead(report)
    assert (f.code, f.confidence) == ("WS601", "likely")
    assert "--app" in f.evidence["decide_with"]
    assert all(c.confidence != "certain" for c in report.causes)


# -- held sessions (--hold; FM-08 with nginx is in test_failures_nginx.py) -------------------------


def test_hold_survives_on_a_healthy_server(stack):
    report = run(stack("gws", "fixtures.failures.gws_echo").url(), ["minimal"], hold=1.2)
    f = next(f for f in report.facts if f.code == "WS723")
    assert f.confidence == "likely" and f.evidence["pings_keep_alive"] is True
    assert not [c for c in report.causes if c.code.startswith("WS72")]


def test_hold_ended_by_the_app_with_a_close_frame(stack):
    """A view that closes idle peers after 1 s: a close frame, so the endpoint ended it (WS724), not a proxy."""
    report = run(stack("pywsgi", "fixtures.failures.sock_idle_close").url(), ["minimal"], hold=2.5)
    f = next(c for c in report.causes if c.code == "WS724")
    assert f.confidence == "likely"
    assert 0.8 <= f.evidence["seconds"] <= 1.8
    assert f.evidence["close_code"] == 1000


def test_hold_sees_a_worker_timeout_write_http_into_the_stream(stack):
    """gunicorn sync worker, --timeout 2: the worker is killed and writes a 500 into the socket (WS725)."""
    report = run(stack("gunicorn-sync", "fixtures.failures.sock_echo", ("--timeout", "2")).url(), ["minimal"],
                 hold=5, controls=False)
    f = next(c for c in report.causes if c.code == "WS725")
    assert f.confidence == "likely"
    assert f.evidence["line"].startswith("HTTP/1.1 500")
    assert "--threads" in f.info.fix_long


# -- fingerprints (issue 10 item 4): each tell against the real server ------------------------------


@pytest.mark.parametrize("kind,module,expect,absent", [
    ("gws", "fixtures.failures.gws_echo", {"websocket": "gevent-websocket"}, ()),
    ("werkzeug", "fixtures.failures.sock_echo", {"server": "Werkzeug development server", "app": "Flask/Werkzeug",
                                                  "websocket": "wsproto (simple-websocket / flask-sock)"}, ()),
    ("gunicorn-gthread", "fixtures.failures.sock_echo", {"server": "gunicorn", "websocket": "wsproto (simple-websocket / flask-sock)"}, ()),
    ("pywsgi", "fixtures.failures.sock_echo", {"websocket": "wsproto (simple-websocket / flask-sock)"}, ()),
    ("gunicorn-gws", "fixtures.failures.gws_echo", {"websocket": "gevent-websocket"}, ()),
    ("wsproto", "", {"websocket": "wsproto (simple-websocket / flask-sock)"}, ("server",)),
])
def test_server_stack_is_named_from_its_tells(stack, kind, module, expect, absent):
    profiles = ["minimal", "chrome", "http10"]
    report = run(stack(kind, module).url(), profiles)
    fact = next(f for f in report.facts if f.code == "WS720")
    layers = fact.evidence["layers"]
    for role, name in expect.items():
        assert layers.get(role) == name, (layers, fact.evidence["reasons"])
    for role in absent:
        assert role not in layers, layers
    assert fact.evidence["reasons"]
    assert report.causes == []  # a healthy stack: nothing inferred against it


def test_a_101_alone_names_no_stack():
    """Only 101s with the bare header set and no offer of deflate: no tell, the report says so."""
    from wsdiag.core.fingerprint import Answer, identify
    from wsdiag.core.handshake import parse_response_head

    head = parse_response_head(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               b"Sec-WebSocket-Accept: x\r\n\r\n")
    assert not identify([Answer("minimal", head)]).known


def test_unknown_stack_says_so_and_names_the_command(stack):
    """wsproto answers a minimal handshake with a bare 101 and nothing else identifies it."""
    report = run(stack("wsproto").url(), ["minimal"], controls=False)
    fact = next(f for f in report.facts if f.code in ("WS720", "WS721"))
    assert fact.code == "WS721"
    assert "-p all" in fact.evidence["decide_with"]
    # ... and that command does decide: the browser profiles' offer of permessage-deflate is echoed.
    report = run(stack("wsproto").url(), ["all"], controls=False)
    fact = next(f for f in report.facts if f.code in ("WS720", "WS721"))
    assert fact.code == "WS720" and fact.evidence["layers"]["websocket"].startswith("wsproto")


def test_fm11_flask_sock_under_websocket_handler_is_a_double_handshake(stack):
    """FM-11: flask-sock under gunicorn's GeventWebSocketWorker (gevent-websocket's handler) answers the upgrade
    twice; the second 'HTTP/1.1 101' lands in the frame stream. The lead cause says so (WS707),
    never a story about the view, and its fix keeps the app on its own stack."""
    report = run(stack("gunicorn-gws", "fixtures.failures.sock_echo").url(), ["chrome", "minimal"])
    assert {r.status for r in report.results if r.counts} == {101}
    f = lead(report)
    assert (f.code, f.confidence) == ("WS707", "likely")
    assert f.evidence["line"].startswith("HTTP/1.1 101")
    assert not [c for c in report.causes if c.code.startswith("WS6")]
    from wsdiag.core.codes import lookup

    assert "without gevent-websocket's WebSocketHandler" in lookup("WS707").fix


def test_fm11_is_not_claimed_for_a_healthy_flask_sock_server(stack):
    report = run(stack("pywsgi", "fixtures.failures.sock_echo").url(), ["chrome", "minimal"])
    assert "WS707" not in [c.code for c in report.causes]
