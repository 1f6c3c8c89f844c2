"""`wsdiag check CHANGED...` judges the changed files inside their project (what pre-commit runs).

The invariant: the findings of `wsdiag check CHANGED...` are the findings of `wsdiag check ROOT`
that concern CHANGED (`wsdiag.check.context.concerns`: located in a changed file, or a project
finding whose deciding files or evidence involve a changed file). Each repository below is a small,
realistic project in a temporary directory; each test also shows that without the project context
the verdict differs (the gap this closes), so the tests can fail.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from wsdiag.check import context as _context
from wsdiag.check import rules as _rules
from wsdiag.check import static as _static
from wsdiag.check.run import CheckOptions, display_path, run_check
from wsdiag.cli import main

pytestmark = pytest.mark.timeout(120)

FLASK_SOCK_APP = '''\
from flask import Flask
from flask_sock import Sock

app = Flask(__name__)
sock = Sock(app)


@sock.route("/echo")
def echo(ws):
    while True:
        ws.send(ws.receive())
'''

RAW_APP = '''\
from flask import Flask, request

app = Flask(__name__)


@app.route("/ws", websocket=True)
def ws():
    sock = request.environ["wsgi.websocket"]
    while True:
        message = sock.receive()
        if message is None:
            break
        sock.send(message)
    return ""
'''

FLASK_SOCKETS_APP = '''\
from flask import Flask
from flask_sockets import Sockets

app = Flask(__name__)
sockets = Sockets(app)


@sockets.route("/echo")
def echo(ws):
    while not ws.closed:
        ws.send(ws.receive())
'''

# a launcher whose app serves sockets only through a helper module of the project
LAUNCHER_APP = '''\
from flask import Flask

from chat.ws_helpers import serve_socket

app = Flask(__name__)


@app.route("/ws", websocket=True)
def ws():
    return serve_socket()


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=5000)
'''

HELPER_MODULE = '''\
from flask import request


def serve_socket():
    sock = request.environ["wsgi.websocket"]
    while True:
        message = sock.receive()
        if message is None:
            return ""
        sock.send(message)
'''

GUNICORN_GOOD_WORKER_CONF = '''\
bind = "0.0.0.0:8000"
workers = 1
worker_class = "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"
'''


def write(root: Path, files: dict) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("/"):
            path.mkdir(exist_ok=True)
        else:
            path.write_text(text, encoding="utf-8")
    return root


def key(f) -> tuple:
    loc = f.location
    return (f.code, loc.file if loc else None, loc.line if loc else None, loc.column if loc else None,
            json.dumps(f.wire_evidence(), sort_keys=True, default=str))


def check(paths, context=True, cache_dir=None, info=None, **kw):
    opts = CheckOptions(paths=[str(p) for p in paths], project_context=context, use_cache=cache_dir is not None,
                        cache_dir=str(cache_dir) if cache_dir else None, context_info=info, **kw)
    return run_check(opts).report


def root_view(root, changed: set) -> list:
    """`check ROOT`'s findings restricted to those that concern ``changed`` (display paths)."""
    report = check([root])
    scans = []
    for raw, _named in _static.iter_files([str(root)]):
        scans.append(_static.scan_file(display_path(raw), Path(raw).read_text(encoding="utf-8"), False))
    summaries = [_rules.summary(s) for s in scans]
    project = _rules.project_findings(summaries, report.versions.get("werkzeug"), report.versions)
    keep = {key(f) for f in _context.concerns(project, summaries, changed, report.versions)}
    assert {key(f) for f in project} <= {key(f) for f in report.findings}  # the same project rules ran
    return sorted(k for k in map(key, report.findings) if k[1] in changed or k in keep)


def assert_invariant(root, changed: list) -> list:
    """`check CHANGED` == `check ROOT` restricted to CHANGED; returns the findings' keys."""
    got = sorted(map(key, check(changed).findings))
    assert got == root_view(root, {display_path(str(p)) for p in changed})
    return got


def codes_at(keys) -> list:
    return sorted((k[0], k[1]) for k in keys)


# -- the four projects of the brief ---------------------------------------------------------


