"""Behind a real nginx: wsdiag names the proxy as the cause in nginx's two classic misconfigurations."""

from __future__ import annotations

import os

import pytest

from fixtures.nginx import NginxProxy, nginx_binary
from wsdiag.core.findings import Verdict
from wsdiag.net.probe import ProbeOptions, probe
from wsdiag.core.profiles import resolve
from wsdiag.net.transport import Settings

pytestmark = [pytest.mark.nginx, pytest.mark.timeout(60)]

if nginx_binary() is None:
    if os.environ.get("WSDIAG_REQUIRE_NGINX"):
        raise RuntimeError("nginx is required (WSDIAG_REQUIRE_NGINX=1) but not installed")
    pytest.skip("nginx is not installed", allow_module_level=True)


def run(url):
    opts = ProbeOptions(resolve(["default"]), Settings(timeout=5, watch=1, use_env_proxy=False))
    return probe([url], opts)[0]


@pytest.mark.parametrize("app", ["seed_fixed", "seed_route"])
def test_upgrade_headers_not_forwarded(serve_app, app):
    """A plain proxy_pass drops Upgrade/Connection: the app answers the upgrade like a plain GET (WS703)."""
    backend = serve_app(f"fixtures.apps.{app}")
    with NginxProxy("no-upgrade", backend.port) as proxy:
        report = run(proxy.url("/ws"))
    assert all(r.status != 101 for r in report.results)
    assert report.causes[0].code == "WS703"
    assert not report.ok


def test_http10_upstream(serve_app):
    """Upgrade forwarded without proxy_http_version 1.1: gevent-websocket's 402, the proxy named (WS704)."""
    backend = serve_app("fixtures.apps.seed_fixed")
    with NginxProxy("http10", backend.port) as proxy:
        report = run(proxy.url("/ws"))
    assert {r.status for r in report.results} == {402}
    assert [f.code for f in report.causes] == ["WS704"]


def test_correct_configuration_passes(serve_app):
    backend = serve_app("fixtures.apps.seed_fixed")
    with NginxProxy("correct", backend.port) as proxy:
        report = run(proxy.url("/ws"))
    assert {r.verdict for r in report.results} == {Verdict.SERVICED}
    assert report.ok


def test_hidden_mismatch_still_found_through_a_correct_proxy(serve_app):
    """Through a correct nginx the app-level cause (WS601) is still the leading one."""
    backend = serve_app("fixtures.apps.seed_route")
    with NginxProxy("correct", backend.port) as proxy:
        report = run(proxy.url("/ws"))
    assert {r.verdict for r in report.results} == {Verdict.ABANDONED}
    assert report.causes[0].code == "WS601"
