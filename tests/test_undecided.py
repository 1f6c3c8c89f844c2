"""Failures black-box evidence cannot decide: the report says so and names the command that can,
and that command (``wsdiag probe --app``) then decides.  Both halves on real servers.

* FAILURES.md FM-20: a blueprint's before_request hooks never run when routing fails.  From
  outside, a hidden WebsocketMismatch looks like any other hidden failure; only the app's trace
  shows which hooks ran and which were skipped.
* FM-16: flask-sockets 0.2.1 (archived) on Werkzeug >= 2 registers its rules without
  websocket=True, so its own middleware raises WebsocketMismatch before Flask's routing.  From
  outside: 101 then close, and the plain GET is Flask's 404 (flask-sockets' routes are not Flask
  routes), so "no route matches" is a guess; the trace shows the exception leaving flask_sockets.
  flask-sockets is not a test dependency (it is archived and would change every gevent app):
  tests/matrix/mkvenvs.sh installs it on its own into $VENVS/flask-sockets, and CI runs this file
  with WSDIAG_REQUIRE_MATRIX_VENVS=1, which turns a missing install into a failure.
* FM-15 (Werkzeug < 2.0) needs a Werkzeug 1.0 environment: tests/matrix/test_undecided_matrix.py,
  run by ``nox -s matrix``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_failures import ROOT, start_stack

pytestmark = pytest.mark.timeout(90)
VENVS = Path(os.environ.get("VENVS", "/work/scratch/venvs"))
FLASK_SOCKETS = VENVS / "flask-sockets"


def cli(*args: str, pythonpath: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env["PYTHONPATH"] = os.pathsep.join((str(ROOT), *pythonpath))
    return subprocess.run([sys.executable, "-m", "wsdiag", *args], capture_output=True, text=True, timeout=75,
                          cwd=ROOT, env=env)


def report_of(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode in (0, 1), (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    (report,) = json.loads(proc.stdout)["reports"]
    return report


def assert_undecided_names_app(report: dict, *, not_code: str | None = None) -> dict:
    """The black-box half: a cause, never certain, which says how to decide: `wsdiag probe --app`."""
    lead = report["causes"][0]
    assert all(c["confidence"] != "certain" for c in report["causes"]), [(c["code"], c["confidence"]) for c in report["causes"]]
    assert "wsdiag probe --app" in lead["evidence"].get("decide_with", ""), lead
    if not_code:
        assert not_code not in [c["code"] for c in report["causes"]]
    return lead


def assert_decided(report: dict, code: str) -> dict:
    """The --app half: the leading cause is ``code``, certain, from the app's own trace."""
    lead = report["causes"][0]
    assert (lead["code"], lead["confidence"]) == (code, "certain"), [(c["code"], c["confidence"]) for c in report["causes"]]
    assert lead["evidence"]["source"] == "trace"
    assert "decide_with" not in lead["evidence"]
    return lead


# --- FM-20: blueprint hooks skipped when routing fails ----------------------------------------

def test_fm20_black_box_cannot_decide_and_names_probe_app():
    server = start_stack("gws", "fixtures.trace.blueprint")
    try:
        proc = cli("probe", "--format", "json", server.url("/api/ws"))
        human = cli("probe", server.url("/api/ws"))
    finally:
        server.stop()
    report = report_of(proc)
    lead = assert_undecided_names_app(report)
    assert lead["code"] == "WS601" and lead["confidence"] == "likely"
    # no stage path from outside: nothing claims to know which hooks ran
    assert all(r.get("stage_path") is None for r in report["results"])
    assert "to decide: wsdiag probe --app" in human.stdout, human.stdout


def test_fm20_probe_app_decides_and_names_the_skipped_blueprint_hook():
    proc = cli("probe", "--app", "fixtures.trace.blueprint:app", "--path", "/api/ws", "--path", "/api/live",
               "-p", "chrome,minimal", "--format", "json")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 1, proc.stderr
    by_path = {r["url"].split("/", 3)[3]: r for r in doc["reports"]}
    broken, healthy = by_path["api/ws"], by_path["api/live"]
    assert_decided(broken, "WS601")
    for r in broken["results"]:
        sp = r["stage_path"]
        assert sp["hooks_run"] == ["app:log_request"], sp
        assert sp["skipped_blueprint_hooks"] == ["api:require_token"], sp
        assert "skipped: blueprint before_request api:require_token" in sp["rendered"]
    # the same blueprint's websocket=True route: both hooks ran, the view served the socket
    assert healthy["ok"] and healthy["causes"] == []
    for r in healthy["results"]:
        assert r["stage_path"]["hooks_run"] == ["app:log_request", "api:require_token"], r["stage_path"]
        assert r["stage_path"]["skipped_blueprint_hooks"] == []


# --- FM-16: flask-sockets on Werkzeug >= 2 ----------------------------------------------------

@pytest.fixture(scope="module")
def flask_sockets() -> str:
    if not (FLASK_SOCKETS / "flask_sockets.py").exists():
        if os.environ.get("WSDIAG_REQUIRE_MATRIX_VENVS"):
            pytest.fail(f"flask-sockets not installed in {FLASK_SOCKETS}; .ci/run builds it with tests/matrix/mkvenvs.sh")
        pytest.skip(f"flask-sockets not installed in {FLASK_SOCKETS} (bash tests/matrix/mkvenvs.sh)")
    from importlib.metadata import version

    assert int(version("werkzeug").split(".")[0]) >= 2  # FM-16 is a Werkzeug >= 2 failure
    return str(FLASK_SOCKETS)


def test_fm16_black_box_cannot_decide_and_names_probe_app(flask_sockets):
    server = start_stack("gws", "fixtures.check.flask_sockets_app", pythonpath=(flask_sockets,))
    try:
        report = report_of(cli("probe", "--format", "json", server.url("/echo")))
        server_log = "\n".join(server.tail.lines)
    finally:
        server.stop()
    assert_undecided_names_app(report, not_code="WS503")  # nothing outside names flask-sockets
    counted = [r for r in report["results"] if r["counts"]]
    assert {r["verdict"] for r in counted} == {"abandoned"}  # 101, then closed: the FM-16 symptom
    assert "WebsocketMismatch" in server_log and "flask_sockets.py" in server_log  # the real failure


def test_fm16_probe_app_decides_flask_sockets(flask_sockets):
    proc = cli("probe", "--app", "fixtures.check.flask_sockets_app:app", "-p", "chrome,minimal", "--format", "json",
               pythonpath=(flask_sockets,))
    report = report_of(proc)
    lead = assert_decided(report, "WS503")
    assert lead["evidence"]["raised_in"] == "flask_sockets" and lead["evidence"]["exception"] == "WebsocketMismatch"
    assert lead["evidence"]["route"] == "/echo"
    assert [c["code"] for c in report["causes"]] == ["WS503"]  # the black-box guess (WS602) gave way
    for r in report["results"]:
        assert r["stage_path"]["app_exception_in"] == "flask_sockets" and r["stage_path"]["view"] is None