def test_procfile_sync_worker_and_a_changed_flask_sock_app(tmp_path, monkeypatch):
    repo = write(tmp_path / "chat", {"pyproject.toml": '[project]\nname = "chat"\n', "app.py": FLASK_SOCK_APP,
                                     "Procfile": "web: gunicorn app:app --bind 0.0.0.0:$PORT\n"})
    monkeypatch.chdir(repo)
    got = assert_invariant(".", ["app.py"])
    assert codes_at(got) == [("WS513", "Procfile")]  # flask-sock on gunicorn's one-thread sync worker
    assert check(["app.py"], context=False).findings == []  # alone, app.py cannot see the Procfile
    # the Procfile changed instead: the same finding, from the other side
    assert codes_at(assert_invariant(".", ["Procfile"])) == [("WS513", "Procfile")]


def test_gunicorn_conf_with_geventwebsocket_worker_and_a_flask_sock_app_in_a_git_repo(tmp_path, monkeypatch):
    repo = write(tmp_path / "svc", {".git/": "", "src/app.py": FLASK_SOCK_APP,
                                    "gunicorn.conf.py": GUNICORN_GOOD_WORKER_CONF, "README.md": "chat\n"})
    monkeypatch.chdir(repo)
    got = assert_invariant(".", ["src/app.py"])
    assert codes_at(got) == [("WS512", "gunicorn.conf.py")]  # flask-sock under gevent-websocket's handler
    assert check(["src/app.py"], context=False).findings == []
    info: dict = {}
    check(["src/app.py"], info=info)
    assert info["roots"] == {str(repo): ".git"} and info["files"] == 1 and info["summaries"] == 1


def test_requirements_pins_are_project_wide(tmp_path, monkeypatch):
    """werkzeug==2.0.1 pinned next to a raw gevent-websocket app: whatever the rules make of the pin,
    `check app.py` sees it as `check .` does; and a project pinned below Werkzeug 2 is not told that
    flask-sockets breaks on Werkzeug 2 (WS503), which it says when the pin is out of sight."""
    repo = write(tmp_path / "raw", {"setup.cfg": "[metadata]\nname = raw\n", "app.py": RAW_APP,
                                    "requirements.txt": "flask==2.0.3\nwerkzeug==2.0.1\ngevent-websocket==0.10.1\n",
                                    "deploy/Procfile": "web: gunicorn -k gevent app:app\n"})
    monkeypatch.chdir(repo)
    got = assert_invariant(".", ["app.py"])
    assert ("WS505", "deploy/Procfile") in codes_at(got)  # -k gevent cannot upgrade a raw app
    pins = [s for s in _context.plan(["app.py"]).gather({"app.py"}, None, {}) if s.get("pins")]
    assert pins and "2.0.1" in json.dumps(pins[0]["pins"]["werkzeug"])  # (the pin's form is the rules' business)
    # the requirements file changed: every project finding is reported (pins decide them all)
    assert codes_at(assert_invariant(".", ["requirements.txt"])) == [("WS505", "deploy/Procfile")]

    old = write(tmp_path / "old", {"pyproject.toml": "", "app.py": FLASK_SOCKETS_APP,
                                   "requirements.txt": "Flask==1.1.4\nWerkzeug==1.0.1\nFlask-Sockets==0.2.1\n"})
    monkeypatch.chdir(old)
    assert "WS503" not in [k[0] for k in assert_invariant(".", ["app.py"])]
    assert "WS503" in [f.code for f in check(["app.py"], context=False).findings]
    # the pin in a file the requirements include (-r): read when the project is related
    included = write(tmp_path / "included", {"pyproject.toml": "", "app.py": FLASK_SOCKETS_APP,
                                             "requirements.txt": "-r reqs/base.txt\n",
                                             "reqs/base.txt": "Werkzeug==1.0.1\nFlask==1.1.4\n"})
    monkeypatch.chdir(included)
    assert "WS503" not in [k[0] for k in assert_invariant(".", ["app.py"])]
    assert "WS503" in [f.code for f in check(["app.py"], context=False).findings]
    # the pin in setup.py's install_requires (the one Python file the word prefilter never skips:
    # a context that skipped it judged app.py against Werkzeug 2+ where `check .` did not)
    setup = write(tmp_path / "setup", {"app.py": FLASK_SOCKETS_APP, "setup.py": (
        'from setuptools import setup\n\nsetup(name="chat", install_requires=["flask==1.1.4", "werkzeug==1.0.1"])\n')})
    monkeypatch.chdir(setup)
    assert "WS503" not in [k[0] for k in assert_invariant(".", ["app.py"])]
    assert "WS503" in [f.code for f in check(["app.py"], context=False).findings]


