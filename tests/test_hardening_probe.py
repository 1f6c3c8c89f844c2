"""Hostile peers and careless input against `wsdiag probe` (issue 15, items 3, 4, 6 and 7).

Real scripted servers from fixtures/hostile (the "hardening" group and the ping storm), a
real loopback trace channel that answers malformed or dripping documents, a real silent
name server, and the real CLI in a child process.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from fixtures.hostile.servers import SCENARIOS, ScriptedServer
from tests.conftest import ROOT
from wsdiag.core.profiles import PROFILES
from wsdiag.net.probe import ProbeOptions, probe
from wsdiag.net.transport import Settings

pytestmark = pytest.mark.timeout(90)
TIMEOUT, WATCH = 2.0, 0.8


def cli(*args, timeout=60, env_extra=None, stdin=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1", COLUMNS="120", **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "wsdiag", *args], capture_output=True, timeout=timeout, env=env,
                          cwd=ROOT, stdin=stdin)


def probe_one(srv, profile: str, **kw):
    settings = Settings(timeout=TIMEOUT, watch=WATCH, use_env_proxy=False)
    opts = ProbeOptions([PROFILES[profile]], settings, controls=False, **kw)
    start = time.monotonic()
    (report,) = probe([srv.url()], opts)
    return report, time.monotonic() - start


# -- 3. bounds ----------------------------------------------------------------------------


def test_websocket_client_never_follows_a_redirect():
    with ScriptedServer(SCENARIOS["status-302-redirect"], max_hold=5) as srv:
        report, _ = probe_one(srv, "websocket-client")
        assert srv.connections == 1  # one exchange, no connection of the library's own
    (r,) = report.results
    assert r.status == 302 and r.verdict.value == "refused"
    assert "WS203" in {f.code for f in r.findings}
    assert "redirect not followed" in r.exchange.library_error


@pytest.mark.parametrize("scenario", ["endless-frame", "ping-storm"])
def test_floods_end_within_the_bound_with_small_json(scenario):
    from fixtures.hostile.frames_and_closing import CASES

    sc = SCENARIOS.get(scenario) or CASES[scenario][0]
    with ScriptedServer(sc, max_hold=10) as srv:
        r = cli("probe", "--json", "-p", "minimal", "-p", "websocket-client", "-p", "chrome", "--no-controls",
                "--no-proxy", "--timeout", str(TIMEOUT), "--watch", str(WATCH), srv.url())
    assert r.returncode in (0, 1), r.stderr
    assert len(r.stdout) < 300_000, len(r.stdout)
    doc = json.loads(r.stdout)
    lib = next(x for x in doc["reports"][0]["results"] if x["profile"] == "websocket-client")
    after = lib["after_upgrade"]
    assert after is not None and len(after["events"]) <= 70
    assert after["stream"]["capped"] or after["outcome"] != "silent", after


def test_websocket_client_stops_reading_an_endless_frame():
    with ScriptedServer(SCENARIOS["endless-frame"], max_hold=10) as srv:
        report, elapsed = probe_one(srv, "websocket-client")
    (r,) = report.results
    assert elapsed < TIMEOUT + WATCH + 1.0
    assert r.exchange.after.stream["capped"] is True
    assert "WS431" in {f.code for f in r.findings}


class _TraceChannel(http.server.BaseHTTPRequestHandler):
    mode = "malformed"

    def do_GET(self):  # noqa: N802
        if self.mode == "drip":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(200):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass
            return
        pid = self.path.rsplit("/", 1)[-1]
        events = [1, "text", None, {"stage": "request", "probe_id": pid, "path": ["/ws"], "method": {"x": 1}},
                  {"stage": "hook_enter", "hook": ["a"], "scope": {"b": 2}, "blueprint": [1, 2]},
                  {"stage": "hook_exit", "hook": ["a"], "scope": {"b": 2}, "blueprint": [1, 2], "ms": "slow"},
                  {"stage": "routing", "ok": "yes", "exception": ["WebsocketMismatch"], "valid_methods": "GET"},
                  {"stage": "view_exit", "status": "2OO", "ms": float("1e308") * 10}, {7: "non-string key"}]
        body = json.dumps({"schema": "wsdiag.trace/1", "probe_id": pid, "complete": "yes", "events": events},
                          default=str).replace("Infinity", "1e999").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def _channel(mode: str):
    handler = type("H", (_TraceChannel,), {"mode": mode})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_malformed_trace_events_never_crash():
    channel = _channel("malformed")
    try:
        with ScriptedServer(SCENARIOS["good"], max_hold=5) as srv:
            r = cli("probe", "--json", "-p", "minimal", "-p", "chrome", "--no-proxy", "--timeout", "2", "--watch", "0.5",
                    "--trace", f"http://127.0.0.1:{channel.server_address[1]}", srv.url(),
                    env_extra={"WSDIAG_TRACE_TOKEN": "t0ken"})
    finally:
        channel.shutdown()
    assert r.returncode in (0, 1), r.stderr
    assert b"internal error" not in r.stderr and b"Traceback" not in r.stderr
    json.loads(r.stdout)


def test_trace_fetch_is_bounded_overall_not_per_read():
    from wsdiag.net.traceclient import fetch_trace_document

    channel = _channel("drip")
    try:
        start = time.monotonic()
        doc = fetch_trace_document(f"http://127.0.0.1:{channel.server_address[1]}", "t", "a" * 32, timeout=1.0)
        elapsed = time.monotonic() - start
    finally:
        channel.shutdown()
    assert doc is None
    assert elapsed < 2.0, elapsed  # a byte every 0.1 s for 20 s: each read is quick, the whole is not


def test_from_file_is_bounded_by_line_length():
    r = cli("probe", "--from-file", "/dev/zero", timeout=30)
    assert r.returncode == 2
    assert r.stderr.decode().strip() == ("wsdiag: error: --from-file line 1 is longer than 8192 characters "
                                         "(see `wsdiag probe --help`)")


# -- 4. terminal safety --------------------------------------------------------------------


def test_server_escape_sequences_never_reach_the_terminal():
    with ScriptedServer(SCENARIOS["escape-sequences"], max_hold=5) as srv:
        human = cli("probe", "-v", "-p", "minimal", "-p", "websocket-client", "--no-proxy", "--timeout", "2", srv.url())
        js = cli("probe", "--json", "-v", "-p", "minimal", "--no-proxy", "--timeout", "2", srv.url())
    out = human.stdout.decode("utf-8")
    assert human.returncode == 1, human.stderr
    for raw in ("\x1b", "\x07", "\x9b", "\x00", "\x7f"):
        assert raw not in out, repr(raw)
    assert "\\x1b]0;pwned" in out  # shown, escaped
    text = js.stdout.decode("utf-8")
    assert "\x9b" not in text and "\x7f" not in text
    doc = json.loads(text)
    result = doc["reports"][0]["results"][0]
    assert "\x1b]0;pwned\x07" in result["response_head"]  # JSON keeps the exact bytes, escaped
    body = next(f for f in result["findings"] if f["code"] == "WS206")["evidence"]["body"]
    assert "\x9b31m" in body


# -- 6. whose fault -----------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--timeout", "nan", "ws://127.0.0.1:9/ws"], "'nan' is not a finite number"),
    (["--sample", "--app", "x:app"], "--sample and --app cannot be combined"),
    (["--cacert", "/nonexistent/ca.pem", "ws://127.0.0.1:9/ws"], "--cacert '/nonexistent/ca.pem' cannot be read"),
    (["--cacert", str(ROOT / "README.md"), "ws://127.0.0.1:9/ws"], "cannot be read as a CA bundle"),
])
def test_usage_errors_are_one_line_exit_2(args, message):
    r = cli("probe", *args)
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_nul_byte_in_a_url_from_a_file_is_a_usage_error(tmp_path):
    f = tmp_path / "urls.txt"
    f.write_bytes(b"ws://127.0.0.1:9/ok\nws://127.0.0.1:9/a\x00b\n")
    r = cli("probe", "--from-file", str(f))
    assert r.returncode == 2
    assert r.stderr.decode().strip().startswith("wsdiag: error: 'ws://127.0.0.1:9/a\\x00b' contains a control character")


def test_interim_1xx_answer_is_not_a_server_without_websocket():
    with ScriptedServer(SCENARIOS["interim-100-then-101"], max_hold=5) as srv:
        settings = Settings(timeout=TIMEOUT, watch=WATCH, use_env_proxy=False)
        (report,) = probe([srv.url()], ProbeOptions([PROFILES["minimal"], PROFILES["websocket-client"]], settings))
    verdicts = {r.profile: r.verdict.value for r in report.results}
    assert verdicts["minimal"] == "serviced"  # the 100 is skipped as HTTP clients do
    assert verdicts["websocket-client"] == "refused"  # the library itself fails on the 100: its truth
    minimal = next(r for r in report.results if r.profile == "minimal")
    assert minimal.exchange.interim and minimal.exchange.interim[0].startswith(b"HTTP/1.1 100")
    assert "WS702" not in {c.code for c in report.causes}


def test_silent_name_server_is_a_dns_finding(tmp_path):
    """A name server that never answers: WS101 in the dns phase, not a TCP timeout with port '?'."""
    if os.geteuid() != 0 or subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs a private mount namespace (root + unshare) to point the resolver at a silent server")
    dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dns.bind(("127.0.0.77", 0))  # never answers
    port = dns.getsockname()[1]
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.77\noptions timeout:5 attempts:2\n")
    if port != 53:
        dns.close()
        dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dns.bind(("127.0.0.77", 53))
    script = (f"mount --bind {conf} /etc/resolv.conf && exec {sys.executable} -m wsdiag probe --json -p minimal "
              "--no-controls --no-proxy --timeout 1.5 ws://silent-dns.test/ws")
    try:
        r = subprocess.run(["unshare", "--mount", "sh", "-c", script], capture_output=True, timeout=30,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)))
    finally:
        dns.close()
    assert r.returncode == 1, r.stderr
    (result,) = json.loads(r.stdout)["reports"][0]["results"]
    assert result["phase"] == "dns"
    assert [f["code"] for f in result["findings"]][0] == "WS101"
    assert "name server" in result["findings"][0]["summary"]


# -- 7. secrets ---------------------------------------------------------------------------


def test_reflected_credentials_and_set_cookie_are_redacted_everywhere():
    secret_auth, secret_cookie = "Bearer SUPERSECRETTOKEN123", "sid=COOKIESECRET456"
    args = ["-p", "minimal", "-p", "websocket-client", "--no-proxy", "--timeout", "2", "-H",
            f"Authorization: {secret_auth}", "-H", f"Cookie: {secret_cookie}"]
    with ScriptedServer(SCENARIOS["echo-credentials"], max_hold=5) as srv:
        js = cli("probe", "--json", "-v", *args, srv.url())
        human = cli("probe", "-v", *args, srv.url())
        shown = cli("probe", "--json", "-v", "--show-secrets", *args, srv.url())
    for r in (js, human):
        text = r.stdout.decode() + r.stderr.decode()
        for s in ("SUPERSECRETTOKEN123", "COOKIESECRET456", "SERVER-SECRET-COOKIE"):
            assert s not in text, (s, text[:3000])
        assert "<redacted>" in text
    json.loads(js.stdout)
    assert b"SUPERSECRETTOKEN123" in shown.stdout  # the redaction is what hides them


def test_serve_sample_hint_keeps_the_token_off_command_lines():
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "wsdiag", "serve-sample", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, start_new_session=True)
    try:
        lines = [proc.stdout.readline().decode() for _ in range(8)]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    hint = next(line for line in lines if "probe with the app's own view" in line)
    assert "--trace-token" not in hint and 'WSDIAG_TRACE_TOKEN="$(cat ' in hint
    token_file = hint.split("$(cat ", 1)[1].split(")", 1)[0]
    assert not any(line for line in lines if "token " in line and len(line.split("token ")[-1].strip()) == 32)
    assert not os.path.exists(token_file) or (os.stat(token_file).st_mode & 0o077) == 0
