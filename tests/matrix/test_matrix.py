"""In one Flask/Werkzeug environment: every wsdiag verdict equals what the real server did.

Run by nox (noxfile.py) once per environment. For each fixture app and client profile, an
independent minimal client (stdlib, written here, sharing no code with wsdiag) checks whether
the real gevent-websocket server serves the socket; wsdiag's verdict must agree, and its
causes and fixes must be the ones that are true for the installed release.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from wsdiag.core.findings import Verdict
from wsdiag.net.probe import ProbeOptions, probe
from wsdiag.core.profiles import DEFAULT, PROFILES, resolve
from wsdiag.net.transport import Settings

pytestmark = [pytest.mark.matrix, pytest.mark.timeout(120)]

APPS = ["seed_route", "seed_hook", "seed_fixed", "seed_dual", "view_returns"]
WERKZEUG = tuple(int(p) for p in version("werkzeug").split(".")[:3])
RESULTS: dict = {"env": os.environ.get("WSDIAG_MATRIX_ENV", "local"), "flask": version("flask"),
                 "werkzeug": version("werkzeug"), "cells": {}}


def raw_served(host: str, port: int, path: str, connection: str) -> bool:
    """Independent truth: does the server echo a text frame over this Connection header?"""
    key = base64.b64encode(os.urandom(16)).decode()
    req = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: {connection}\r\n"
           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    with socket.create_connection((host, port), timeout=3) as s:
        s.sendall(req)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                return False
            buf += chunk
        if not buf.startswith(b"HTTP/1.1 101"):
            return False
        rest = buf.split(b"\r\n\r\n", 1)[1]
        mask = os.urandom(4)
        s.sendall(bytes([0x81, 0x80 | 2]) + mask + bytes(b ^ mask[i] for i, b in enumerate(b"hi")))
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            if len(rest) >= 2:
                return rest[0] & 0x0F == 0x1  # a text frame first: served; a close frame: not
            s.settimeout(max(end - time.monotonic(), 0.01))
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                return False
            if not chunk:
                return False
            rest += chunk
    return False


def wsdiag_report(url: str):
    opts = ProbeOptions(resolve(["default"]), Settings(timeout=5, watch=1.5, use_env_proxy=False))
    return probe([url], opts)[0]


@pytest.fixture(scope="module", autouse=True)
def write_results():
    yield
    out = os.environ.get("WSDIAG_MATRIX_OUT")
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(RESULTS, indent=2, sort_keys=True) + "\n")


@pytest.mark.parametrize("app", APPS)
def test_every_verdict_matches_the_real_server(serve_app, app):
    served = serve_app(f"fixtures.apps.{app}")
    report = wsdiag_report(served.url("/ws"))
    cells = {}
    for r in report.results:
        conn = PROFILES[r.profile].connection or "Upgrade"
        truth = raw_served(served.host, served.port, "/ws", conn)
        assert (r.verdict is Verdict.SERVICED) == truth, (app, r.profile, r.verdict, truth)
        assert r.verdict in (Verdict.SERVICED, Verdict.ABANDONED)
        cells[r.profile] = r.verdict.value
    RESULTS["cells"][app] = {"verdicts": cells, "causes": [f.code for f in report.causes],
                             "windows": [f.evidence.get("werkzeug") for f in report.causes if f.code == "WS701"]}


def causes(app, serve_app):
    return wsdiag_report(serve_app(f"fixtures.apps.{app}").url("/ws")).causes


def test_route_without_websocket_true(serve_app):
    """The report's variant 1, per release."""
    found = causes("seed_route", serve_app)
    codes = [f.code for f in found]
    if WERKZEUG < (2, 0):
        assert not [c for c in codes if c.startswith(("WS6", "WS7"))]  # it works on Werkzeug 1.0
    elif WERKZEUG < (2, 0, 2):
        assert codes[0] == "WS701" and found[0].evidence["werkzeug"] == "2.0.0 - 2.0.1"
        assert found[0].evidence["failing_connection"] == ["Upgrade"]
    else:
        assert codes[0] == "WS601"


def test_websocket_true_route(serve_app):
    """The report's fix (variant 3), per release: right only from 2.0.2 on."""
    found = causes("seed_fixed", serve_app)
    codes = [f.code for f in found]
    if WERKZEUG < (2, 0):
        assert codes[:2] == ["WS603", "WS706"]  # websocket=True rules never match on 1.0
    elif WERKZEUG < (2, 0, 2):
        assert codes[0] == "WS701" and found[0].evidence["werkzeug"] == "2.0.0 - 2.0.1"
        assert found[0].evidence["failing_connection"] == ["keep-alive, Upgrade"]
    else:
        assert codes == []


def test_before_request_workaround_everywhere(serve_app):
    assert [f.code for f in causes("seed_hook", serve_app)] == ["WS604"]


def test_the_fix_for_this_release_makes_every_profile_work(serve_app):
    """Re-probe the app shaped as wsdiag's fix for this release says; every default profile works.

    Werkzeug 1.0: no websocket=True (seed_route). 2.0.0/2.0.1: both rules (seed_dual), since
    no single rule serves both Connection spellings. 2.0.2+: websocket=True (seed_fixed).
    """
    if WERKZEUG < (2, 0):
        app = "seed_route"
    elif WERKZEUG < (2, 0, 2):
        app = "seed_dual"
    else:
        app = "seed_fixed"
    report = wsdiag_report(serve_app(f"fixtures.apps.{app}").url("/ws"))
    assert {r.profile: r.verdict for r in report.results} == {p: Verdict.SERVICED for p in DEFAULT}
    RESULTS["fix"] = app


def test_both_rules_work_on_every_release(serve_app):
    """The version-independent fix wsdiag offers: a WebSocket rule plus a plain rule, one view."""
    report = wsdiag_report(serve_app("fixtures.apps.seed_dual").url("/ws"))
    assert {r.profile: r.verdict for r in report.results} == {p: Verdict.SERVICED for p in DEFAULT}
    assert report.causes == []
