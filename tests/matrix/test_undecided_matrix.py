"""FAILURES.md FM-15 in every matrix environment: a websocket=True route under gevent-websocket.

Run by ``nox -s matrix`` (once per Flask/Werkzeug pair).  On Werkzeug < 2.0 the rule never
matches (Werkzeug 1.0 takes websocket mode from ``url_scheme``, which no WSGI server sets):
from outside that is 101 then close, which the black-box report cannot tell from a view that
returns at once, so it says it has not decided and names ``wsdiag probe --app``; that command,
run in the same environment, decides (WS706, certain, from the app's trace).  On Werkzeug >= 2
the same app is healthy, and both commands say so.
"""

from __future__ import annotations

from importlib.metadata import version

import pytest

from tests.test_failures import start_stack
from tests.test_undecided import assert_decided, assert_undecided_names_app, cli, report_of

pytestmark = [pytest.mark.matrix, pytest.mark.timeout(120)]
WERKZEUG = version("werkzeug")
OLD = int(WERKZEUG.split(".")[0]) < 2
# Werkzeug 2.0.0/2.0.1 detect websocket mode only from 'Connection: Upgrade' exactly (another
# failure, WS701, checked by test_matrix.py): there the firefox-legacy profile fails.
SPLIT = WERKZEUG in ("2.0.0", "2.0.1")


def test_fm15_black_box():
    server = start_stack("gws", "fixtures.trace.seed_fixed")  # this environment's Flask/Werkzeug
    try:
        report = report_of(cli("probe", "--format", "json", server.url("/ws")))
    finally:
        server.stop()
    counted = [r for r in report["results"] if r["counts"]]
    if OLD:
        assert {r["verdict"] for r in counted} == {"abandoned"}, WERKZEUG
        assert_undecided_names_app(report)
        assert "WS706" in [c["code"] for c in report["causes"]]  # among the possible causes, not certain
    elif SPLIT:
        assert report["causes"][0]["code"] == "WS701", [c["code"] for c in report["causes"]]
        assert {r["profile"] for r in counted if r["verdict"] != "serviced"} == {"firefox-legacy"}
    else:
        assert report["ok"] and report["causes"] == [], (WERKZEUG, [c["code"] for c in report["causes"]])
        assert {r["verdict"] for r in counted} == {"serviced"}


def test_fm15_probe_app_decides():
    report = report_of(cli("probe", "--app", "fixtures.trace.seed_fixed:app", "-p", "chrome,minimal", "--format", "json"))
    if OLD:
        lead = assert_decided(report, "WS706")
        assert lead["evidence"]["werkzeug"] == WERKZEUG
        for r in report["results"]:
            assert r["stage_path"]["routing_exception"] == "WebsocketMismatch", r["stage_path"]
            assert r["stage_path"]["detected_websocket"] is False and r["stage_path"]["view"] is None
    else:
        assert report["ok"] and report["causes"] == [], (WERKZEUG, [c["code"] for c in report["causes"]])
        assert all(r["stage_path"]["reached"] == "view" for r in report["results"])
