"""The streaming ``wsdiag check DIR`` judges routes with the project's pinned Werkzeug (``wsdiag.check.projpins``).

The file loop reports ``app.py`` before it reaches ``requirements.txt`` or ``poetry.lock``
(sorted walk), so the pins are read first: a project that pins or locks Werkzeug 2.0.1 must
never be shown a diff adding ``websocket=True`` (on 2.0.0/2.0.1 such a rule only matches
``Connection: Upgrade`` exactly and fails clients sending ``keep-alive, Upgrade``), in any
format, and the finding carries the same reason ``--diff``/``--fix`` give. A range that allows
the installed Werkzeug (>= 2.0.2 here) keeps the installed one: the diff is shown.

The advice for 2.0.1 (upgrade to >= 2.0.2, or register both rules for the view) is checked
against the real Werkzeug 2.0.1 of the version matrix (``/work/scratch/venvs``, as in
tests/test_check_versions.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wsdiag.check import pins
from wsdiag.check.advice import installed_versions

from tests.test_check_pins import RAW_ROUTE

ROOT = Path(__file__).resolve().parent.parent
VENVS = Path(os.environ.get("VENVS", "/work/scratch/venvs"))
ALL = ("chrome", "firefox", "firefox-legacy", "websocket-client", "minimal")
RAW_APP = RAW_ROUTE  # a raw gevent-websocket route without websocket=True (the same app as test_check_pins)
ADDED = '+@app.route("/ws", websocket=True)'  # the websocket=True diff line
LOCK = textwrap.dedent('''\
    [[package]]
    name = "flask"
    version = "2.0.1"

    [[package]]
    name = "werkzeug"
    version = "2.0.1"
    ''')
PROJECTS = {
    "requirements ==": {"requirements.txt": "flask==2.0.1\nwerkzeug==2.0.1\n"},
    "poetry.lock": {"pyproject.toml": '[tool.poetry.dependencies]\nflask = ">=2.0"\nwerkzeug = ">=2.0"\n',
                    "poetry.lock": LOCK},
    "range": {"requirements.txt": "werkzeug>=2.0\n"},
}
PINNED_201 = ("requirements ==", "poetry.lock")

pytestmark = pytest.mark.skipif((pins.version_tuple(installed_versions().get("werkzeug")) or (0,)) < (2, 0, 2),
                                reason="contrasts a Werkzeug 2.0.1 pin with the installed Werkzeug >= 2.0.2")


def wsdiag(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "wsdiag", *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200"))
    assert "Traceback" not in out.stderr, out.stderr
    return out


def project(tmp_path: Path, kind: str) -> Path:
    p = tmp_path / "proj"
    p.mkdir()
    (p / "app.py").write_text(RAW_APP)
    for name, text in PROJECTS[kind].items():
        (p / name).write_text(text)
    return p


def ws501(doc: dict) -> dict:
    (f,) = [f for f in doc["findings"] if f["code"] == "WS501"]
    return f


@pytest.mark.parametrize("kind", sorted(PROJECTS))
def test_stream_shows_the_diff_only_where_the_pinned_werkzeug_makes_it_right(tmp_path, kind):
    p = project(tmp_path, kind)
    pinned = kind in PINNED_201
    human = wsdiag("check", "--no-cache", "proj", cwd=tmp_path)
    doc = json.loads(wsdiag("check", "--no-cache", "--format", "json", "proj", cwd=tmp_path).stdout)
    github = wsdiag("check", "--no-cache", "--format", "github", "proj", cwd=tmp_path).stdout
    jsonl = wsdiag("check", "--no-cache", "--format", "jsonl", "proj", cwd=tmp_path).stdout
    f = ws501(doc)
    assert human.returncode == 1
    if pinned:
        where = "proj/requirements.txt:2" if kind == "requirements ==" else "proj/poetry.lock:7"
        # no websocket=True diff anywhere; the reason is the one --diff gives
        assert ADDED not in human.stdout and ADDED not in jsonl and f["diff"] is None, human.stdout
        refused = json.loads(wsdiag("check", "--no-cache", "--fix", "--format", "json", "proj", cwd=tmp_path).stdout)
        assert [x["applied"] for x in refused["fixes"]] == [False]
        assert f["fix_blocker"] == refused["fixes"][0]["reason"]
        assert f["fix_blocker"] in wsdiag("check", "--no-cache", "--diff", "proj", cwd=tmp_path).stderr
        assert f["fix_blocker"].startswith(f"the project pins werkzeug 2.0.1 ({where}")
        assert "would break clients sending 'keep-alive, Upgrade'" in f["fix_blocker"]
        assert wsdiag("check", "--no-cache", "--diff", "proj", cwd=tmp_path).stdout.strip() == ""
        # what to do on 2.0.1, in every format
        for text in (f["fix"], github, " ".join(human.stdout.split())):
            assert "Upgrade Werkzeug to >= 2.0.2 and add websocket=True" in text, text
            assert "register both rules for the view" in text
            assert "Add websocket=True to the rule" not in text
        assert "--fix will not change this: the project pins werkzeug 2.0.1" in " ".join(human.stdout.split())
        assert f"on Werkzeug 2.0.1 ({where}" in f["summary"] and "installed Werkzeug" not in f["summary"]
        # the header says which Werkzeug the advice is for and where it came from
        assert doc["advice"][0].startswith(f"Route advice is for Werkzeug 2.0.1, from the project's pins ({where}")
        assert "detects only 'Connection: Upgrade'" in doc["advice"][1]
        assert "Route advice is for Werkzeug 2.0.1" in " ".join(human.stdout.split())
        assert "Route advice is for Werkzeug 2.0.1" in jsonl.splitlines()[0]
        assert doc["versions"]["werkzeug"] == installed_versions()["werkzeug"]  # versions: still what is installed
    else:
        installed = installed_versions()["werkzeug"]
        assert ADDED in human.stdout and ADDED in f["diff"] and f["fix_blocker"] is None
        assert "Add websocket=True to the rule" in github and "Add websocket=True to the rule" in f["fix"]
        assert doc["advice"][0].startswith(f"Werkzeug {installed} (installed, allowed by proj/requirements.txt:1)")
        assert f"the installed Werkzeug {installed}" in f["summary"]
        assert ADDED in wsdiag("check", "--no-cache", "--diff", "proj", cwd=tmp_path).stdout
    assert (p / "app.py").read_text() == RAW_APP
    if not pinned:
        fixed = json.loads(wsdiag("check", "--no-cache", "--fix", "--format", "json", "proj", cwd=tmp_path).stdout)
        assert [x["applied"] for x in fixed["fixes"]] == [True] and ADDED[1:] in (p / "app.py").read_text()


def test_named_file_is_judged_with_its_projects_pins_unless_no_project_context(tmp_path):
    """pre-commit passes app.py alone: the pins at its project root decide; --no-project-context
    judges the file alone (no pin file among the named files: the installed Werkzeug)."""
    p = project(tmp_path, "requirements ==")
    (p / "pyproject.toml").write_text('[project]\nname = "chat"\nversion = "1"\n')
    sub = wsdiag("check", "--no-cache", "--format", "json", "app.py", cwd=p)
    f = ws501(json.loads(sub.stdout))
    assert f["diff"] is None and "requirements.txt:2" in f["fix_blocker"]
    fix = wsdiag("check", "--no-cache", "--fix", "--format", "json", "app.py", cwd=p)  # the wsdiag-check-fix hook
    assert json.loads(fix.stdout)["fixes"][0]["applied"] is False and (p / "app.py").read_text() == RAW_APP
    alone = ws501(json.loads(wsdiag("check", "--no-cache", "--no-project-context", "--format", "json", "app.py",
                                    cwd=p).stdout))
    assert ADDED in alone["diff"] and alone["fix_blocker"] is None


def test_the_cache_keys_the_pinned_werkzeug(tmp_path):
    """app.py's cached facts were judged with the pinned release: a changed pin must not reuse them."""
    p = project(tmp_path, "requirements ==")
    cache = tmp_path / "cache"

    def diff() -> str | None:
        out = wsdiag("check", "--cache-dir", str(cache), "--format", "json", "proj", cwd=tmp_path)
        return ws501(json.loads(out.stdout))["diff"]

    assert diff() is None and diff() is None
    (p / "requirements.txt").write_text("flask==2.0.3\nwerkzeug==2.0.3\n")
    assert ADDED in (diff() or "")
    (p / "requirements.txt").write_text("flask==2.0.1\nwerkzeug==2.0.1\n")
    assert diff() is None


