"""`probe --browser`: the installed browsers as probes (wsdiag.net.browser), checked for real.

* Against serve-sample's three variants and against failure-mode fixtures, each browser's
  outcome as wsdiag records it (DevTools / WebDriver BiDi plus the page's own events) equals
  what the same browser reports from a plain page that opens the same socket (the sample's
  chat page; for the fixtures, a plain page served from a loopback helper here; for the
  wrong-accept capture server, its own page).
* The handshake wsdiag recorded from the browser is the one its profile models (no header
  differs), and the report carries no stale-profile finding.
* A deliberately edited profile (Upgrade removed from `chrome`/`firefox`) makes the
  stale-profile finding (WS855) fire and name the header.
"""

from __future__ import annotations

from wsdiag.core.record import replace
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fixtures.capture.browsers import BROWSERS, capture, launched
from fixtures.capture.capture_server import CaptureServer, accept_for
from wsdiag.core import profiles as profiles_mod
from wsdiag.core.browsercheck import BROWSER_OK, PROFILE_OF, attach, header_differences
from wsdiag.net.browser import missing, run_browser
from wsdiag.net.probe import ProbeOptions, probe
from wsdiag.net.transport import Settings
from wsdiag.proc import start_sample

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

NAMES = ["chromium", "firefox"]
FIXTURE_TO_BROWSER = {"chromium": "chromium", "firefox": "firefox"}
RUN_TIMEOUT = 60.0


def require(name: str) -> None:
    reason = missing(name)
    if reason:
        if os.environ.get("WSDIAG_REQUIRE_BROWSERS") == "1":
            pytest.fail(f"WSDIAG_REQUIRE_BROWSERS=1 but {reason}")
        pytest.skip(reason)


def plain_outcome(events: list[dict]) -> tuple[str, int | None]:
    """The same reading of page events as a user would make: served / open / closed unserved / failed."""
    kinds = [e["event"] for e in events]
    close = next((e for e in events if e["event"] == "close"), None)
    code = int(close["code"]) if close and close.get("code") not in (None, "") else None
    if "message" in kinds or ("open" in kinds and close is None):
        return "ok", code
    if "open" in kinds or (code is not None and code != 1006):
        return "abandoned", code
    return "failed", code


# -- a plain page on a loopback helper: opens the socket, reports each event back -----------

PLAIN_PAGE = """<!doctype html><meta charset="utf-8"><title>plain</title><script>
const target = %s;
function report(e, d) { const q = new URLSearchParams(Object.assign({event: e}, d || {}));
  fetch('/report?' + q.toString()).catch(() => {}); }
const ws = new WebSocket(target);
ws.onopen = () => { report('open'); ws.send('hello'); };
ws.onmessage = (m) => report('message', {data: String(m.data).slice(0, 50)});
ws.onerror = () => report('error');
ws.onclose = (c) => report('close', {code: c.code, wasClean: c.wasClean});
setTimeout(() => report('done'), 2500);
</script>"""


class PlainPage:
    def __init__(self, target: str):
        self.events: list[dict] = []
        owner = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/report":
                    owner.events.append(dict(urllib.parse.parse_qsl(url.query)))
                    body, ctype = b"", "text/plain"
                else:
                    body, ctype = (PLAIN_PAGE % json.dumps(target)).encode(), "text/html; charset=utf-8"
                self.send_response(200 if body or url.path == "/report" else 404)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def plain_page_run(name: str, target: str, timeout: float = 40.0) -> list[dict]:
    page = PlainPage(target)
    try:
        with launched(BROWSERS[name], page.url):
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                kinds = [e["event"] for e in page.events]
                if "close" in kinds or "done" in kinds:
                    time.sleep(0.3)
                    break
                time.sleep(0.1)
        return list(page.events)
    finally:
        page.close()


# -- the sample -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample():
    child = start_sample()
    yield child
    child.stop()


def sample_page_outcome(sample, name: str, variant: str, timeout: float = 30.0) -> tuple[str, int | None]:
    before = len(sample.browser_events())
    with launched(BROWSERS[name], sample.page_url(variant)):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            events = [e for e in sample.browser_events()[before:] if e.get("variant") == variant]
            if any(e["event"] == "message" and e.get("who") == "bob" for e in events):
                return "ok", None
            closes = [e for e in events if e["event"] == "close"]
            if len(closes) == 2:
                return "abandoned", closes[-1].get("code")
            time.sleep(0.1)
    raise AssertionError(f"{name} on {variant}: no outcome from the plain page")


