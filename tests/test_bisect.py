"""Handshake bisection: the pure search (core.bisect) and real servers (net.bisect, CLI)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from wsdiag.core.bisect import Candidate, apply, bisect, differences, parse_request_head
from wsdiag.core.profiles import PROFILES
from wsdiag.net.bisect import candidate_for, findings_of, run_bisect
from wsdiag.net.transport import Settings

SETTINGS = Settings(timeout=5, watch=0.5, use_env_proxy=False)


def test_differences_cover_every_aspect_and_apply_reaches_good():
    bad = Candidate("HTTP/1.0", (("Host", "{host}"), ("connection", "Upgrade"), ("X-Bad", "1")))
    good = Candidate("HTTP/1.1", (("Upgrade", "websocket"), ("Host", "{host}"), ("Connection", "keep-alive, Upgrade")))
    kinds = sorted(c.kind for c in differences(bad, good))
    assert kinds == ["add", "casing", "remove", "value", "version"]
    assert apply(bad, good, differences(bad, good)) == good
    # order only
    swapped = Candidate("HTTP/1.1", (good.headers[1], good.headers[0], good.headers[2]))
    assert [c.kind for c in differences(swapped, good)] == ["order"]
    assert apply(swapped, good, differences(swapped, good)) == good
    # run-dependent values are never differences
    assert differences(Candidate("HTTP/1.1", (("Host", "a:1"),)), Candidate("HTTP/1.1", (("Host", "b:2"),))) == []


def _server_rule(cand: Candidate) -> tuple[bool, str]:
    """A pure stand-in rule used to test the search itself (no network): works iff
    Connection is not exactly 'Upgrade' and Upgrade is present."""
    return (cand.header("Connection") not in (None, "Upgrade") and cand.header("Upgrade") is not None), ""


def test_search_finds_single_value_with_reverse_confirmation():
    good, bad = candidate_for(PROFILES["firefox-legacy"]), candidate_for(PROFILES["chrome"])
    result = bisect(good, bad, _server_rule)
    assert result.status == "found"
    assert [[c.name for c in m] for m in result.minimal] == [["Connection"]]
    assert result.sentences() == ["fails only when Connection is exactly 'Upgrade' (works with 'keep-alive, Upgrade')"]
    assert "Werkzeug 2.0.0 - 2.0.1" in result.hints()[0]
    n = len(result.changes)
    assert result.exchanges <= 2 + n + 1


def test_budget_and_no_split():
    good, bad = candidate_for(PROFILES["firefox-legacy"]), candidate_for(PROFILES["chrome"])
    assert bisect(good, bad, _server_rule, max_exchanges=3).status == "budget"
    assert bisect(good, good, _server_rule).status == "no-split"


def test_parse_request_head_keeps_order_and_case():
    c = parse_request_head(b"GET /ws HTTP/1.0\r\nhost: x\r\nUpgrade: websocket\r\n\r\n")
    assert c == Candidate("HTTP/1.0", (("host", "x"), ("Upgrade", "websocket")))


@pytest.mark.timeout(60)
def test_real_server_stripped_headers(serve_app):
    """Against gevent-websocket + Werkzeug (installed): what a stripping proxy forwards needs
    both Upgrade and Connection back (WS850 names them and the proxy rule)."""
    url = serve_app("fixtures.apps.seed_fixed").url("/ws")
    result = run_bisect(url, candidate_for(PROFILES["chrome"]), candidate_for(PROFILES["stripped"]), SETTINGS)
    assert result.status == "found", result.to_dict()
    assert sorted(c.name for c in result.minimal[0]) == ["Connection", "Upgrade"]
    assert result.exchanges <= 2 + 3 * len(result.changes) + 4
    (f,) = findings_of(result, "chrome", "stripped")
    assert f.code == "WS850" and "Upgrade" in f.summary and "WS703" in " ".join(f.evidence["hints"])


@pytest.mark.timeout(60)
def test_real_server_http10(serve_app):
    url = serve_app("fixtures.apps.seed_fixed").url("/ws")
    result = run_bisect(url, candidate_for(PROFILES["chrome"]), candidate_for(PROFILES["http10"]), SETTINGS)
    assert result.status == "found"
    assert [c.kind for c in result.minimal[0]] == ["version"]
    assert result.only_when == {0: True}


@pytest.mark.timeout(60)
def test_cli_no_split_and_inconclusive(serve_app):
    """WS851: both work; WS852: the exchange budget ends the search first."""
    url = serve_app("fixtures.apps.seed_fixed").url("/ws")
    out = subprocess.run([sys.executable, "-m", "wsdiag", "bisect", url, "--good", "chrome", "--bad", "firefox",
                          "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    assert doc["status"] == "no-split" and doc["findings"][0]["code"] == "WS851"
    out = subprocess.run([sys.executable, "-m", "wsdiag", "bisect", url, "--good", "chrome", "--bad", "stripped",
                          "--max-exchanges", "3", "--json"], capture_output=True, text=True, timeout=60)
    doc = json.loads(out.stdout)
    assert out.returncode == 1 and doc["findings"][0]["code"] == "WS852" and doc["exchanges"] == 3


def test_cli_usage_errors():
    out = subprocess.run([sys.executable, "-m", "wsdiag", "bisect", "ws://127.0.0.1:9/ws", "--good", "nope",
                          "--bad", "chrome"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "unknown profile" in out.stderr and "Traceback" not in out.stderr


# -- automatic bisection inside `wsdiag probe` ---------------------------------------------

import socketserver  # noqa: E402
import threading  # noqa: E402

from wsdiag.core.handshake import accept_for  # noqa: E402


class ExactConnectionServer(socketserver.ThreadingTCPServer):
    """A real loopback WebSocket server with Werkzeug 2.0.0/2.0.1's split: an upgrade whose
    Connection is exactly 'Upgrade' is accepted and then abandoned (closed unserved); any other
    upgrade is served (pings answered, text echoed)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _ExactHandler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"ws://127.0.0.1:{self.server_address[1]}/ws"

    def close(self):
        self.shutdown()
        self.server_close()


