"""wsdiag check's advice per installed release, and the in-process verdicts on real old Werkzeug installs.

The second half runs `wsdiag check --app` inside the version-matrix virtualenvs
(tests/matrix/mkvenvs.sh, `$VENVS`, default /work/scratch/venvs) when they exist, and compares
with tests/matrix/FACTS.md; it is skipped where they were never built.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from wsdiag.check import advice

ROOT = Path(__file__).resolve().parent.parent
VENVS = Path(os.environ.get("VENVS", "/work/scratch/venvs"))
ALL = ("chrome", "firefox", "firefox-legacy", "websocket-client", "minimal")


@pytest.mark.parametrize("text,expected", [("2.0.1", (2, 0, 1)), ("3.1.0rc1", (3, 1, 0)), ("1.0", (1, 0)), ("", None), ("dev", None)])
def test_parse_version(text, expected):
    assert advice.parse_version(text) == expected


@pytest.mark.parametrize("werkzeug,needle,safe", [
    ("1.0.1", "Do not use websocket=True", False),
    ("2.0.0", "detects only 'Connection: Upgrade'", False),
    ("2.0.1", "detects only 'Connection: Upgrade'", False),
    ("2.0.2", "declare each WebSocket route with websocket=True", True),
    ("3.1.9", "declare each WebSocket route with websocket=True", True),
    (None, "not installed", False),
])
def test_environment_advice_is_true_for_the_release(werkzeug, needle, safe):
    lines = advice.environment_advice({"flask": "2.0.3", "werkzeug": werkzeug, "gevent-websocket": "0.10.1"})
    assert needle in lines[0]
    assert advice.release(werkzeug).websocket_true_safe is safe
    assert (advice.fix_refusal(advice.release(werkzeug)) is None) is safe


def run_in(venv: str, spec: str) -> dict:
    py = VENVS / venv / "bin" / "python"
    if not py.exists():
        if os.environ.get("WSDIAG_REQUIRE_MATRIX_VENVS"):
            pytest.fail(f"matrix virtualenv {venv} missing; .ci/run builds them with tests/matrix/mkvenvs.sh")
        pytest.skip(f"matrix virtualenv {venv} not built (tests/matrix/mkvenvs.sh)")
    r = subprocess.run([str(py), "-m", "wsdiag", "check", "--format", "json", "--app", spec], capture_output=True,
                       text=True, timeout=60, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode in (0, 1), r.stderr
    return json.loads(r.stdout)


def outcomes(doc) -> dict:
    (route,) = doc["routes"]
    return {p["profile"]: p["routing"] for p in route["profiles"]}


@pytest.mark.parametrize("venv,plain,ws", [
    # FACTS.md "Windows": 1.0.1 detects nothing; 2.0.0/2.0.1 only 'Upgrade'; >= 2.0.2 every real value
    ("f114-w101", (set(ALL), "WS509"), (set(), "WS706")),
    ("f201-w200", ({"firefox-legacy"}, "WS601"), (set(ALL) - {"firefox-legacy"}, "WS701")),
    ("f201-w201", ({"firefox-legacy"}, "WS601"), (set(ALL) - {"firefox-legacy"}, "WS701")),
    ("f203-w202", (set(), "WS601"), (set(ALL), None)),
    ("f313-w319", (set(), "WS601"), (set(ALL), None)),
])
def test_in_process_routing_matches_the_measured_facts(venv, plain, ws):
    """The installed Werkzeug routes each client's upgrade as FACTS.md measured it on a real server."""
    for spec, (reaching, code) in (("fixtures.check.seed_route:app", plain), ("fixtures.check.seed_fixed:app", ws)):
        doc = run_in(venv, spec)
        got = outcomes(doc)
        assert {n for n, r in got.items() if r == "match"} == reaching, (venv, spec, got)
        assert {n for n, r in got.items() if r != "match"} <= {n for n, r in got.items() if r == "WebsocketMismatch"}
        codes = [f["code"] for f in doc["findings"]]
        assert (code in codes) if code else codes == [], (venv, spec, codes)
