"""End to end: wsdiag.net.probe against real Flask apps served by gevent-websocket on loopback."""

from __future__ import annotations

import pytest

from wsdiag.core.findings import Verdict
from wsdiag.net.probe import ProbeOptions, probe
from wsdiag.core.profiles import resolve
from wsdiag.net.transport import Settings

pytestmark = pytest.mark.timeout(60)


def run(url: str, profiles=("default",), **kw):
    opts = ProbeOptions(resolve(list(profiles)), Settings(timeout=5, watch=1.0, use_env_proxy=False), **kw)
    (report,) = probe([url], opts)
    return report


def verdicts(report):
    return {r.profile: r.verdict for r in report.results}


def cause_codes(report):
    return [f.code for f in report.causes]


def test_route_without_websocket_true_is_a_hidden_mismatch(serve_app):
    """Route lacking websocket=True: every client is upgraded then abandoned; WS601 leads."""
    report = run(serve_app("fixtures.apps.seed_route").url("/ws"))
    assert set(verdicts(report).values()) == {Verdict.ABANDONED}
    assert cause_codes(report)[0] == "WS601"
    assert report.causes[0].evidence["plain_get_status"] == 200
    assert not report.ok
    for r in report.results:
        assert r.status == 101
        assert r.exchange.after.first_event_ms < 500  # abandoned at once, not after the window
    assert "WS705" in [f.code for f in report.facts]


def test_before_request_workaround_is_serviced_but_flagged(serve_app):
    """The before_request workaround serves every client, and even an impossible path: WS604."""
    report = run(serve_app("fixtures.apps.seed_hook").url("/ws"))
    assert set(verdicts(report).values()) == {Verdict.SERVICED}
    assert cause_codes(report) == ["WS604"]
    bogus = next(c for c in report.controls if c.name == "no-such-path")
    assert bogus.verdict is Verdict.SERVICED
    assert report.worst.value == "warning"


def test_websocket_true_route_is_ok(serve_app):
    """The fixed route: every default profile is upgraded and serviced, no causes."""
    report = run(serve_app("fixtures.apps.seed_fixed").url("/ws"))
    assert set(verdicts(report).values()) == {Verdict.SERVICED}
    assert report.causes == []
    assert report.ok
    get = next(c for c in report.controls if c.name == "plain-get")
    assert get.status == 400  # Werkzeug refuses plain HTTP on a websocket=True rule


def test_nonexistent_path_is_a_hidden_404(serve_app):
    """A path no rule matches: 101 then close; the plain GET's 404 names WS602."""
    report = run(serve_app("fixtures.apps.seed_fixed").url("/nope"))
    assert set(verdicts(report).values()) == {Verdict.ABANDONED}
    assert cause_codes(report)[0] == "WS602"
    # Black-box evidence: likely at most (issue 10); only the app's trace makes it certain.
    assert report.causes[0].confidence == "likely"


def test_view_that_returns_at_once(serve_app):
    """websocket=True route whose view returns at once: WS603, not a routing problem."""
    report = run(serve_app("fixtures.apps.view_returns").url("/ws"))
    assert set(verdicts(report).values()) == {Verdict.ABANDONED}
    assert cause_codes(report)[0] == "WS603"
    assert "WS601" not in cause_codes(report)


@pytest.mark.parametrize("module", ["fixtures.apps.seed_route", "fixtures.apps.seed_fixed"])
def test_plain_wsgi_server_without_websocket_handler(serve_app, module):
    """gevent WSGIServer without WebSocketHandler never upgrades: WS702 leads, no 101."""
    report = run(serve_app(module, websocket=False).url("/ws"))
    assert all(r.status != 101 for r in report.results)
    assert cause_codes(report)[0] == "WS702"
    assert not report.ok


def test_proxy_simulations_do_not_decide_the_verdict(serve_app):
    """http10 and stripped are evidence: gevent-websocket's 402 shows, yet the fixed app is ok."""
    report = run(serve_app("fixtures.apps.seed_fixed").url("/ws"), profiles=("all",))
    by = {r.profile: r for r in report.results}
    assert by["http10"].status == 402
    assert "WS204" in [f.code for f in by["http10"].findings]
    assert by["stripped"].verdict is Verdict.REFUSED  # a websocket=True rule refuses plain HTTP
    assert report.ok


def test_subprotocol_offered_but_not_selected(serve_app):
    """gevent-websocket never selects a subprotocol for a Flask app: WS305, invalid for browsers."""
    report = run(serve_app("fixtures.apps.seed_fixed").url("/ws"), profiles=("chrome",), subprotocols=("graphql-ws",))
    (r,) = report.results
    assert r.verdict is Verdict.INVALID
    assert [f.code for f in r.findings if f.severity.value == "error"] == ["WS305"]


def test_nothing_listening_is_unreachable_by_phase():
    """A closed port: every profile unreachable in the connect phase, WS102, fast."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # now nothing listens there
    report = run(f"ws://127.0.0.1:{port}/ws")
    for r in report.results:
        assert r.verdict is Verdict.UNREACHABLE
        assert r.phase == "connect"
        assert [f.code for f in r.findings] == ["WS102"]
