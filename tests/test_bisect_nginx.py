"""Bisection behind a real, misconfigured nginx: the request nginx really forwards, captured at
the upstream, bisected against the app, names the stripped headers and the proxy rule."""

from __future__ import annotations

import os
import socket

import pytest

from fixtures.capture.capture_server import CaptureServer
from fixtures.nginx import NginxProxy, nginx_binary
from wsdiag.core.bisect import parse_request_head
from wsdiag.core.handshake import build_request, new_key, parse_target
from wsdiag.core.profiles import PROFILES
from wsdiag.net.bisect import candidate_for, run_bisect
from wsdiag.net.transport import Settings

pytestmark = [pytest.mark.nginx, pytest.mark.timeout(90)]

if nginx_binary() is None:
    if os.environ.get("WSDIAG_REQUIRE_NGINX"):
        raise RuntimeError("nginx is required (WSDIAG_REQUIRE_NGINX=1) but not installed")
    pytest.skip("nginx is not installed", allow_module_level=True)

SETTINGS = Settings(timeout=5, watch=0.5, use_env_proxy=False)


def forwarded_by(kind: str) -> bytes:
    """What nginx of this ``kind`` sends upstream for Chrome's handshake (captured upstream)."""
    with CaptureServer() as upstream, NginxProxy(kind, upstream.port) as proxy:
        target = parse_target(proxy.url("/capture"))
        req = build_request(PROFILES["chrome"], target, new_key())
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
            s.sendall(req.raw)
            s.settimeout(5)
            try:
                s.recv(4096)
            except OSError:
                pass
        return upstream.wait_handshake(timeout=5).raw


@pytest.mark.parametrize("kind,expect", [
    ("no-upgrade", {"Upgrade", "Connection"}),
    ("http10", {"HTTP/1.0"}),
])
def test_bisect_names_what_nginx_strips(serve_app, kind, expect):
    backend = serve_app("fixtures.apps.seed_fixed").url("/ws")
    bad = parse_request_head(forwarded_by(kind))
    result = run_bisect(backend, candidate_for(PROFILES["chrome"]), bad, SETTINGS)
    assert result.status == "found", result.to_dict()
    named = {c.name for m in result.minimal for c in m if c.name} | \
            {c.old for m in result.minimal for c in m if c.kind == "version"}
    assert expect <= named, result.to_dict()
    assert result.exchanges <= 2 + 3 * len(result.changes) + 4
    hints = " ".join(result.hints())
    assert ("WS703" if kind == "no-upgrade" else "WS704") in hints, hints