def test_a_helper_module_in_another_file(tmp_path, monkeypatch):
    """app.py serves sockets only through chat/ws_helpers.py: its app.run() is a server without
    WebSocketHandler (WS504) only once the helper's raw gevent-websocket stack is known."""
    repo = write(tmp_path / "proj", {"pyproject.toml": "", "app.py": LAUNCHER_APP, "chat/__init__.py": "",
                                     "chat/ws_helpers.py": HELPER_MODULE})
    monkeypatch.chdir(repo)
    got = assert_invariant(".", ["app.py"])
    assert codes_at(got) == [("WS504", "app.py")]
    assert check(["app.py"], context=False).findings == []
    # the helper changed: the launcher's finding involves it (app.py imports it)
    assert codes_at(assert_invariant(".", ["chat/ws_helpers.py"])) == [("WS504", "app.py")]


# -- what is and is not reported --------------------------------------------------------------


def test_context_files_are_never_reported_on_their_own(tmp_path, monkeypatch):
    bad_other = RAW_APP.replace(', websocket=True', '')  # WS501 in a file nobody changed
    repo = write(tmp_path / "two", {"pyproject.toml": "", "app.py": FLASK_SOCK_APP, "legacy/raw.py": bad_other,
                                    "legacy/Procfile": "web: gunicorn -k gevent raw:app\n",
                                    "broken.py": "print 'python 2'\n"})
    monkeypatch.chdir(repo)
    full = codes_at(map(key, check(["."]).findings))
    assert ("WS501", "legacy/raw.py") in full and ("WS505", "legacy/Procfile") in full and ("WS511", "broken.py") in full
    got = assert_invariant(".", ["app.py"])
    assert got == []  # legacy/ is another app's code and deployment; broken.py is not app.py's business
    assert codes_at(assert_invariant(".", ["legacy/raw.py"])) == [("WS501", "legacy/raw.py"), ("WS505", "legacy/Procfile")]


def test_a_stack_the_rule_does_not_apply_to_does_not_concern_it(tmp_path, monkeypatch):
    """One Procfile, two apps next to it: the flask-sock app does not concern the raw app's WS505."""
    repo = write(tmp_path / "mixed", {"pyproject.toml": "", "sock_app.py": FLASK_SOCK_APP,
                                      "raw_app.py": RAW_APP, "Procfile": "web: gunicorn raw_app:app\n"})
    monkeypatch.chdir(repo)
    assert codes_at(assert_invariant(".", ["sock_app.py"])) == [("WS513", "Procfile")]
    assert codes_at(assert_invariant(".", ["raw_app.py"])) == [("WS505", "Procfile")]


def test_named_files_are_judged_as_the_project_judges_them(tmp_path, monkeypatch):
    """A gunicorn config named alone reports its sync worker (it might serve anything); inside a
    project with no WebSocket code it is a plain Flask deployment, as `check .` says."""
    repo = write(tmp_path / "plain", {"pyproject.toml": "", "gunicorn.conf.py": "bind = '0.0.0.0:8000'\nworkers = 2\n",
                                      "web.py": "from flask import Flask\napp = Flask(__name__)\n"})
    monkeypatch.chdir(repo)
    assert assert_invariant(".", ["gunicorn.conf.py"]) == []
    assert [f.code for f in check(["gunicorn.conf.py"], context=False).findings] == ["WS505"]


