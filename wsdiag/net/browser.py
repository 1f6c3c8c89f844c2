"""The user's installed browsers as probes: headless Chromium over the DevTools protocol,
Firefox ESR over WebDriver BiDi, both driven with websocket-client.

For one ws:// URL, a browser is started headless and isolated (fresh temporary profile
and home, no proxy, no first-run/background traffic), opens a page on the URL's own
origin (``http://host:port/``; or ``page=`` for a real app page), and runs a small script
in it that opens ``new WebSocket(url)``, sends one text message once open, and reports
every event with its time: open, message, error, and close with the code, reason and
``wasClean`` the page saw (DevTools does not report close codes; the page does).  From the
automation protocol it records the handshake the browser really sent and got (Chromium:
the exact head texts; Firefox: the header list, in order) and the frames both ways
(Chromium), plus console errors.

Bounded: every step has a deadline under ``timeout``.  A missing browser is one line
(``BrowserRun.error``).  Every browser process is ended on every exit path through
``wsdiag.proc`` (the one child-process module): the browser runs in its own session that is
SIGTERMed then SIGKILLed, and any process still carrying the launch's mark in its
environment (Chromium's crashpad handler leaves the group) is killed too; ``proc``'s
``atexit`` hook covers an interpreter that exits with a browser still running.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

NAMES = ("chromium", "firefox")
BINARIES = {"chromium": ("WSDIAG_CHROMIUM", ("chromium", "chromium-browser", "google-chrome")),
            "firefox": ("WSDIAG_FIREFOX", ("firefox-esr", "firefox"))}
PROFILE_OF = {"chromium": "chrome", "firefox": "firefox"}
# Headers Firefox's WebSocket channel adds after WebDriver BiDi has reported the request.
FIREFOX_LATE_HEADERS = frozenset({"upgrade", "connection", "pragma", "cache-control"})
KILL_GRACE = 2.0
PAGE_MESSAGE = "wsdiag-browser"

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-breakpad", "--disable-default-apps", "--disable-extensions",
                  "--no-default-browser-check", "--mute-audio", "--password-store=basic", "--no-proxy-server")

FIREFOX_PREFS = {
    "browser.shell.checkDefaultBrowser": False, "browser.startup.homepage_override.mstone": "ignore",
    "startup.homepage_welcome_url": "", "browser.aboutwelcome.enabled": False, "browser.startup.page": 0,
    "datareporting.policy.dataSubmissionEnabled": False, "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.enabled": False, "toolkit.telemetry.server": "", "app.normandy.enabled": False,
    "app.update.auto": False, "extensions.update.enabled": False, "browser.search.update": False,
    "browser.safebrowsing.malware.enabled": False, "browser.safebrowsing.phishing.enabled": False,
    "network.captive-portal-service.enabled": False, "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True, "network.prefetch-next": False, "network.trr.mode": 5,
    "network.predictor.enabled": False, "dom.push.enabled": False,
    "media.gmp-manager.updateEnabled": False, "extensions.blocklist.enabled": False,
    "network.proxy.type": 0,  # no proxy
    "remote.active-protocols": 1,  # WebDriver BiDi
}

# The script the page runs. Arguments: url, watch ms, total ms. Resolves to a JSON string.
PAGE_SCRIPT = r"""
(function (url, watchMs, totalMs) {
  return new Promise(function (resolve) {
    var ev = [], t0 = performance.now(), byUs = false, ws;
    function rec(e, d) { var o = {event: e, t_ms: Math.round((performance.now() - t0) * 100) / 100};
      for (var k in (d || {})) o[k] = d[k]; ev.push(o); }
    function done() { resolve(JSON.stringify(ev)); }
    try { ws = new WebSocket(url); } catch (e) { rec('exception', {message: String(e)}); done(); return; }
    var timer = setTimeout(function () { rec('timeout'); byUs = true;
      try { ws.close(1000, 'wsdiag done'); } catch (e) {} setTimeout(done, 300); }, totalMs);
    ws.onopen = function () { rec('open', {protocol: ws.protocol, extensions: ws.extensions});
      try { ws.send('__MSG__'); rec('sent', {data: '__MSG__'}); } catch (e) { rec('send-failed', {message: String(e)}); }
      setTimeout(function () { if (ws.readyState === 1) { rec('held-open'); byUs = true; ws.close(1000, 'wsdiag done'); } }, watchMs); };
    ws.onmessage = function (m) { rec('message', {data: String(m.data).slice(0, 200)}); };
    ws.onerror = function () { rec('error'); };
    ws.onclose = function (c) { rec('close', {code: c.code, reason: c.reason, wasClean: c.wasClean, by: byUs ? 'client' : 'server'});
      clearTimeout(timer); done(); };
  });
})
""".replace("__MSG__", PAGE_MESSAGE)


# With --page: installed before the page's own scripts run, it wraps window.WebSocket so that
# every socket the page opens to the URL reports its events (the page keeps full control).
HOOK_SCRIPT = r"""
(function (target) {
  var Orig = window.WebSocket, T = new URL(target).href, ev = window.__wsdiagEvents = [], t0 = performance.now();
  function rec(e, d) { var o = {event: e, t_ms: Math.round((performance.now() - t0) * 100) / 100};
    for (var k in (d || {})) o[k] = d[k]; ev.push(o); }
  function Wrapped(url, protocols) {
    var ws = protocols === undefined ? new Orig(url) : new Orig(url, protocols), byPage = false;
    if (new URL(ws.url).href === T) {
      rec('created', {url: ws.url});
      var close = ws.close.bind(ws);
      ws.close = function () { byPage = true; return close.apply(null, arguments); };
      ws.addEventListener('open', function () { rec('open', {protocol: ws.protocol, extensions: ws.extensions}); });
      ws.addEventListener('message', function (m) { rec('message', {data: String(m.data).slice(0, 200)}); });
      ws.addEventListener('error', function () { rec('error'); });
      ws.addEventListener('close', function (c) { rec('close', {code: c.code, reason: c.reason, wasClean: c.wasClean,
        by: byPage ? 'page' : 'server'}); });
    }
    return ws;
  }
  Wrapped.prototype = Orig.prototype;
  Wrapped.CONNECTING = 0; Wrapped.OPEN = 1; Wrapped.CLOSING = 2; Wrapped.CLOSED = 3;
  window.WebSocket = Wrapped;
})(__TARGET__);
"""
READ_HOOK = "JSON.stringify(window.__wsdiagEvents || [])"


def _hook_source(url: str) -> str:
    return HOOK_SCRIPT.replace("__TARGET__", json.dumps(url))


def _poll_hook(read, url: str, deadline: float, watch: float) -> list[dict]:
    """Read the hooked page's events until the socket closed, answered, or was held open
    through the watch window; bounded by ``deadline``."""
    opened_at = None
    events: list[dict] = []
    while time.monotonic() < deadline - 0.5:
        events = read()
        kinds = [e.get("event") for e in events]
        if "close" in kinds or "message" in kinds:
            return events
        if "open" in kinds and opened_at is None:
            opened_at = time.monotonic()
        if opened_at is not None and time.monotonic() - opened_at >= watch:
            return events + [{"event": "held-open", "t_ms": events[-1].get("t_ms", 0)}]
        time.sleep(0.1)
    if not events:
        raise RuntimeError(f"the page opened no WebSocket to {url} in time")
    return events


@dataclass
class BrowserRun:
    """What one browser did with one URL."""

    name: str
    url: str = ""
    page: str = ""
    version: str = ""
    outcome: str = "not-run"  # served | held-open | abandoned | failed | not-run
    error: str | None = None
    handshake: dict[str, Any] = field(default_factory=dict)  # request, response, exact
    response_status: int | None = None
    frames: list[dict[str, Any]] = field(default_factory=list)  # direction, opcode, data, t_ms
    page_events: list[dict[str, Any]] = field(default_factory=list)
    close: dict[str, Any] | None = None
    console_errors: list[str] = field(default_factory=list)
    elapsed_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def binary(name: str) -> str | None:
    env, candidates = BINARIES[name]
    if os.environ.get(env):
        return shutil.which(os.environ[env])
    for c in candidates:
        found = shutil.which(c)
        if found:
            return found
    return None


def missing(name: str) -> str | None:
    if binary(name) is None:
        env, candidates = BINARIES[name]
        return f"{candidates[0]} not found (install it, or set {env})"
    return None


def _env(home: Path, marker: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "TMPDIR": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_RUNTIME_DIR": str(home), "LANG": "C.UTF-8", "DBUS_SESSION_BUS_ADDRESS": "disabled:",
            "MOZ_CRASHREPORTER_DISABLE": "1", "MOZ_HEADLESS": "1", "WSDIAG_BROWSER_RUN": marker}


def version_of(name: str) -> str:
    path = binary(name)
    if path is None:
        return "missing"
    return _version_of_binary(path)


@functools.lru_cache(maxsize=8)
def _version_of_binary(path: str) -> str:
    with tempfile.TemporaryDirectory(prefix="wsdiag-ver-") as home:
        try:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20,
                                 env=_env(Path(home), "version"), stdin=subprocess.DEVNULL,
                                 start_new_session=True)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"unknown ({exc})"
    return (out.stdout.strip() or out.stderr.strip()).splitlines()[-1] if (out.stdout or out.stderr) else "unknown"


@contextlib.contextmanager
def _launched(command: list[str], home: Path, marker: str) -> Iterator[subprocess.Popen]:
    """Start the browser through ``wsdiag.proc.spawn`` (own session, output drained, a mark
    in its environment that every descendant inherits) and always end it with
    ``wsdiag.proc.stop`` (the group, then any marked survivor such as Chromium's crashpad
    handler, which leaves the group), whatever happens inside the block."""
    from wsdiag import proc

    popen = proc.spawn(command, env=_env(home, marker), cwd=str(home))
    try:
        yield popen
    finally:
        proc.stop(popen, grace=KILL_GRACE)


def _log_tail(popen: subprocess.Popen) -> str:
    tail = getattr(popen, "tail", None)
    lines = [ln for ln in list(tail.lines) if ln.strip()] if tail is not None else []
    return " | ".join(lines[-3:])[-300:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Rpc:
    """A JSON-RPC-over-WebSocket client (CDP and BiDi share this shape); events are collected."""

    def __init__(self, url: str, deadline: float):
        import websocket  # websocket-client

        self.deadline = deadline
        self.ws = websocket.create_connection(url, timeout=max(deadline - time.monotonic(), 0.1),
                                              suppress_origin=True, http_proxy_host=None)
        self.events: list[tuple[float, dict]] = []
        self._id = 0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()

    def _recv(self, until: float) -> dict | None:
        import websocket

        left = min(until, self.deadline) - time.monotonic()
        if left <= 0:
            raise TimeoutError("the browser did not answer in time")
        self.ws.settimeout(left)
        try:
            return json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException:
            return None

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float | None = None) -> dict:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        until = time.monotonic() + (timeout if timeout is not None else 1e9)
        while True:
            m = self._recv(until)
            if m is None:
                raise TimeoutError(f"{method}: no answer in time")
            if m.get("id") == self._id:
                if "error" in m:
                    err = m["error"]
                    raise RuntimeError(f"{method}: {err.get('message', err) if isinstance(err, dict) else err}")
                return m.get("result") or {}
            self.events.append((time.monotonic(), m))

    def wait_event(self, name: str, timeout: float) -> dict | None:
        until = time.monotonic() + timeout
        for _, m in self.events:
            if m.get("method") == name:
                return m
        while time.monotonic() < until:
            try:
                m = self._recv(until)
            except TimeoutError:
                return None
            if m is None:
                return None
            self.events.append((time.monotonic(), m))
            if m.get("method") == name:
                return m
        return None


def _origin_page(url: str) -> str:
    scheme, rest = url.split("://", 1)
    host = rest.split("/", 1)[0]
    return f"{'https' if scheme == 'wss' else 'http'}://{host}/"


def _outcome(events: list[dict], status: int | None) -> tuple[str, dict | None]:
    """served (a message came back), held-open (open through the watch window), abandoned
    (101, then the server closed it), failed (never usable)."""
    kinds = [e["event"] for e in events]
    close = next((e for e in events if e["event"] == "close"), None)
    if "message" in kinds:
        return "served", close
    if "held-open" in kinds:
        return "held-open", close
    if "open" in kinds:
        return "abandoned", close
    if status == 101 and close is not None and close.get("code") != 1006:
        # Firefox skips onopen when the server's close frame follows the 101 at once; the
        # close code (1005/1000, not 1006) shows the handshake itself was accepted.
        return "abandoned", close
    return "failed", close


OK_OUTCOMES = ("served", "held-open")


def _frames_from_page(events: list[dict]) -> list[dict[str, Any]]:
    """Messages as the page saw them (text frames; the close the page received), marked as such."""
    out: list[dict[str, Any]] = []
    for e in events:
        if e.get("event") == "sent":
            out.append({"direction": "send", "opcode": 1, "data": str(e.get("data", "")), "t_ms": e.get("t_ms"),
                        "source": "page"})
        elif e.get("event") == "message":
            out.append({"direction": "receive", "opcode": 1, "data": str(e.get("data", "")), "t_ms": e.get("t_ms"),
                        "source": "page"})
        elif e.get("event") == "close" and e.get("by") == "server" and e.get("code") not in (1005, 1006, None):
            out.append({"direction": "receive", "opcode": 8, "data": f"{e.get('code')} {e.get('reason', '')}".strip(),
                        "t_ms": e.get("t_ms"), "source": "page"})
    return out


def run_browser(name: str, url: str, *, page: str | None = None, timeout: float = 30.0,
                watch: float = 1.0) -> BrowserRun:
    """Open ``url`` from ``name`` (chromium | firefox); always returns, bounded by ``timeout``."""
    run = BrowserRun(name=name, url=url, page=page or _origin_page(url))
    reason = missing(name)
    if reason:
        run.error = reason
        return run
    run.version = version_of(name)
    start = time.monotonic()
    deadline = start + timeout
    home = Path(tempfile.mkdtemp(prefix=f"wsdiag-{name}-"))
    marker = uuid.uuid4().hex
    try:
        if name == "chromium":
            _run_chromium(run, home, marker, deadline, watch, own_page=page is not None)
        else:
            _run_firefox(run, home, marker, deadline, watch, own_page=page is not None)
    except Exception as exc:  # any failure to drive the browser is reported, not raised
        run.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    finally:
        shutil.rmtree(home, ignore_errors=True)
        run.elapsed_ms = (time.monotonic() - start) * 1000.0
    if run.error is None:
        run.outcome, run.close = _outcome(run.page_events, run.response_status)
        if not run.frames:  # WebDriver BiDi reports no frames: the page's own view of them
            run.frames = _frames_from_page(run.page_events)
    return run


def _script_call(url: str, watch: float, total: float) -> str:
    return f"{PAGE_SCRIPT}({json.dumps(url)}, {int(watch * 1000)}, {int(total * 1000)})"


def _run_chromium(run: BrowserRun, home: Path, marker: str, deadline: float, watch: float,
                  own_page: bool = False) -> None:
    profile = home / "profile"
    profile.mkdir()
    cmd = [binary("chromium") or "chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
           "--remote-debugging-port=0", "about:blank"]
    with _launched(cmd, home, marker) as popen:
        port_file = profile / "DevToolsActivePort"
        while not port_file.exists() or len(port_file.read_text().splitlines()) < 2:
            if popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Chromium did not open its DevTools port " + ("in time" if popen.poll() is None
                                   else f"(exited {popen.returncode}): {_log_tail(popen)}"))
            time.sleep(0.05)
        port = int(port_file.read_text().splitlines()[0])
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://127.0.0.1:{port}/json/list", timeout=max(deadline - time.monotonic(), 0.1)) as r:
            targets = json.loads(r.read())
        page_ws = next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")
        rpc = _Rpc(page_ws, deadline)
        try:
            for domain in ("Network", "Runtime", "Log", "Page"):
                rpc.call(f"{domain}.enable")
            if own_page:
                rpc.call("Page.addScriptToEvaluateOnNewDocument", {"source": _hook_source(run.url)})
            t_script = time.monotonic()
            rpc.call("Page.navigate", {"url": run.page})
            rpc.wait_event("Page.loadEventFired", max(min(10.0, deadline - time.monotonic()), 0.1))
            if own_page:
                def read() -> list[dict]:
                    r = rpc.call("Runtime.evaluate", {"expression": READ_HOOK, "returnByValue": True})
                    v = (r.get("result") or {}).get("value")
                    return json.loads(v) if isinstance(v, str) else []

                run.page_events = _poll_hook(read, run.url, deadline, watch)
            else:
                total = max(min(deadline - time.monotonic() - 1.0, 15.0), 0.5)
                t_script = time.monotonic()
                res = rpc.call("Runtime.evaluate", {"expression": _script_call(run.url, watch, total),
                                                    "awaitPromise": True, "returnByValue": True})
                value = (res.get("result") or {}).get("value")
                run.page_events = json.loads(value) if isinstance(value, str) else []
            rpc.wait_event("Network.webSocketClosed", 0.3)
            _chromium_record(run, rpc.events, t_script)
        finally:
            rpc.close()


def _chromium_record(run: BrowserRun, events: list[tuple[float, dict]], t0: float) -> None:
    ws_id = None
    for t, m in events:
        method, p = m.get("method", ""), m.get("params") or {}
        if method == "Network.webSocketCreated" and p.get("url") == run.url and ws_id is None:
            ws_id = p.get("requestId")
        elif method == "Network.webSocketWillSendHandshakeRequest" and p.get("requestId") == ws_id:
            hdrs = (p.get("request") or {}).get("headers") or {}
            run.handshake.setdefault("request_headers", list(hdrs.items()))
        elif method == "Network.webSocketHandshakeResponseReceived" and p.get("requestId") == ws_id:
            resp = p.get("response") or {}
            run.response_status = resp.get("status")
            if resp.get("requestHeadersText"):
                # DevTools shows the request line in absolute form (GET ws://host/path); the
                # wire carries the origin form (GET /path): the header lines are as sent.
                text = resp["requestHeadersText"]
                line, sep, rest = text.partition("\r\n")
                parts = line.split(" ")
                if len(parts) == 3 and "://" in parts[1]:
                    after = parts[1].split("://", 1)[1]
                    parts[1] = "/" + after.split("/", 1)[1] if "/" in after else "/"
                run.handshake["request"] = " ".join(parts) + sep + rest
                run.handshake["exact"] = True
            if resp.get("headersText"):
                run.handshake["response"] = resp["headersText"]
            else:
                head = f"HTTP/1.1 {resp.get('status')} {resp.get('statusText', '')}\r\n"
                head += "".join(f"{k}: {v}\r\n" for k, v in (resp.get("headers") or {}).items())
                run.handshake["response"] = head + "\r\n"
        elif method in ("Network.webSocketFrameSent", "Network.webSocketFrameReceived") and p.get("requestId") == ws_id:
            fr = p.get("response") or {}
            run.frames.append({"direction": "send" if method.endswith("Sent") else "receive",
                               "opcode": fr.get("opcode"), "data": str(fr.get("payloadData", ""))[:500],
                               "t_ms": round((t - t0) * 1000, 2)})
        elif method == "Network.webSocketFrameError" and p.get("requestId") == ws_id:
            run.console_errors.append(f"frame error: {p.get('errorMessage')}")
        elif method == "Log.entryAdded":
            entry = p.get("entry") or {}
            # network errors of the page itself (its favicon, a 404 page) are not the socket's
            ours = entry.get("source") != "network" or run.url in str(entry.get("text", ""))
            if entry.get("level") == "error" and ours:
                run.console_errors.append(str(entry.get("text", ""))[:300])
        elif method == "Runtime.consoleAPICalled" and p.get("type") == "error":
            run.console_errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args") or [])[:300])
        elif method == "Runtime.exceptionThrown":
            run.console_errors.append(str((p.get("exceptionDetails") or {}).get("text", ""))[:300])
    if "request" not in run.handshake and run.handshake.get("request_headers"):
        path = "/" + run.url.split("://", 1)[1].split("/", 1)[1] if "/" in run.url.split("://", 1)[1] else "/"
        run.handshake["request"] = f"GET {path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in run.handshake["request_headers"]) + "\r\n"
        run.handshake["exact"] = False


def _firefox_user_js() -> str:
    def js(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        return json.dumps(str(v))

    return "".join(f"user_pref({js(k)}, {js(v)});\n" for k, v in FIREFOX_PREFS.items())


def _run_firefox(run: BrowserRun, home: Path, marker: str, deadline: float, watch: float,
                 own_page: bool = False) -> None:
    profile = home / "profile"
    profile.mkdir()
    (profile / "user.js").write_text(_firefox_user_js())
    port = _free_port()
    cmd = [binary("firefox") or "firefox-esr", "--headless", "--profile", str(profile), "--no-remote",
           f"--remote-debugging-port={port}", "about:blank"]
    with _launched(cmd, home, marker) as popen:
        rpc = None
        while rpc is None:
            if popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Firefox did not open its WebDriver BiDi port " + ("in time" if popen.poll() is None
                                   else f"(exited {popen.returncode}): {_log_tail(popen)}"))
            try:
                rpc = _Rpc(f"ws://127.0.0.1:{port}/session", deadline)
            except Exception:
                time.sleep(0.2)
        try:
            rpc.call("session.new", {"capabilities": {"alwaysMatch": {"acceptInsecureCerts": False}}})
            rpc.call("session.subscribe", {"events": ["network.beforeRequestSent", "network.responseCompleted",
                                                      "network.fetchError", "log.entryAdded"]})
            tree = rpc.call("browsingContext.getTree", {})
            ctx = tree["contexts"][0]["context"]
            if own_page:
                rpc.call("script.addPreloadScript", {"functionDeclaration": "() => {" + _hook_source(run.url) + "}"})
            rpc.call("browsingContext.navigate", {"context": ctx, "url": run.page, "wait": "complete"},
                     timeout=max(min(10.0, deadline - time.monotonic()), 0.1))
            if own_page:
                def read() -> list[dict]:
                    r = rpc.call("script.evaluate", {"expression": READ_HOOK, "target": {"context": ctx},
                                                     "awaitPromise": False})
                    v = (r.get("result") or {}).get("value")
                    return json.loads(v) if isinstance(v, str) else []

                run.page_events = _poll_hook(read, run.url, deadline, watch)
            else:
                total = max(min(deadline - time.monotonic() - 1.0, 15.0), 0.5)
                res = rpc.call("script.evaluate", {"expression": _script_call(run.url, watch, total),
                                                   "target": {"context": ctx}, "awaitPromise": True})
                value = (res.get("result") or {}).get("value")
                run.page_events = json.loads(value) if isinstance(value, str) else []
            rpc.wait_event("network.responseCompleted", 0.3)
            _firefox_record(run, rpc.events)
            with contextlib.suppress(Exception):
                rpc.call("session.end", {}, timeout=1.0)
        finally:
            rpc.close()


def _bidi_value(v: Any) -> str:
    if isinstance(v, dict):
        return str(v.get("value", ""))
    return str(v)


def _firefox_record(run: BrowserRun, events: list[tuple[float, dict]]) -> None:
    want = run.url.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
    request_id = None
    for _, m in events:
        method, p = m.get("method", ""), m.get("params") or {}
        req = p.get("request") or {}
        same = req.get("url") in (run.url, want)
        if method == "network.beforeRequestSent" and same and request_id is None:
            request_id = req.get("request")
            headers = [(h.get("name", ""), _bidi_value(h.get("value"))) for h in req.get("headers") or []]
            path = "/" + run.url.split("://", 1)[1].split("/", 1)[1] if "/" in run.url.split("://", 1)[1] else "/"
            run.handshake["request"] = f"{req.get('method', 'GET')} {path} HTTP/1.1\r\n" + "".join(
                f"{n}: {v}\r\n" for n, v in headers) + "\r\n"
            # WebDriver BiDi reports the request before Firefox's WebSocket channel sets
            # Upgrade/Connection/Pragma/Cache-Control: those lines are not yet what was sent
            # (network.responseCompleted, below, carries the final list when there is an answer).
            run.handshake["exact"] = False
            run.handshake["unreliable"] = sorted(FIREFOX_LATE_HEADERS)
        elif method == "network.responseCompleted" and req.get("request") == request_id and request_id:
            # Here the request carries the headers as finally sent, Upgrade/Connection included.
            headers = [(h.get("name", ""), _bidi_value(h.get("value"))) for h in req.get("headers") or []]
            if headers:
                path = "/" + run.url.split("://", 1)[1].split("/", 1)[1] if "/" in run.url.split("://", 1)[1] else "/"
                run.handshake["request"] = f"{req.get('method', 'GET')} {path} HTTP/1.1\r\n" + "".join(
                    f"{n}: {v}\r\n" for n, v in headers) + "\r\n"
                run.handshake["exact"] = False  # header lines as sent; request line rebuilt
                run.handshake.pop("unreliable", None)
            resp = p.get("response") or {}
            run.response_status = resp.get("status")
            head = f"{resp.get('protocol', 'HTTP/1.1').upper()} {resp.get('status')} {resp.get('statusText', '')}\r\n"
            head += "".join(f"{h.get('name')}: {_bidi_value(h.get('value'))}\r\n" for h in resp.get("headers") or [])
            run.handshake["response"] = head + "\r\n"
        elif method == "log.entryAdded" and p.get("level") == "error":
            run.console_errors.append(str(p.get("text", ""))[:300])


def run_browsers(names: list[str], url: str, **kw) -> list[BrowserRun]:
    return [run_browser(n, url, **kw) for n in names]
