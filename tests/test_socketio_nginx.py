"""Flask-SocketIO behind a real nginx, correctly and wrongly configured (-m socketio; needs nginx).

    WSDIAG_REQUIRE_NGINX=1 python -m pytest tests/test_socketio_nginx.py -m socketio
"""

from __future__ import annotations

import os
import time

import pytest

from fixtures.nginx import NginxProxy, nginx_binary
from fixtures.socketio import start
from wsdiag.net.socketio import SioOptions, socketio_report
from wsdiag.net.transport import Settings

pytestmark = [pytest.mark.socketio, pytest.mark.nginx, pytest.mark.timeout(120)]

if nginx_binary() is None:
    if os.environ.get("WSDIAG_REQUIRE_NGINX"):
        raise RuntimeError("nginx is required (WSDIAG_REQUIRE_NGINX=1) but not installed")
    pytest.skip("nginx is not installed", allow_module_level=True)


@pytest.fixture(scope="module", params=[("run",), ("run", "--async", "gevent")], ids=["threading", "gevent-websocket"])
def server(request):
    s = start(*request.param)
    yield s
    s.stop()


def probe(url):
    return socketio_report(url, Settings(timeout=5, use_env_proxy=False), SioOptions())


def names(report):
    return [c.info.name for c in report.causes]


def test_correct_nginx_with_host_is_ok(server):
    with NginxProxy("correct-host", server.port) as proxy:
        mark = server.log_mark()
        for _ in range(5):
            report = probe(proxy.url("/socket.io/"))
            assert report.ok, (names(report), report.socketio)
            assert report.socketio["polling"]["reached"] == "upgraded"
        time.sleep(0.3)
        assert server.log_problems(mark) == []


def test_nginx_without_host_fails_the_origin_check_fm23(server):
    """nginx's default Host is $proxy_host: the browser's Origin no longer matches scheme://Host."""
    with NginxProxy("correct", server.port) as proxy:
        report = probe(proxy.url("/socket.io/"))
        assert names(report)[0] == "engineio-origin-rejected", (names(report), report.socketio)
        assert "X-Forwarded-Host" in report.causes[0].info.fix


def test_nginx_stripping_the_upgrade_fm26(server):
    with NginxProxy("no-upgrade-host", server.port) as proxy:
        report = probe(proxy.url("/socket.io/"))
        assert names(report)[0] == "engineio-upgrade-headers-missing", (names(report), report.socketio)
        assert report.socketio["polling"]["reached"] == "connected"  # long-polling still works