@pytest.mark.parametrize("where", ["parent", "sibling", "inside"])
def test_paths_from_another_directory(tmp_path, monkeypatch, where):
    """Context paths are shown as `check ROOT` shows them: relative below the current directory
    (root under it, or it under the root), absolute outside it."""
    repo = write(tmp_path / "abs", {"pyproject.toml": "", "app.py": FLASK_SOCK_APP, "Procfile": "web: gunicorn app:app\n",
                                    "sub/other.py": "", "sub/run.sh": "gunicorn -k gevent app:app\n"})
    cwd = {"parent": tmp_path, "sibling": tmp_path / "elsewhere", "inside": repo / "sub"}[where]
    cwd.mkdir(exist_ok=True)
    monkeypatch.chdir(cwd)
    got = sorted(map(key, check([repo / "app.py"]).findings))
    assert got == root_view(repo, {display_path(str(repo / "app.py"))})
    assert codes_at(got) == [("WS513", display_path(str(repo / "Procfile")))]
    ctx = _context.plan([str(repo / "app.py")])
    files = [s["file"] for s in ctx.gather({display_path(str(repo / "app.py"))}, None, {})]
    assert sorted(files) == sorted(display_path(str(repo / f)) for f in ("Procfile", "sub/run.sh"))


def test_directories_carry_their_own_context(tmp_path, monkeypatch):
    repo = write(tmp_path / "d", {"pyproject.toml": "", "app.py": FLASK_SOCK_APP, "Procfile": "web: gunicorn app:app\n"})
    monkeypatch.chdir(repo)
    assert _context.plan(["."]) is None
    info: dict = {}
    check(["."], info=info)
    assert info == {}


# -- the root --------------------------------------------------------------------------------


def test_root_discovery_markers_home_and_fallbacks(tmp_path):
    home = tmp_path / "home"
    write(home, {".git/": "", "dotfiles.py": "", "work/repo/setup.py": "", "work/repo/pkg/deep/mod.py": "",
                 "loose/script.py": ""})
    found = _context.find_root(str(home / "work/repo/pkg/deep/mod.py"), cwd=str(tmp_path), home=str(home))
    assert found == (str(home / "work/repo"), "setup.py")
    # ~ holds a .git (a dotfiles repository) but is never a root; no marker below it: the file's directory
    root, why = _context.find_root(str(home / "loose/script.py"), cwd=str(tmp_path), home=str(home))
    assert root == str(home / "loose") and "file's directory" in why
    # a file inside the current directory, no marker: the current directory
    root, why = _context.find_root(str(home / "loose/script.py"), cwd=str(home / "loose"), home=str(home))
    assert root == str(home / "loose") and "current directory" in why
    # a file directly in ~, or in /, has no root: no context
    assert _context.find_root(str(home / "dotfiles.py"), cwd=str(home), home=str(home)) is None
    assert _context.find_root(os.sep + "wsdiag-nonexistent.py", cwd=os.sep, home=str(home)) is None


def test_a_link_out_of_the_project_is_not_followed(tmp_path, monkeypatch):
    outside = write(tmp_path / "elsewhere", {"Procfile": "web: gunicorn app:app\n"})
    repo = write(tmp_path / "linked", {"pyproject.toml": "", "app.py": FLASK_SOCK_APP})
    os.symlink(outside / "Procfile", repo / "Procfile")
    monkeypatch.chdir(repo)
    assert [f.code for f in check(["."]).findings] == ["WS513"]  # `check .` reads the link
    info: dict = {}
    assert check(["app.py"], info=info).findings == []  # the context does not leave the project
    assert info["summaries"] == 0  # the Procfile behind the link was not read


# -- the cache: after one full run, the context costs hashing ------------------------------------