def _assert_profile_matches(run, name):
    assert header_differences(run.to_dict(), PROFILE_OF[name]) == [], run.handshake


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("variant", ["route", "hook", "fixed"])
def test_sample_browser_probe_matches_plain_page(sample, name, variant):
    require(name)
    seen, code = sample_page_outcome(sample, name, variant)
    run = run_browser(name, sample.url(variant), timeout=RUN_TIMEOUT)
    assert run.error is None, run.error
    assert run.response_status == 101, run.to_dict()
    assert (run.outcome in BROWSER_OK) == (seen == "ok"), (run.outcome, seen, run.page_events)
    if seen == "abandoned":
        assert run.close and run.close["code"] == code == 1005, (run.close, code)
    _assert_profile_matches(run, name)
    if name == "chromium":
        assert run.handshake["exact"] and run.frames and run.frames[0]["direction"] == "send"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("fixture", ["seed_route", "seed_fixed", "view_returns", "no-handler"])
def test_fixture_browser_probe_matches_plain_page(serve_app, name, fixture):
    require(name)
    served = serve_app("fixtures.apps.seed_fixed", websocket=False) if fixture == "no-handler" \
        else serve_app(f"fixtures.apps.{fixture}")
    url = served.url("/ws")
    seen, code = plain_outcome(plain_page_run(name, url))
    run = run_browser(name, url, timeout=RUN_TIMEOUT)
    assert run.error is None, run.error
    mine = "ok" if run.outcome in BROWSER_OK else run.outcome
    assert mine == seen, (fixture, run.outcome, run.page_events, seen)
    if run.close is not None and code is not None:
        assert run.close["code"] == code
    # wsdiag's verdict for the browser's profile agrees: no stale-profile finding
    opts = ProbeOptions([profiles_mod.PROFILES[PROFILE_OF[name]]], Settings(timeout=5, watch=1, use_env_proxy=False),
                        controls=False)
    (report,) = probe([url], opts)
    attach(report, [run.to_dict()])
    assert not [f for f in report.facts if f.code in ("WS855", "WS857")], [f.summary for f in report.facts]


def _wrong_accept(hs):
    return ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_for('AAAAAAAAAAAAAAAAAAAAAA==')}\r\n\r\n").encode()


@pytest.mark.parametrize("name", NAMES)
def test_wrong_accept_fails_in_both_readings(name):
    require(name)
    with CaptureServer(respond=_wrong_accept) as server:
        session = capture(BROWSERS[name], server, timeout=RUN_TIMEOUT)
        run = run_browser(name, f"ws://127.0.0.1:{server.port}/capture", timeout=RUN_TIMEOUT)
    close = next(r for r in session.reports if r.event == "close")
    assert close.get("code") == "1006"
    assert run.outcome == "failed" and run.close["code"] == 1006 and run.close["wasClean"] is False, run.to_dict()
    if name == "chromium":  # Chromium's console says why
        assert any("Sec-WebSocket-Accept" in m or "handshake" in m.lower() for m in run.console_errors), run.console_errors


@pytest.mark.parametrize("name", NAMES)
def test_edited_profile_is_reported_stale(serve_app, monkeypatch, name):
    """Remove Upgrade from the browser's profile: the profile now fails where the browser works."""
    require(name)
    url = serve_app("fixtures.apps.seed_fixed").url("/ws")
    pname = PROFILE_OF[name]
    real = profiles_mod.PROFILES[pname]
    edited = replace(real, headers=tuple(h for h in real.headers if h[0] != "Upgrade"))
    monkeypatch.setitem(profiles_mod.PROFILES, pname, edited)
    run = run_browser(name, url, timeout=RUN_TIMEOUT)
    assert run.outcome in BROWSER_OK, run.to_dict()
    opts = ProbeOptions([edited], Settings(timeout=5, watch=1, use_env_proxy=False), controls=False)
    (report,) = probe([url], opts)
    assert report.results[0].verdict.value != "serviced"
    attach(report, [run.to_dict()])
    stale = [f for f in report.facts if f.code == "WS855"]
    assert stale, [f.summary for f in report.facts]
    assert "add Upgrade: websocket" in stale[0].evidence["differs"], stale[0].evidence
    assert "stale" in stale[0].summary
    # and with the real profile back, no stale finding
    monkeypatch.setitem(profiles_mod.PROFILES, pname, real)
    opts = ProbeOptions([real], Settings(timeout=5, watch=1, use_env_proxy=False), controls=False)
    (report,) = probe([url], opts)
    attach(report, [run.to_dict()])
    assert not [f for f in report.facts if f.code == "WS855"]