class _ExactHandler(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        s.settimeout(5)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                return
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        headers = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            n, _, v = line.partition(":")
            headers.setdefault(n.strip().lower(), v.strip())
        if headers.get("upgrade", "").lower() != "websocket" or "sec-websocket-key" not in headers:
            s.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        s.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Accept: {accept_for(headers['sec-websocket-key'])}\r\n\r\n").encode())
        if headers.get("connection") == "Upgrade":
            s.sendall(b"\x88\x00")  # abandoned: close at once, unserved
            return
        buf = rest
        while True:
            while len(buf) < 6 or len(buf) < 6 + (buf[1] & 0x7F):
                chunk = s.recv(4096)
                if not chunk:
                    return
                buf += chunk
            op, n = buf[0] & 0x0F, buf[1] & 0x7F
            payload = bytes(b ^ buf[2 + i % 4] for i, b in enumerate(buf[6:6 + n]))
            buf = buf[6 + n:]
            if op == 0x9:
                s.sendall(bytes([0x8A, len(payload)]) + payload)
            elif op == 0x1:
                s.sendall(bytes([0x81, len(payload)]) + payload)
            elif op == 0x8:
                s.sendall(b"\x88\x02\x03\xe8")
                return


@pytest.fixture
def exact_server():
    srv = ExactConnectionServer()
    yield srv
    srv.close()


@pytest.mark.timeout(90)
def test_probe_bisects_automatically_when_profiles_split(exact_server, tmp_path):
    bundle = tmp_path / "b.json"
    out = subprocess.run([sys.executable, "-m", "wsdiag", "probe", exact_server.url, "--json", "--no-proxy",
                          "--save", str(bundle)], capture_output=True, text=True, timeout=80)
    doc = json.loads(out.stdout)
    rep = doc["reports"][0]
    verdicts = {r["profile"]: r["verdict"] for r in rep["results"]}
    assert verdicts["chrome"] == "abandoned" and verdicts["firefox-legacy"] == "serviced", verdicts
    (f,) = [f for f in rep["facts"] if f["code"] == "WS850"]
    assert f["summary"].startswith("chrome vs firefox-legacy: fails only when Connection is exactly 'Upgrade'"), f
    assert rep["bisect"]["exchanges"] <= 24
    # the bundle keeps the bisection: replay renders the identical report
    again = subprocess.run([sys.executable, "-m", "wsdiag", "replay", str(bundle), "--json"],
                           capture_output=True, text=True, timeout=60)
    assert json.loads(again.stdout) == doc
    # --no-bisect turns it off
    off = subprocess.run([sys.executable, "-m", "wsdiag", "probe", exact_server.url, "--json", "--no-proxy",
                          "--no-bisect"], capture_output=True, text=True, timeout=80)
    assert "bisect" not in json.loads(off.stdout)["reports"][0]


@pytest.mark.timeout(60)
def test_cli_bisect_on_exact_connection_server(exact_server):
    out = subprocess.run([sys.executable, "-m", "wsdiag", "bisect", exact_server.url, "--good", "firefox",
                          "--bad", "chrome"], capture_output=True, text=True, timeout=60)
    # firefox (Connection: Upgrade) fails too on this server: no split
    assert out.returncode == 1 and "nothing to bisect" in out.stdout
    out = subprocess.run([sys.executable, "-m", "wsdiag", "bisect", exact_server.url, "--good", "firefox-legacy",
                          "--bad", "chrome"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "=> fails only when Connection is exactly 'Upgrade'" in out.stdout, out.stdout
    assert "Werkzeug 2.0.0 - 2.0.1" in out.stdout