def test_a_warm_cache_parses_no_context_file(tmp_path, monkeypatch):
    files = {"pyproject.toml": "", "app.py": FLASK_SOCK_APP, "Procfile": "web: gunicorn app:app\n"}
    for n in range(30):
        files[f"pkg/mod{n}.py"] = f"from flask import Flask\napp{n} = Flask(__name__)\n\n@app{n}.route('/p{n}')\ndef v():\n    return 'x'\n"
    files["pkg/launch.py"] = "from app import app\n\nif __name__ == '__main__':\n    app.run()\n"
    repo = write(tmp_path / "cached", files)
    cache = tmp_path / "cache"
    monkeypatch.chdir(repo)
    check(["."], cache_dir=cache)  # the full run (what CI or the first pre-commit run does)
    info: dict = {}
    stats: dict = {}
    warm = check(["app.py"], cache_dir=cache, info=info, cache_stats=stats)
    assert info["files"] == len(_static.iter_files(["."])) - 1 >= 32  # every file but app.py
    assert info["parsed"] == 0 and info["cache_hits"] == info["files"]
    assert stats["misses"] == 0
    cold = check(["app.py"])
    assert sorted(map(key, warm.findings)) == sorted(map(key, cold.findings)) != []


# -- the command line ------------------------------------------------------------------------


def _runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:
        return CliRunner()


def test_cli_note_option_and_fix(tmp_path, monkeypatch):
    repo = write(tmp_path / "cli", {"pyproject.toml": "", "app.py": FLASK_SOCK_APP,
                                    "gunicorn.conf.py": GUNICORN_GOOD_WORKER_CONF})
    monkeypatch.chdir(repo)
    r = _runner().invoke(main, ["check", "--no-cache", "app.py"], catch_exceptions=False)
    assert r.exit_code == 1 and "WS512" in r.stdout
    notes = [ln for ln in r.stderr.splitlines() if "project context" in ln]
    assert len(notes) == 1 and str(repo) in notes[0] and "pyproject.toml" in notes[0] and "other file" in notes[0]
    r = _runner().invoke(main, ["check", "--no-cache", "--format", "json", "app.py"], catch_exceptions=False)
    assert "project context" not in r.stderr and [f["code"] for f in json.loads(r.stdout)["findings"]] == ["WS512"]
    r = _runner().invoke(main, ["check", "--no-cache", "--no-project-context", "app.py"], catch_exceptions=False)
    assert r.exit_code == 0 and "project context" not in r.stderr and "WS512" not in r.stdout
    # the wsdiag-check-fix hook (`check --fix CHANGED`) is judged in the project too
    r = _runner().invoke(main, ["check", "--no-cache", "--fix", "--format", "json", "app.py"], catch_exceptions=False)
    assert [f["code"] for f in json.loads(r.stdout)["findings"]] == ["WS512"] and r.exit_code == 1


def test_fix_keeps_the_project_findings_after_rewriting(tmp_path, monkeypatch):
    """The wsdiag-check-fix hook: `check --fix CHANGED` fixes the changed file and still reports the
    project finding its deployment makes (rescanned with the same context)."""
    repo = write(tmp_path / "fix", {"pyproject.toml": "", "app.py": RAW_APP.replace(", websocket=True", ""),
                                    "Procfile": "web: gunicorn -k gevent app:app\n"})
    monkeypatch.chdir(repo)
    before = codes_at(assert_invariant(".", ["app.py"]))
    assert before == [("WS501", "app.py"), ("WS505", "Procfile")]
    report = check(["app.py"], fix=True)
    assert 'websocket=True' in (repo / "app.py").read_text()
    assert codes_at(map(key, report.findings)) == [("WS505", "Procfile")]
    assert check(["app.py"], context=False).findings == []  # fixed, and alone it cannot see the Procfile


def test_files_of_two_projects_in_one_run(tmp_path, monkeypatch):
    one = write(tmp_path / "one", {"pyproject.toml": "", "app.py": FLASK_SOCK_APP, "Procfile": "web: gunicorn app:app\n"})
    two = write(tmp_path / "two", {".git/": "", "svc.py": RAW_APP, "deploy/run.sh": "exec gunicorn svc:app\n"})
    monkeypatch.chdir(tmp_path)
    info: dict = {}
    got = sorted(map(key, check(["one/app.py", "two/svc.py"], info=info).findings))
    assert info["roots"] == {str(one): "pyproject.toml", str(two): ".git"}
    assert got == sorted(root_view(one, {"one/app.py"}) + root_view(two, {"two/svc.py"}))
    assert codes_at(got) == [("WS505", "two/deploy/run.sh"), ("WS513", "one/Procfile")]