def test_cli_browser_rows_bundle_and_har(serve_app, tmp_path):
    for name in NAMES:
        require(name)
    url = serve_app("fixtures.apps.seed_route").url("/ws")
    bundle, har = tmp_path / "b.json", tmp_path / "b.har"
    live = subprocess.run([sys.executable, "-m", "wsdiag", "probe", url, "--browser", "all", "--json", "--no-proxy",
                           "--save", str(bundle), "--har", str(har)], capture_output=True, text=True, timeout=170)
    doc = json.loads(live.stdout)
    rows = doc["reports"][0]["browsers"]
    assert [r["name"] for r in rows] == NAMES
    assert all(r["outcome"] == "abandoned" and r["close"]["code"] == 1005 for r in rows), rows
    assert not [f for f in doc["reports"][0]["facts"] if f["code"] in ("WS855", "WS857")]
    offline = subprocess.run([sys.executable, "-m", "wsdiag", "replay", str(bundle), "--json"],
                             capture_output=True, text=True, timeout=60)
    assert json.loads(offline.stdout) == doc
    import jsonschema
    from pathlib import Path

    har_doc = json.loads(har.read_text())
    jsonschema.validate(har_doc, json.loads((Path(__file__).parents[1] / "har12.schema.json").read_text()))
    entries = har_doc["log"]["entries"]
    (ff,) = [e for e in entries if e["comment"].startswith("browser firefox")]
    assert ff["response"]["status"] == 101 and any(h["name"] == "Upgrade" for h in ff["request"]["headers"])
    browser_entries = [e for e in entries if e["comment"].startswith("browser chromium")]
    assert browser_entries and browser_entries[0]["_webSocketMessages"][0]["data"] == "wsdiag-browser"
    text = subprocess.run([sys.executable, "-m", "wsdiag", "probe", url, "--browser", "chromium", "--no-proxy"],
                          capture_output=True, text=True, timeout=120)
    assert "browsers on" in text.stdout and "chromium   abandoned" in text.stdout, text.stdout


