"""`wsdiag check` and `flask wsdiag check` as users and CI run them: outputs, exit statuses, one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from wsdiag.cli import main

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parent.parent
SEEDS = {name: f"fixtures/check/{name}.py" for name in ("seed_route", "seed_hook", "seed_fixed")}


def _runner() -> CliRunner:
    """A runner whose result.stdout is stdout only (click < 8.2 mixes stderr in by default)."""
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 always keeps them apart
        return CliRunner()


def run(*args, env=None):
    return _runner().invoke(main, ["check", *args], catch_exceptions=False, env=env)


def test_the_three_seed_variants():
    """Flags the route (exit 1), reports the hook as a warning with the fix (exit 0), passes the fix (exit 0).

    Each file alone: fixtures/check/deploy's Procfile and scripts serve the code of fixtures/check,
    so in its project (the default; tests/test_check_context.py) each seed also gets their findings."""
    route = run("--no-project-context", SEEDS["seed_route"])
    assert route.exit_code == 1
    assert "WS501" in route.output and "@app.route('/ws')" in route.output
    assert "+@app.route('/ws', websocket=True)" in route.output
    hook = run("--no-project-context", SEEDS["seed_hook"])
    assert hook.exit_code == 0 and "WS502" in hook.output and "before_request" in hook.output
    assert '@app.route("/ws", websocket=True)' in hook.output
    assert run("--no-project-context", "--fail-on", "warning", SEEDS["seed_hook"]).exit_code == 1
    fixed = run("--no-project-context", SEEDS["seed_fixed"])
    assert fixed.exit_code == 0 and "No WebSocket problems found" in fixed.output


def test_app_mode_shows_each_clients_outcome():
    r = run("--app", "fixtures.check.seed_route:app")
    assert r.exit_code == 1
    assert "WS601" in r.output and "chrome → hidden 400" in r.output and "✗ 400" in r.output
    assert "Werkzeug" in r.output.splitlines()[0] or "Werkzeug" in r.output.splitlines()[1]


def test_json_is_the_versioned_document():
    r = run("--format", "json", "fixtures/check")
    doc = json.loads(r.stdout)
    assert doc["schema"] == "wsdiag.check/1" and doc["mode"] == "static" and doc["ok"] is False
    assert doc["exit_status"] == r.exit_code == 1
    assert set(doc["versions"]) >= {"flask", "werkzeug", "gevent-websocket"}
    f = next(f for f in doc["findings"] if f["file"] == "fixtures/check/seed_route.py")
    assert (f["code"], f["line"], f["column"], f["source"]) == ("WS501", 21, 2, "@app.route('/ws')")
    assert f["fix"] and f["diff"]
    codes = {f["code"] for f in doc["findings"]}
    assert codes >= {"WS501", "WS502", "WS503", "WS504", "WS505", "WS506", "WS507"}


def test_fail_on_and_output_file(tmp_path):
    out = tmp_path / "report.json"
    r = run("--format", "json", "--output", str(out), "--fail-on", "never", "--no-project-context", SEEDS["seed_route"])
    assert r.exit_code == 0 and r.stdout == ""
    assert json.loads(out.read_text())["findings"][0]["code"] == "WS501"
    assert "Report written to" in r.stderr
    human = tmp_path / "report.txt"
    assert run("--output", str(human), SEEDS["seed_route"]).exit_code == 1
    assert "WS501" in human.read_text() and "\x1b[" not in human.read_text()


def test_github_annotations():
    r = run("--format", "github", SEEDS["seed_route"], SEEDS["seed_hook"])
    lines = r.stdout.splitlines()
    assert lines[0].startswith("::warning file=fixtures/check/seed_hook.py,line=37,endLine=37,col=2,")
    assert lines[1].startswith("::error file=fixtures/check/seed_route.py,line=21,endLine=21,col=2,endColumn=18,title=WS501 socket-route-not-websocket::")
    assert all("\n" not in ln for ln in lines) and "%0Afix: " in lines[1]


def test_no_path_scans_the_current_directory_and_flask_app_selects_app_mode(tmp_path, monkeypatch):
    shutil.copy(ROOT / SEEDS["seed_route"], tmp_path / "app.py")
    monkeypatch.chdir(tmp_path)
    r = run("--format", "json")
    assert [f["file"] for f in json.loads(r.stdout)["findings"]] == ["app.py"]
    monkeypatch.syspath_prepend(str(tmp_path))
    r = run("--format", "json", env={"FLASK_APP": "app:app"})
    doc = json.loads(r.stdout)
    assert doc["mode"] == "app" and doc["app"] == "app:app" and doc["findings"][0]["code"] == "WS601"


@pytest.mark.parametrize("args,status,needle", [
    (["fixtures/check/nope.py"], 2, "no such file or directory: fixtures/check/nope.py"),
    (["--app", "fixtures.check.factory_error:create_app()"], 3, "RuntimeError: DATABASE_URL is not set"),
    (["--app", "fixtures.check.methods_app"], 3, "ValueError: WebSocket rules can only use"),
    (["--app", "fixtures.check.seed_route", "-p", "netscape"], 2, "unknown profile"),
    (["--format", "xml", "."], 2, "'xml' is not one of"),
])
def test_errors_are_one_line_with_documented_status(args, status, needle):
    """Subprocess, as CI runs it: 2 for bad input, 3 when the app cannot be loaded; no traceback."""
    r = subprocess.run([sys.executable, "-m", "wsdiag", "check", *args], capture_output=True, text=True, timeout=30,
                       cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == status, (r.stdout, r.stderr)
    assert needle in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_help_documents_exit_statuses_and_stays_light():
    """`wsdiag check --help` lists the statuses and imports neither Flask nor rich."""
    code = ("import sys; from click.testing import CliRunner; from wsdiag.cli import main; "
            "r = CliRunner().invoke(main, ['check', '--help']); print(r.output); "
            "print(sorted(m for m in ('flask','gevent','rich','werkzeug') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, cwd=ROOT).stdout
    assert "Exit statuses" in out and "3 wsdiag could not run" in out and "--fix" in out and "sarif" in out
    assert out.strip().endswith("[]")


def test_flask_cli_plugin_runs_check_on_flasks_app():
    """`flask --app MODULE wsdiag check` (entry point flask.commands) checks the app Flask loaded."""
    flask = shutil.which("flask", path=os.path.dirname(sys.executable)) or shutil.which("flask")

    if not any(ep.name == "wsdiag" for ep in _group("flask.commands")):
        pytest.skip("wsdiag is not installed with its entry points (pip install -e .)")
    r = subprocess.run([flask, "--app", "fixtures.check.seed_route", "wsdiag", "check", "--format", "json"],
                       capture_output=True, text=True, timeout=30, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["mode"] == "app" and [f["code"] for f in doc["findings"]] == ["WS601"]


def test_entry_points_are_declared():
    """pyproject registers `flask wsdiag` (flask.commands) and the pytest plugin (pytest11)."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11: tomli, from the test extra
        import tomli as tomllib
    eps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert eps["flask.commands"]["wsdiag"] == "wsdiag.flask_command:wsdiag"
    assert eps["pytest11"]["wsdiag"] == "wsdiag.pytest_plugin"


def test_pre_commit_hooks_run_wsdiag_check():
    yaml = pytest.importorskip("yaml")
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert hooks["wsdiag-check"]["entry"] == "wsdiag check" and hooks["wsdiag-check-fix"]["entry"] == "wsdiag check --fix"
    assert all({"id", "name", "entry", "language"} <= set(h) for h in hooks.values())
    import re

    files = re.compile(hooks["wsdiag-check"]["files"])
    assert all(files.search(p) for p in ("app.py", "deploy/Procfile", "Dockerfile", "ci.yml", "run.sh"))
    assert not files.search("README.md")


def _group(name: str):
    """Entry points of one group, on Python 3.9 (dict API) and 3.10+ (select)."""
    from importlib.metadata import entry_points

    eps = entry_points()
    return eps.select(group=name) if hasattr(eps, "select") else eps.get(name, [])
