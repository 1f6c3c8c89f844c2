"""FAILURES.md cases where a real nginx in front is the cause (marker ``nginx``).

Each test starts a real backend from fixtures/failures/stack.py and a real nginx from
fixtures/nginx.py, and asserts the leading cause, its confidence and its fix, plus the stack
wsdiag names (nginx in front, gevent-websocket behind when its tells show).
"""

from __future__ import annotations

import os

import pytest

from fixtures.nginx import NginxProxy, nginx_binary
from tests import test_failures as tf
from tests.test_failures import lead, run

stack = tf.stack  # the session fixture that starts the backends

pytestmark = [pytest.mark.nginx, pytest.mark.timeout(90)]

if nginx_binary() is None:
    if os.environ.get("WSDIAG_REQUIRE_NGINX"):
        raise RuntimeError("nginx is required (WSDIAG_REQUIRE_NGINX=1) but not installed")
    pytest.skip("nginx is not installed", allow_module_level=True)


def layers(report) -> dict:
    f = next((f for f in report.facts if f.code == "WS720"), None)
    return f.evidence["layers"] if f else {}


def test_fm01_nginx_without_proxy_http_version(stack):
    """nginx forwards the upgrade as HTTP/1.0: gevent-websocket's 402; WS704 likely, fix proxy_http_version."""
    backend = stack("gws", "fixtures.failures.gws_echo")
    with NginxProxy("http10", backend.port) as proxy:
        report = run(proxy.url("/ws"))
    f = lead(report)
    assert (f.code, f.confidence) == ("WS704", "likely")
    assert "proxy_http_version 1.1" in f.info.fix
    assert layers(report).get("proxy") == "nginx"
    assert layers(report).get("websocket") == "gevent-websocket"
    assert "WS702" not in [c.code for c in report.causes]


@pytest.mark.parametrize("kind,header", [("drops-version", "Sec-WebSocket-Version"), ("drops-key", "Sec-WebSocket-Key")])
def test_fm02_fm03_proxy_that_drops_a_sec_websocket_header(stack, kind, header):
    """The client sent the header, nginx cleared it: gevent-websocket's own refusal, the intermediary named (WS220)."""
    backend = stack("gws", "fixtures.failures.gws_echo")
    with NginxProxy(kind, backend.port) as proxy:
        report = run(proxy.url("/ws"), ["minimal", "chrome"])
    f = lead(report)
    assert (f.code, f.confidence) == ("WS220", "likely")
    assert header in f.summary and "an intermediary changed or dropped it" in f.summary
    assert "WebSocketHandler" not in f.info.fix
    assert layers(report).get("proxy") == "nginx"


@pytest.mark.parametrize("module", ["fixtures.failures.gws_echo", "fixtures.apps.seed_route"])
def test_fm07_nginx_strips_upgrade(stack, module):
    """A plain proxy_pass: the app answers the upgrade like a plain GET; WS703 likely, nginx named."""
    backend = stack("gws", module)
    with NginxProxy("no-upgrade", backend.port) as proxy:
        report = run(proxy.url("/ws"))
    f = lead(report)
    assert (f.code, f.confidence) == ("WS703", "likely")
    assert "Upgrade" in f.info.fix
    assert layers(report).get("proxy") == "nginx"
    assert f.evidence.get("decide_with")  # 702 vs 703 is not decided from outside


def test_fm08_short_proxy_read_timeout_ends_idle_sessions(stack):
    """proxy_read_timeout 2s: the idle session ends at ~2 s with no close frame, the pinged one survives (WS722)."""
    backend = stack("gws", "fixtures.failures.gws_echo")
    with NginxProxy("correct", backend.port, read_timeout="2s") as proxy:
        report = run(proxy.url("/ws"), ["minimal"], hold=4.0)
    f = next(c for c in report.causes if c.code == "WS722")
    assert f.confidence == "likely"
    assert 1.7 <= f.evidence["seconds"] <= 2.5
    assert f.evidence["ended"] in ("eof", "reset")
    assert "nginx" in f.evidence["by"]
    assert f.evidence["pings_keep_alive"] is True
    assert "ping" in f.info.fix


def test_fm08_correct_proxy_and_hold_shorter_than_timeout_survives(stack):
    backend = stack("gws", "fixtures.failures.gws_echo")
    with NginxProxy("correct", backend.port, read_timeout="10s") as proxy:
        report = run(proxy.url("/ws"), ["minimal"], hold=1.5)
    assert "WS723" in [f.code for f in report.facts]
    assert not [c for c in report.causes if c.code == "WS722"]


def test_fm18_trusted_hosts_behind_nginx_without_host_forwarding(stack):
    """nginx sends Host: 127.0.0.1:<upstream>; TRUSTED_HOSTS refuses it (WS223), visible on the dev server."""
    backend = stack("werkzeug", "fixtures.failures.trusted_hosts")
    with NginxProxy("correct", backend.port) as proxy:
        report = run(proxy.url("/ws"), ["minimal", "chrome"])
    f = lead(report)
    assert (f.code, f.confidence) == ("WS223", "likely")
    assert layers(report).get("proxy") == "nginx"


def test_core_case_through_a_correct_nginx_names_both_layers(stack):
    backend = stack("gws", "fixtures.apps.seed_route")
    with NginxProxy("correct", backend.port) as proxy:
        report = run(proxy.url("/ws"))
    f = lead(report)
    assert (f.code, f.confidence) == ("WS601", "likely")
    assert layers(report).get("proxy") == "nginx"


def test_fm09_tls_terminated_at_nginx_without_proxyfix(stack, tls_material):
    """wss:// to nginx, plain HTTP upstream: the app's 308 Location says ws:// (WS227 leads, then WS224)."""
    from wsdiag.core.profiles import resolve
    from wsdiag.net.probe import ProbeOptions, probe
    from wsdiag.net.transport import Settings

    backend = stack("werkzeug", "fixtures.failures.sock_slash")
    with NginxProxy("correct", backend.port, tls=(tls_material["chain"], tls_material["key"])) as proxy:
        url = proxy.url("/ws")
        assert url.startswith("wss://")
        opts = ProbeOptions(resolve(["minimal", "chrome"]), Settings(timeout=5, watch=1, use_env_proxy=False, cacert=tls_material["ca"]))
        report = probe([url], opts)[0]
    f = lead(report)
    assert (f.code, f.confidence) == ("WS227", "likely")
    assert f.evidence["location"].startswith("ws://")
    assert "ProxyFix" in f.info.fix
    assert "WS224" in [c.code for c in report.causes]