def test_a_real_git_repository_and_the_changed_files_git_names(tmp_path):
    """As pre-commit runs it: a git repository, a commit, a change, `git diff --name-only`, then
    `python -m wsdiag check FILES` in a child process from the repository's top directory."""
    import shutil
    import subprocess
    import sys

    git = shutil.which("git")
    if git is None:
        pytest.fail("git is needed for this test")
    repo = write(tmp_path / "gitrepo", {"app.py": FLASK_SOCK_APP, "ws_views.py": "", "Procfile": "web: gunicorn app:app --threads 8\n"})
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.com", HOME=str(tmp_path))
    for argv in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "init"]):
        subprocess.run([git, *argv], cwd=repo, env=env, check=True, capture_output=True)
    (repo / "Procfile").write_text("web: gunicorn app:app\n")  # the change: the threads are gone
    changed = subprocess.run([git, "diff", "--name-only"], cwd=repo, env=env, check=True, capture_output=True,
                             text=True).stdout.split()
    assert changed == ["Procfile"]

    def run(*files, extra=()):
        p = subprocess.run([sys.executable, "-m", "wsdiag", "check", "--format", "json", *extra, *files], cwd=repo,
                           env=env, capture_output=True, text=True, timeout=60)
        return p, [(f["code"], f["file"]) for f in json.loads(p.stdout)["findings"]]

    p, found = run(*changed)
    assert found == [("WS513", "Procfile")] and "project context" not in p.stderr
    # alone, the Procfile is judged as if it served a gevent-websocket app: the wrong rule (an error)
    assert run(*changed, extra=("--no-project-context",))[1] == [("WS505", "Procfile")]
    assert run("app.py")[1] == [("WS513", "Procfile")]  # the app changed instead: the same verdict
    assert run("app.py", extra=("--no-project-context",))[1] == []
    assert run(".")[1] == [("WS513", "Procfile")]


@pytest.mark.parametrize("layout", ["one-project", "project-per-app"])
def test_the_invariant_for_every_file_of_the_apps_corpus(tmp_path, monkeypatch, layout):
    """fixtures/apps_corpus (one small app per stack x deployment, healthy and broken): for each of its
    files F, `check F` == `check ROOT` restricted to F; as one project, and with a root per app."""
    import shutil

    corpus = Path(__file__).resolve().parent.parent / "fixtures" / "apps_corpus"
    root = tmp_path / "corpus"
    shutil.copytree(corpus, root)
    (root / "EXPECTED.json").unlink()
    apps = sorted(p for p in root.iterdir() if p.is_dir())
    roots = [root] if layout == "one-project" else apps
    for r in roots:
        (r / "pyproject.toml").write_text("")
    monkeypatch.chdir(root)
    cache = tmp_path / "cache"
    differs = 0
    for r in roots:
        rel = display_path(str(r))
        report = check([rel])
        scans = [_static.scan_file(display_path(raw), Path(raw).read_text(encoding="utf-8"), False)
                 for raw, _ in _static.iter_files([rel])]
        summaries = [_rules.summary(s) for s in scans]
        project = _rules.project_findings(summaries, report.versions.get("werkzeug"), report.versions)
        for s in scans:
            if s.file.endswith("pyproject.toml"):
                continue
            keep = {key(f) for f in _context.concerns(project, summaries, {s.file}, report.versions)}
            expected = sorted(k for k in map(key, report.findings) if k[1] == s.file or k in keep)
            got = sorted(map(key, check([s.file], cache_dir=cache).findings))
            assert got == expected, s.file
            app_dir = s.file.split(os.sep)[0] if layout == "one-project" else os.path.dirname(s.file)
            pins = any(x and x["file"] == s.file and x.get("pins") for x in summaries)  # project-wide facts
            assert pins or all(k[1].startswith(app_dir + os.sep) for k in got), (s.file, got)  # no other app's
            differs += got != sorted(map(key, check([s.file], context=False).findings))
    print(layout, differs, "files judged differently without the context")
    assert differs >= 5  # the context changes the verdict of many of these files
