"""The closing handshake after the service check, against scripted and real servers.

After a served check wsdiag sends close 1000, expects the echo, keeps reading briefly and
reports what follows: no echo (WS432; EOF without an echo is WS436, info), a garbled close
(WS433 for the server's own close; WS437, info, for the echo of ours: gevent-websocket 0.10.1,
FAILURES.md FM-05), an HTTP response written into the stream (WS434, the Werkzeug dev server
with flask-sock, FM-13; WS435 for a 5xx, FM-12).  Healthy real stacks (flask-sock on patched
gevent pywsgi and on gunicorn gthread, a plain wsproto server), whose browser profiles
negotiate permessage-deflate, come out with no error finding, run after run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from fixtures.hostile.frames_and_closing import CASES
from fixtures.stacks import serve_stack
from wsdiag.core.profiles import resolve
from wsdiag.net.probe import ProbeOptions, probe
from wsdiag.net.transport import Settings
from tests.test_deflate import BOUND, run_case

CLOSING_CASES = sorted(n for n in CASES if n.startswith(("close-", "http-")))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", CLOSING_CASES)
def test_scripted_closing_defect_is_named(name):
    scenario, result, elapsed = run_case(name)
    codes = {f.code for f in result.findings}
    significant = {f.code for f in result.findings if f.severity.value != "info"}
    assert result.verdict.value == scenario.expected_verdict, (name, result.verdict, codes)
    assert scenario.expected_codes <= codes, (name, codes)
    assert significant == {c for c in scenario.expected_codes if c not in ("WS436", "WS437")}, (name, significant)
    assert elapsed < BOUND, (name, elapsed)


def test_good_server_closes_cleanly():
    """The scripted good server echoes 1000 and closes TCP: recorded, no finding."""
    from fixtures.hostile.servers import SCENARIOS, ScriptedServer

    with ScriptedServer(SCENARIOS["good"], max_hold=5) as srv:
        (report,) = probe([srv.url()], ProbeOptions(resolve(["minimal"]), Settings(timeout=2, watch=0.8, use_env_proxy=False),
                                                     controls=False))
    (r,) = report.results
    closing = r.exchange.after.closing
    assert closing["echoed"] and closing["echo_code"] == 1000 and closing["then"] == "eof"
    assert not r.findings
    assert r.to_dict()["after_upgrade"]["closing"]["echo_code"] == 1000


@pytest.fixture(scope="module")
def stacks():
    started = {}
    try:
        for name in ("flasksock-pywsgi", "flasksock-gthread", "flasksock-werkzeug", "wsproto", "gws", "gws-close"):
            started[name] = serve_stack.start(name)
        yield started
    finally:
        for child in started.values():
            serve_stack.stop(child)


def _probe_all(child, runs: int = 1):
    opts = ProbeOptions(resolve(["all"]), Settings(timeout=3, watch=1.0, use_env_proxy=False))
    return [probe([child.url("ws")], opts)[0] for _ in range(runs)]


def _errors(report):
    """Error findings that count: causes, facts and counted profiles (not proxy simulations)."""
    found = list(report.causes) + list(report.facts) + [f for r in report.results if r.counts for f in r.findings]
    return sorted({(f.code, f.subject) for f in found if f.severity.value == "error"})


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["flasksock-pywsgi", "flasksock-gthread"])
def test_healthy_flask_sock_is_ok_20_runs(stacks, name):
    """Every profile (browsers negotiate permessage-deflate and get RSV1 replies): no error, 20 runs."""
    for i, report in enumerate(_probe_all(stacks[name], 20)):
        assert _errors(report) == [], (name, i, _errors(report))
        browsers = [r for r in report.results if r.profile in ("chrome", "firefox", "firefox-legacy")]
        assert all(r.verdict.value == "serviced" for r in browsers), (name, i)
        for r in browsers:
            assert r.exchange.after.extensions, (name, r.profile)  # deflate was in force
            closing = r.exchange.after.closing
            # the echo, or (simple-websocket's race on threaded servers) EOF reported as info
            assert closing["echoed"] or closing["then"] == "eof", (name, r.profile, closing)
        warnings = {f.code for x in report.results if x.counts for f in x.findings if f.severity.value == "warning"}
        assert warnings == set(), (name, i, warnings)


def test_healthy_wsproto_is_ok(stacks):
    for report in _probe_all(stacks["wsproto"], 3):
        assert _errors(report) == []


def test_werkzeug_dev_server_trailing_http_is_reported(stacks):
    """FM-13: flask-sock on the dev server writes 'HTTP/1.1 200 OK' + 'Server: Werkzeug' after the session."""
    (report,) = _probe_all(stacks["flasksock-werkzeug"])
    found = [f for f in report.all_findings if f.code == "WS434"]
    assert found, [f.code for f in report.all_findings]
    assert found[0].evidence["line"].startswith("HTTP/1.1 200")
    assert found[0].evidence["server"].startswith("Werkzeug/")
    assert _errors(report) == []


def test_gevent_websocket_garbled_close_echo(stacks):
    """FM-05: gevent-websocket 0.10.1 answers close 1000 'wsdiag' with the reason's repr as the code:
    a tell (info), not a defect of the healthy stack, which stays without warnings or errors."""
    (report,) = _probe_all(stacks["gws"])
    found = [f for f in report.all_findings if f.code == "WS437"]
    assert found, [f.code for f in report.all_findings]
    assert found[0].evidence["close_code"] == int.from_bytes(b"by", "big")  # "bytearray(b'wsdiag')"
    assert found[0].severity.value == "info"
    counted = [f for r in report.results if r.counts for f in r.findings]
    assert not [f.code for f in counted if f.code.startswith("WS4") and f.severity.value != "info"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["flasksock-pywsgi", "flasksock-gthread"])
def test_cli_all_profiles_exit_0(stacks, name):
    """Through the real CLI with -p all: exit 0 and valid JSON naming the deflate agreement."""
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "wsdiag", "probe", "-p", "all", "--format", "json",
                           stacks[name].url("ws")], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
    data = json.loads(proc.stdout)
    text = json.dumps(data)
    assert '"permessage-deflate"' in text and '"closing"' in text
    assert time.monotonic() - start < 20


def test_gevent_websocket_close_4001_is_garbled_every_run(stacks):
    """FM-05's race: an app closing with (4001, 'policy') right after a message; the garbled close
    (28783 'licy') races the pong. Reading on through the closing handshake makes it stable."""
    opts = ProbeOptions(resolve(["chrome", "firefox", "minimal"]), Settings(timeout=3, watch=1.0, use_env_proxy=False),
                        controls=False)
    seen = set()
    for _ in range(10):
        (report,) = probe([stacks["gws-close"].url("ws")], opts)
        for r in report.results:
            codes = {(f.code, f.evidence.get("close_code")) for f in r.findings if f.severity.value != "info"}
            seen.add((r.verdict.value, frozenset(codes)))
    assert seen == {("serviced", frozenset({("WS433", 28783)}))}, seen
