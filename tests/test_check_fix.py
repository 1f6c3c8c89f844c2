"""wsdiag check --fix / --diff: exact-span edits, refusals with reasons, and a fixed app that really serves."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import READY, ROOT, Served
from wsdiag.cli import main
from wsdiag.core.findings import Verdict
from wsdiag.proc import wait_ready

pytestmark = pytest.mark.timeout(60)
CHECK = ROOT / "fixtures" / "check"
WERKZEUG = tuple(int(x) for x in version("werkzeug").split(".")[:3])


def run(*args):
    return CliRunner().invoke(main, ["check", *args], catch_exceptions=False)


@pytest.fixture
def seed_copy(tmp_path):
    """fixtures/check/seed_route.py copied to a module name of its own in a temporary directory."""
    dst = tmp_path / "seed_route_copy.py"
    shutil.copy(CHECK / "seed_route.py", dst)
    return dst


def serve(module: str, extra_path: Path) -> Served:
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=f"{ROOT}{os.pathsep}{extra_path}")
    proc = subprocess.Popen([sys.executable, "-m", "fixtures.serve", module], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    host, port = wait_ready(proc, READY, 20)
    return Served(proc, host, port)


def probe_verdicts(url: str) -> set:
    from wsdiag.net.probe import ProbeOptions, probe
    from wsdiag.core.profiles import resolve
    from wsdiag.net.transport import Settings

    (report,) = probe([url], ProbeOptions(resolve(["default"]), Settings(timeout=5, watch=1.0, use_env_proxy=False)))
    return {r.verdict for r in report.results}


@pytest.mark.skipif(WERKZEUG < (2, 0, 2), reason="websocket=True is the fix only from Werkzeug 2.0.2 on")
def test_fix_turns_the_broken_seed_into_an_app_every_client_uses(seed_copy):
    """Before: every client is abandoned after the 101. --fix, then check passes and every client is serviced."""
    before_text = seed_copy.read_text(encoding="utf-8")
    broken = serve(seed_copy.stem, seed_copy.parent)
    try:
        assert probe_verdicts(broken.url("/ws")) == {Verdict.ABANDONED}
    finally:
        broken.stop()
    r = run("--fix", str(seed_copy))
    assert r.exit_code == 0, r.output
    assert "applied" in r.output
    after_text = seed_copy.read_text(encoding="utf-8")
    assert after_text == before_text.replace("@app.route('/ws')\n", "@app.route('/ws', websocket=True)\n", 1)
    assert run(str(seed_copy)).exit_code == 0
    sys.modules.pop(seed_copy.stem, None)
    fixed = serve(seed_copy.stem, seed_copy.parent)
    try:
        assert probe_verdicts(fixed.url("/ws")) == {Verdict.SERVICED}
    finally:
        fixed.stop()


def test_diff_prints_the_edit_and_changes_nothing(seed_copy):
    before = seed_copy.read_bytes()
    r = run("--diff", str(seed_copy))
    assert r.exit_code == 1  # the findings are still there
    assert "-@app.route('/ws')\n+@app.route('/ws', websocket=True)\n" in r.output
    assert r.output.startswith("--- a/")
    assert seed_copy.read_bytes() == before


def test_fix_refuses_unsafe_routes_and_says_why(tmp_path):
    """Page view, two rules, **options, POST-only: nothing is written, each refusal has its reason."""
    dst = tmp_path / "page_app.py"
    shutil.copy(CHECK / "page_app.py", dst)
    before = dst.read_bytes()
    r = run("--fix", "--format", "json", str(dst))
    assert r.exit_code == 1
    import json

    fixes = json.loads(r.stdout)["fixes"]
    assert len(fixes) == 5 and not any(f["applied"] for f in fixes)
    reasons = " | ".join(f["reason"] for f in fixes)
    for needle in ("plain HTTP pages", "2 rules", "**options", "POST"):
        assert needle in reasons
    assert dst.read_bytes() == before


def test_fix_refuses_on_werkzeug_before_2_0_2(seed_copy):
    """With Werkzeug 2.0.1 installed (injected), websocket=True would break older Firefox: refused."""
    from wsdiag.check.run import CheckOptions, run_check

    before = seed_copy.read_bytes()
    versions = {"flask": "2.0.1", "werkzeug": "2.0.1", "gevent-websocket": "0.10.1"}
    res = run_check(CheckOptions(paths=[str(seed_copy)], fix=True, versions=versions))
    (fx,) = res.report.fixes
    assert not fx.applied and "2.0.1" in fx.reason and "keep-alive, Upgrade" in fx.reason
    assert seed_copy.read_bytes() == before
    res = run_check(CheckOptions(paths=[str(seed_copy)], fix=True, versions=dict(versions, werkzeug="1.0.1")))
    assert res.report.fixes == [] and [f.code for f in res.report.findings] == ["WS509"]


def test_fix_in_app_mode_edits_the_views_source(tmp_path, monkeypatch):
    """--app --fix: the in-process finding (WS601) points at the decorator, which gets websocket=True."""
    pkg = tmp_path / "fixapp_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    shutil.copy(CHECK / "seed_route.py", pkg / "views.py")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    r = run("--app", "fixapp_pkg.views:app", "--fix")
    assert r.exit_code == 0, r.output
    assert "@app.route('/ws', websocket=True)" in (pkg / "views.py").read_text(encoding="utf-8")