def _wsdiag(*args, env=None, timeout=170):
    return subprocess.run([sys.executable, "-m", "wsdiag", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_harmless_difference_is_informational_and_console_errors_are_reported(serve_app, monkeypatch):
    """Pragma dropped from the profile: both still work, so the difference is WS856 (info),
    not a stale profile; the wrong-accept server's console error is WS858."""
    require("chromium")
    url = serve_app("fixtures.apps.seed_fixed").url("/ws")
    real = profiles_mod.PROFILES["chrome"]
    edited = replace(real, headers=tuple(h for h in real.headers if h[0] != "Pragma"))
    monkeypatch.setitem(profiles_mod.PROFILES, "chrome", edited)
    run = run_browser("chromium", url, timeout=RUN_TIMEOUT)
    (report,) = probe([url], ProbeOptions([edited], Settings(timeout=5, watch=1, use_env_proxy=False), controls=False))
    attach(report, [run.to_dict()])
    codes = [f.code for f in report.facts]
    assert "WS856" in codes and "WS855" not in codes, [f.summary for f in report.facts]
    assert "add Pragma: no-cache" in next(f for f in report.facts if f.code == "WS856").summary
    with CaptureServer(respond=_wrong_accept) as server:
        run = run_browser("chromium", f"ws://127.0.0.1:{server.port}/capture", timeout=RUN_TIMEOUT)
    (report,) = probe([url], ProbeOptions([real], Settings(timeout=5, watch=1, use_env_proxy=False), controls=False))
    attach(report, [run.to_dict()])
    assert any(f.code == "WS858" and "Sec-WebSocket-Accept" in f.summary for f in report.facts)


def test_profiles_refresh_writes_data_and_cures_a_stale_profile(serve_app, tmp_path):
    """A profiles file with Upgrade removed from both browser profiles makes `probe --browser`
    report both stale (WS855); `profiles --refresh` rewrites the file from the installed
    browsers, after which the same probe has no stale finding and `profiles` shows the versions."""
    for name in NAMES:
        require(name)
    url = serve_app("fixtures.apps.seed_fixed").url("/ws")
    path = tmp_path / "profiles.json"
    stale_doc = {"schema": "wsdiag.profiles/1", "created": "2020-01-01T00:00:00Z", "profiles": [
        {"name": p, "http_version": "HTTP/1.1", "source": "edited by the test",
         "headers": [list(h) for h in profiles_mod.PROFILES[p].headers if h[0] != "Upgrade"]}
        for p in ("chrome", "firefox")]}
    path.write_text(json.dumps(stale_doc))
    env = {"WSDIAG_PROFILES": str(path)}
    before = json.loads(_wsdiag("probe", url, "--browser", "all", "--json", "--no-proxy", "--no-controls",
                                "-p", "chrome,firefox", env=env).stdout)
    stale = [f for f in before["reports"][0]["facts"] if f["code"] == "WS855"]
    assert {f["evidence"]["browser"] for f in stale} == {"chromium", "firefox"}, before["reports"][0]["facts"]
    assert all("add Upgrade: websocket" in f["summary"] for f in stale)

    out = _wsdiag("profiles", "--refresh", env=env)
    assert out.returncode == 0 and "wrote" in out.stderr, out.stderr
    doc = json.loads(path.read_text())
    assert doc["schema"] == "wsdiag.profiles/1"
    by = {e["name"]: e for e in doc["profiles"]}
    for p, version_word in (("chrome", "Chromium"), ("firefox", "Firefox")):
        assert version_word in by[p]["source"]
        # the captured bytes are what the built-in profile models (the capture tests' check)
        assert [tuple(h) for h in by[p]["headers"]] == list(profiles_mod.PROFILES[p].headers), by[p]["headers"]
    listing = json.loads(_wsdiag("profiles", "--json", env=env).stdout)
    text = json.dumps(listing)
    assert "by `wsdiag profiles --refresh`" in text

    after = json.loads(_wsdiag("probe", url, "--browser", "all", "--json", "--no-proxy", "--no-controls",
                               "-p", "chrome,firefox", env=env).stdout)
    assert not [f for f in after["reports"][0]["facts"] if f["code"] in ("WS855", "WS856", "WS857")]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("variant", ["route", "fixed"])
def test_page_option_records_the_pages_own_socket(sample, name, variant):
    """--page: the sample's chat page opens the sockets itself; wsdiag hooks them before the
    page's scripts run and reads the same outcome the page reports to the sample."""
    require(name)
    seen, code = sample_page_outcome(sample, name, variant)
    run = run_browser(name, sample.url(variant), page=sample.page_url(variant), timeout=RUN_TIMEOUT)
    assert run.error is None, run.error
    assert [e["event"] for e in run.page_events].count("created") == 2  # alice and bob
    assert ("ok" if run.outcome in BROWSER_OK else run.outcome) == seen, (run.outcome, run.page_events)
    if seen == "abandoned":
        assert run.close["code"] == code
    _assert_profile_matches(run, name)


def _with_mark(mark: str) -> list[int]:
    needle = f"WSDIAG_BROWSER_RUN={mark}".encode()
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[-1].split()[0] == b"Z":
                    continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(int(pid))
        except (OSError, IndexError):
            continue
    return found


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("path", ["normal", "deadline", "error"])
def test_no_browser_process_outlives_a_run(serve_app, monkeypatch, name, path):
    """Normal end, the deadline hit while starting, and an exception inside the session:
    every process of the launch (found by its environment mark) is gone when run_browser returns."""
    require(name)
    import uuid

    import wsdiag.net.browser as browser_mod

    mark = uuid.uuid4()
    monkeypatch.setattr(browser_mod.uuid, "uuid4", lambda: mark)
    if path == "error":
        def boom(*a, **k):
            raise RuntimeError("injected failure while recording")
        monkeypatch.setattr(browser_mod, "_chromium_record" if name == "chromium" else "_firefox_record", boom)
    url = serve_app("fixtures.apps.seed_fixed").url("/ws")
    run = run_browser(name, url, timeout={"deadline": 0.3}.get(path, RUN_TIMEOUT))
    assert _with_mark(mark.hex) == [], run.to_dict()
    if path == "normal":
        assert run.error is None and run.outcome in BROWSER_OK
    else:
        assert run.error and run.outcome == "not-run", run.to_dict()
        if path == "error":
            assert "injected failure" in run.error
