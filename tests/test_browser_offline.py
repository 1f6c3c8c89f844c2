"""`probe --browser` and the profiles file without a browser: a missing browser is one line
(and WS857), a broken profiles file is one warning, a valid one replaces the profile."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from wsdiag.core.profiledata import ProfileDataError, profiles_from

pytestmark = pytest.mark.timeout(60)


def wsdiag(*args, env=None):
    return subprocess.run([sys.executable, "-m", "wsdiag", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_missing_browser_is_one_line_and_ws857(serve_app, tmp_path):
    url = serve_app("fixtures.apps.seed_fixed").url("/ws")
    out = wsdiag("probe", url, "--browser", "chromium", "--json", "--no-proxy",
                 env={"WSDIAG_CHROMIUM": str(tmp_path / "no-such-chromium"), "WSDIAG_PROFILES": str(tmp_path / "none")})
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip().count("\n") == 0 and "not found" in out.stderr, out.stderr
    doc = json.loads(out.stdout)
    (f,) = [f for f in doc["reports"][0]["facts"] if f["code"] == "WS857"]
    assert f["evidence"]["browser"] == "chromium" and doc["reports"][0]["browsers"][0]["outcome"] == "not-run"


def test_profiles_file_is_read_and_bad_files_warn(tmp_path):
    good = tmp_path / "p.json"
    good.write_text(json.dumps({"schema": "wsdiag.profiles/1", "profiles": [
        {"name": "chrome", "http_version": "HTTP/1.1", "source": "test capture 999",
         "headers": [["Host", "{host}"], ["Upgrade", "websocket"], ["Connection", "Upgrade"],
                     ["Sec-WebSocket-Key", "{key}"], ["Sec-WebSocket-Version", "13"], ["X-Test", "1"]]}]}))
    out = wsdiag("profiles", "--show", "chrome", env={"WSDIAG_PROFILES": str(good)})
    assert "X-Test: 1" in out.stdout and out.returncode == 0
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    out = wsdiag("profiles", "--show", "chrome", env={"WSDIAG_PROFILES": str(bad)})
    assert out.returncode == 0 and "X-Test" not in out.stdout
    assert out.stderr.count("\n") == 1 and "ignoring profiles file" in out.stderr
    with pytest.raises(ProfileDataError):
        profiles_from({"schema": "other"})


def test_page_usage_errors():
    out = wsdiag("probe", "ws://127.0.0.1:9/ws", "--page", "http://127.0.0.1:9/")
    assert out.returncode == 2 and "--page goes with --browser" in out.stderr
    out = wsdiag("probe", "ws://127.0.0.1:9/ws", "--browser", "chromium", "--page", "ftp://x")
    assert out.returncode == 2 and "not an http://" in out.stderr and "Traceback" not in out.stderr
