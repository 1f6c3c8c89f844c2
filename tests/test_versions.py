"""versions.py against reality: the measured facts of ten releases, and the installed one live."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import pytest

from wsdiag.core.findings import Verdict
from wsdiag.net.probe import ProbeOptions, probe
from wsdiag.core.profiles import PROFILES
from wsdiag.net.transport import Settings
from wsdiag.core.versions import DETECTION, connection_window, detection_for

FACTS = sorted((Path(__file__).resolve().parent / "matrix" / "facts").glob("*.json"))
VALUES = ["Upgrade", "upgrade", "keep-alive, Upgrade", "Upgrade, keep-alive", "keep-alive,Upgrade", "Keep-Alive, Upgrade"]


def vtuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".")[:3] if p.isdigit())


@pytest.mark.parametrize("path", FACTS, ids=lambda p: p.stem)
def test_detection_table_predicts_every_measured_release(path):
    """For each release measured by tests/matrix/routefacts.py, DETECTION predicts what Werkzeug did."""
    facts = json.loads(path.read_text())
    det = detection_for(vtuple(facts["versions"]["werkzeug"]))
    assert det is not None
    checked = 0
    for obs in facts["observations"]:
        if obs.get("kind") != "ws" or obs.get("path") not in ("/plain", "/wsrule"):
            continue
        server = obs.get("server") or {}
        if "werkzeug_detected_websocket" not in server:
            continue
        assert server["werkzeug_detected_websocket"] == det.detects(obs["connection"]), (path.stem, obs["connection"])
        # The consequence users see: a plain rule is served only when not detected,
        # a websocket=True rule only when detected.
        served = obs.get("echo") is not None
        expected = (not det.detects(obs["connection"])) if obs["path"] == "/plain" else det.detects(obs["connection"])
        assert served == expected, (path.stem, obs["path"], obs["connection"])
        checked += 1
    assert checked >= 8


def test_facts_cover_every_detection_row():
    releases = {json.loads(p.read_text())["versions"]["werkzeug"] for p in FACTS}
    for row in DETECTION:
        assert any(detection_for(vtuple(r)) is row for r in releases), row.releases


def test_connection_window_names_the_exact_match_releases():
    """Chrome fails and old Firefox works on a plain rule only on 2.0.0-2.0.1; reversed for websocket=True."""
    assert connection_window(["Upgrade"], ["keep-alive, Upgrade"], route_is_websocket=False).releases == "2.0.0 - 2.0.1"
    assert connection_window(["keep-alive, Upgrade"], ["Upgrade"], route_is_websocket=True).releases == "2.0.0 - 2.0.1"
    assert connection_window(["keep-alive, Upgrade"], ["Upgrade"], route_is_websocket=False).releases == "unknown"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("module,plain_rule", [("fixtures.apps.seed_route", True), ("fixtures.apps.seed_fixed", False)])
def test_installed_werkzeug_behaves_as_the_table_says(serve_app, module, plain_rule):
    """Live: for each Connection value, the installed release serves or abandons as predicted."""
    det = detection_for(vtuple(version("werkzeug")))
    url = serve_app(module).url("/ws")
    for value in VALUES:
        opts = ProbeOptions([PROFILES["minimal"]], Settings(timeout=5, watch=1, use_env_proxy=False),
                            extra_headers=(("Connection", value),), controls=False)
        (report,) = probe([url], opts)
        served = report.results[0].verdict is Verdict.SERVICED
        assert served == (det.detects(value) != plain_rule), value
        assert report.results[0].verdict in (Verdict.SERVICED, Verdict.ABANDONED)