def test_included_requirements_file_decides_before_the_loop(tmp_path):
    """requirements.txt -r's a file the walk reaches after app.py (and that is not a pin file by name)."""
    p = project(tmp_path, "range")
    (p / "requirements.txt").write_text("-r pins/deploy.lst\n")
    (p / "pins").mkdir()
    (p / "pins" / "deploy.lst").write_text("werkzeug==2.0.1\n")
    f = ws501(json.loads(wsdiag("check", "--no-cache", "--format", "json", "proj", cwd=tmp_path).stdout))
    assert f["diff"] is None and "proj/pins/deploy.lst:1" in f["fix_blocker"]


# -- the 2.0.1 advice, on the real Werkzeug 2.0.1 --------------------------------------------------


def test_the_advice_for_werkzeug_201_holds_on_the_real_201(tmp_path):
    """The advice says: on 2.0.1 register both rules for the view (or upgrade). On the real Werkzeug
    2.0.1 a plain rule fails the clients sending 'Upgrade', a websocket=True rule the legacy Firefox,
    and both rules together route every client to a rule of the view."""
    py = VENVS / "f201-w201" / "bin" / "python"
    if not py.exists():
        if os.environ.get("WSDIAG_REQUIRE_MATRIX_VENVS"):
            pytest.fail(f"matrix virtualenv {py} missing; .ci/run builds them with tests/matrix/mkvenvs.sh")
        pytest.skip("matrix virtualenv f201-w201 not built (tests/matrix/mkvenvs.sh)")
    (tmp_path / "both_app.py").write_text(RAW_APP.replace('@app.route("/ws")\n',
                                                          '@app.route("/ws", websocket=True)\n'
                                                          '@app.route("/ws", endpoint="ws_plain")\n'))
    (tmp_path / "plain_app.py").write_text(RAW_APP)

    def routed(module: str) -> dict:
        r = subprocess.run([str(py), "-m", "wsdiag", "check", "--format", "json", "--app", f"{module}:app"],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path,
                           env=dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{tmp_path}"))
        doc = json.loads(r.stdout)
        assert doc["versions"]["werkzeug"] == "2.0.1"
        reached: dict = {}
        for route in doc["routes"]:
            for prof in route["profiles"]:
                reached[prof["profile"]] = reached.get(prof["profile"], False) or prof["routing"] == "match"
        return reached

    assert routed("plain_app") == {n: n == "firefox-legacy" for n in ALL}
    assert routed("both_app") == {n: True for n in ALL}


def test_each_app_of_a_monorepo_is_judged_with_its_own_pins(tmp_path):
    """A pin decides the files of its directory and below, not a sibling app's: --fix edits the
    unpinned app only, and the streamed findings say so before any pin file is reached."""
    for name in ("a", "b"):
        (tmp_path / "mono" / name).mkdir(parents=True)
        (tmp_path / "mono" / name / "app.py").write_text(RAW_APP)
    (tmp_path / "mono" / "b" / "requirements.txt").write_text("werkzeug==2.0.1\n")
    doc = json.loads(wsdiag("check", "--no-cache", "--format", "json", "mono", cwd=tmp_path).stdout)
    by = {f["file"]: f for f in doc["findings"] if f["code"] == "WS501"}
    assert ADDED in by["mono/a/app.py"]["diff"] and by["mono/a/app.py"]["fix_blocker"] is None
    assert by["mono/b/app.py"]["diff"] is None and "mono/b/requirements.txt:1" in by["mono/b/app.py"]["fix_blocker"]
    fixed = json.loads(wsdiag("check", "--no-cache", "--fix", "--format", "json", "mono", cwd=tmp_path).stdout)
    assert sorted((x["file"], x["applied"]) for x in fixed["fixes"]) == [("mono/a/app.py", True), ("mono/b/app.py", False)]
    assert (tmp_path / "mono" / "b" / "app.py").read_text() == RAW_APP
