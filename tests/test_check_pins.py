"""The project's version pins (``wsdiag.check.pins``): every packaging format, precedence, bad input.

Each test writes a real project tree in a temporary directory and runs the real command line
(``python -m wsdiag check DIR``). What the pins decide is observable:

* WS503 (flask-sockets) is silent when the project can only run Werkzeug < 2 (its rules match
  there), and fires otherwise, naming the release it judged with and where it came from;
* WS515 (Flask-SocketIO under ``gunicorn -k gevent``) depends on whether gevent-websocket is
  in the project's environment: installed here, unless the project's lock file says otherwise;
* WS522/WS524 (the Socket.IO driver python-engineio picks) follow the pinned python-engineio
  and simple-websocket.

The installed Werkzeug here is >= 2 (the test environment's Flask 3), so a Werkzeug < 2 pin
and a Werkzeug >= 2 pin give opposite verdicts: each test fails if the pin is not read.
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

ROOT = Path(__file__).resolve().parent.parent
SOCKETS_APP = (ROOT / "fixtures" / "apps_corpus" / "flask_sockets_pinned" / "app.py").read_text()
RAW_ROUTE = textwrap.dedent('''\
    from flask import Flask, request

    app = Flask(__name__)


    @app.route("/ws")
    def ws():
        sock = request.environ["wsgi.websocket"]
        while True:
            msg = sock.receive()
            if msg is None:
                break
            sock.send(msg)
        return ""
    ''')
SOCKETIO_APP = (ROOT / "fixtures" / "apps_corpus" / "socketio_gevent" / "app.py").read_text()
GUNICORN_GEVENT = 'web: gunicorn -k gevent -w 1 app:app\n'

pytestmark = pytest.mark.skipif((pins.version_tuple(installed_versions().get("werkzeug")) or (0,)) < (2,),
                                reason="these verdicts contrast a Werkzeug < 2 pin with the installed Werkzeug >= 2")


def wsdiag(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wsdiag", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=env)


def check(project: Path, *extra: str) -> dict:
    out = wsdiag("check", str(project), "--no-cache", "--format", "json", *extra)
    assert "Traceback" not in out.stderr, out.stderr
    doc = json.loads(out.stdout)
    doc["_stderr"] = out.stderr
    doc["_status"] = out.returncode
    return doc


def codes(doc: dict) -> list:
    return sorted(f["code"] for f in doc["findings"])


def ws503(doc: dict) -> list:
    return [f for f in doc["findings"] if f["code"] == "WS503"]


def write(root: Path, files: dict) -> Path:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text) if not text.startswith(("from", '"""')) else text)
    return root


# -- every format: Werkzeug 1.0.1 (or Flask 1.1.4) pinned -> WS503 silent; 2.0.1 -> WS503 -------

FORMATS = {
    "requirements.txt": {"requirements.txt": "Flask>=1.1\nWerkzeug=={v}\nflask-sockets==0.2.1\n"},
    "requirements-prod.in": {"requirements-prod.in": "# deploy pins\nwerkzeug ~= {v}\n"},
    "constraints.txt": {"constraints.txt": "werkzeug=={v}\n"},
    "requirements -r include": {"requirements.txt": "-r requirements/base.txt\n",
                                "requirements/base.txt": "--requirement deep/pins.txt\n",
                                "requirements/deep/pins.txt": "gevent-websocket\nWerkzeug=={v}  # pinned\n"},
    "requirements -c include": {"requirements.txt": "flask-sockets\n-c pins/constraints-prod.lst\n",
                                "pins/constraints-prod.lst": "werkzeug=={v}\n"},
    "pyproject PEP 621": {"pyproject.toml": """\
        [project]
        name = "chat"
        version = "1.0"
        dependencies = [
            "flask-sockets>=0.2",
            "Werkzeug=={v}",
        ]
        """},
    "pyproject optional-dependencies": {"pyproject.toml": """\
        [project]
        name = "chat"
        version = "1.0"

        [project.optional-dependencies]
        server = ["werkzeug == {v}"]
        """},
    "pyproject poetry": {"pyproject.toml": """\
        [tool.poetry]
        name = "chat"

        [tool.poetry.dependencies]
        python = "^3.8"
        Werkzeug = "{v}"
        """},
    "pyproject poetry table": {"pyproject.toml": """\
        [tool.poetry.dependencies]
        werkzeug = {{ version = "{v}", extras = ["watchdog"] }}
        """},
    "pyproject poetry group": {"pyproject.toml": """\
        [tool.poetry.group.deploy.dependencies]
        werkzeug = "=={v}"
        """},
    "pyproject dependency-groups": {"pyproject.toml": """\
        [dependency-groups]
        deploy = ["werkzeug=={v}", {{include-group = "other"}}]
        """},
    "pyproject pdm dev-dependencies": {"pyproject.toml": """\
        [tool.pdm.dev-dependencies]
        deploy = ["werkzeug=={v}"]
        """},
    "setup.cfg": {"setup.cfg": """\
        [metadata]
        name = chat

        [options]
        install_requires =
            flask-sockets
            Werkzeug=={v}
        """},
    "setup.py": {"setup.py": """\
        from setuptools import setup

        REQUIRES = [
            "flask-sockets",
            "werkzeug=={v}",
        ]
        setup(name="chat", install_requires=REQUIRES)
        """},
    "Pipfile": {"Pipfile": """\
        [packages]
        flask-sockets = "*"
        werkzeug = "=={v}"
        """},
    "Pipfile.lock": {"Pipfile.lock": """\
        {{
            "_meta": {{"hash": {{"sha256": "x"}}}},
            "default": {{
                "werkzeug": {{
                    "hashes": [],
                    "version": "=={v}"
                }}
            }},
            "develop": {{}}
        }}
        """},
    "poetry.lock": {"poetry.lock": """\
        [[package]]
        name = "werkzeug"
        version = "{v}"
        description = "The comprehensive WSGI web application library."
        optional = false
        """},
    "uv.lock": {"uv.lock": """\
        version = 1
        requires-python = ">=3.9"

        [[package]]
        name = "werkzeug"
        version = "{v}"
        source = {{ registry = "https://pypi.org/simple" }}
        """},
    "pdm.lock": {"pdm.lock": """\
        [metadata]
        groups = ["default"]

        [[package]]
        name = "werkzeug"
        version = "{v}"
        summary = "WSGI"
        """},
}
# the file and the line each format's pin is on (what the report must name)
WHERE = {"requirements -r include": ("requirements/deep/pins.txt", 2), "requirements -c include": ("pins/constraints-prod.lst", 1)}


def _project(tmp_path: Path, fmt: str, version: str) -> Path:
    files = {name: text.format(v=version) for name, text in FORMATS[fmt].items()}
    return write(tmp_path, dict(files, **{"app.py": SOCKETS_APP}))


def _pin_line(project: Path, fmt: str) -> tuple:
    if fmt in WHERE:
        return WHERE[fmt]
    name = next(iter(FORMATS[fmt]))
    lines = (project / name).read_text().splitlines()
    return name, next(n for n, line in enumerate(lines, 1) if "2.0.1" in line)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_pins_werkzeug(tmp_path, fmt):
    """Werkzeug 1.0.1 pinned in this format: flask-sockets' rules match (no WS503); the same file
    pinning 2.0.1: WS503, naming the pin's file and line."""
    old = check(_project(tmp_path / "old", fmt, "1.0.1"))
    assert codes(old) == [] and old["skipped"] == [], old
    new_project = _project(tmp_path / "new", fmt, "2.0.1")
    new = check(new_project)
    assert codes(new) == ["WS503"], new
    name, line = _pin_line(new_project, fmt)
    said = ws503(new)[0]["evidence"]["werkzeug"]
    assert said.startswith(("werkzeug 2.0.1 (", "werkzeug ~=2.0.1 (")) and f"{name}:{line}" in said, said


def test_pyproject_pin_gives_the_verdict_of_the_same_pin_in_requirements(tmp_path):
    """A raw gevent-websocket route without websocket=True and a flask-sockets module: the whole
    verdict (codes, summaries, fixes) is the same whether Werkzeug 1.0.1 is pinned in
    requirements.txt or in pyproject.toml, and differs from the unpinned project's."""
    app = {"app.py": RAW_ROUTE, "legacy/sockets_app.py": SOCKETS_APP}

    def verdict(doc, root):
        import re

        text = json.dumps(doc["findings"], sort_keys=True).replace(str(root), "ROOT")
        # the route rules name the pin they judged with (wsdiag.check.projpins): the same release, another file
        text = re.sub(r"ROOT/(requirements\.txt|pyproject\.toml):\d+: [^)\\]*", "PIN", text)
        return json.loads(text)

    req = check(write(tmp_path / "req", dict(app, **{"requirements.txt": "werkzeug==1.0.1\n"})))
    pyp = check(write(tmp_path / "pyp", dict(app, **{"pyproject.toml": FORMATS["pyproject PEP 621"]["pyproject.toml"]
                                                     .format(v="1.0.1")})))
    bare = check(write(tmp_path / "bare", app))
    assert verdict(req, tmp_path / "req") == verdict(pyp, tmp_path / "pyp") != []
    # the exact pin decides the route rules too: on 1.0.1 the plain rule works (WS509), no websocket=True (WS501)
    assert "WS509" in codes(req) and "WS501" not in codes(req) and "WS503" not in codes(req)
    assert "WS503" in codes(bare) and verdict(bare, tmp_path / "bare") != verdict(req, tmp_path / "req")
    assert req["_status"] == pyp["_status"] == 0 and bare["_status"] == 1  # WS509 is a warning: the rule works on 1.0.1


@pytest.mark.parametrize("pin, refused", [("werkzeug==2.0.1", "detect only 'Connection: Upgrade'"),
                                         ("Flask==1.1.4", "never match on Werkzeug < 2"),
                                         ("werkzeug==2.0.3", None), (None, None)])
def test_fix_respects_a_pinned_werkzeug(tmp_path, pin, refused):
    """--fix adds websocket=True for the installed Werkzeug (>= 2.0.2) unless the project's pins
    hold a Werkzeug where it breaks clients: then the file is left alone and the reason names the pin."""
    files = {"app.py": RAW_ROUTE}
    if pin:
        files["pyproject.toml"] = f'[project]\nname = "chat"\nversion = "1"\ndependencies = ["{pin}"]\n'
    project = write(tmp_path, files)
    out = wsdiag("check", "--fix", "--no-cache", "--format", "json", ".", cwd=project)
    assert "Traceback" not in out.stderr
    fixes = json.loads(out.stdout)["fixes"]
    changed = "websocket=True" in (project / "app.py").read_text()
    if refused:
        assert not changed and len(fixes) == 1 and not fixes[0]["applied"], fixes
        assert refused in fixes[0]["reason"] and "pyproject.toml:4" in fixes[0]["reason"], fixes
    else:
        assert changed and fixes[0]["applied"], fixes


# -- poetry's constraints mean the ranges poetry documents --------------------------------------

@pytest.mark.parametrize("constraint, below_2", [
    ("^1.0", True), ("^1.0.1", True), ("~1.0", True), ("~1", True), ("1.*", True), ("^0.16", True),
    (">=0.15,<2.0", True), ("<2", True),
    ("^2.0", False), ("~2.0.3", False), ("2.*", False), ("*", False), (">=0.15", False), ("^1.0 || ^2.0", False),
])
def test_poetry_constraint_semantics(tmp_path, constraint, below_2):
    project = write(tmp_path, {"app.py": SOCKETS_APP, "pyproject.toml": f'[tool.poetry.dependencies]\nwerkzeug = "{constraint}"\n'})
    doc = check(project)
    assert codes(doc) == ([] if below_2 else ["WS503"]), (constraint, doc["findings"])


def test_poetry_translation_matches_poetrys_documented_table():
    """python-poetry.org/docs/dependency-specification: caret, tilde and wildcard tables."""
    table = {"^1.2.3": ">=1.2.3,<2", "^1.2": ">=1.2,<2", "^1": ">=1,<2", "^0.2.3": ">=0.2.3,<0.3",
             "^0.0.3": ">=0.0.3,<0.0.4", "^0.0": ">=0.0,<0.1", "^0": ">=0,<1",
             "~1.2.3": ">=1.2.3,<1.3", "~1.2": ">=1.2,<1.3", "~1": ">=1,<2",
             "*": "", "1.*": ">=1,<2", "1.2.*": ">=1.2,<1.3", "1.2.3": "==1.2.3"}
    assert {k: pins.poetry_spec(k) for k in table} == table
    assert pins.poetry_spec("^1.0 || ^2.0") is None  # alternatives: declared, range not read


# -- precedence: lock > requirements/constraints > declared ranges > installed ---------------------

def test_lock_beats_a_range(tmp_path):
    pyproject = '[tool.poetry.dependencies]\nflask = ">=1.1"\nwerkzeug = ">=0.15"\n'
    lock = '[[package]]\nname = "flask"\nversion = "{f}"\n\n[[package]]\nname = "werkzeug"\nversion = "{v}"\n'
    unlocked = check(write(tmp_path / "range", {"app.py": SOCKETS_APP, "pyproject.toml": pyproject}))
    # the range allows the installed Werkzeug (>= 2): judged with it
    assert codes(unlocked) == ["WS503"] and "(installed, allowed by" in ws503(unlocked)[0]["evidence"]["werkzeug"]
    locked_old = check(write(tmp_path / "old", {"app.py": SOCKETS_APP, "pyproject.toml": pyproject,
                                                "poetry.lock": lock.format(f="1.1.4", v="1.0.1")}))
    assert codes(locked_old) == []
    # a range that says < 2 and a lock that says 2.0.3: the lock is what gets installed
    locked_new = check(write(tmp_path / "new", {"app.py": SOCKETS_APP, "pyproject.toml": 'dependencies = []\n'
                                                "[tool.poetry.dependencies]\nwerkzeug = \"<2\"\n",
                                                "poetry.lock": lock.format(f="2.0.3", v="2.0.3")}))
    assert codes(locked_new) == ["WS503"]
    assert "werkzeug 2.0.3 (" in ws503(locked_new)[0]["evidence"]["werkzeug"]
    assert "poetry.lock:7" in ws503(locked_new)[0]["evidence"]["werkzeug"]  # the locked `version = "2.0.3"`


def test_requirements_beat_declared_ranges(tmp_path):
    project = write(tmp_path, {"app.py": SOCKETS_APP, "setup.cfg": "[options]\ninstall_requires =\n    werkzeug<2\n",
                               "requirements.txt": "-e .\nwerkzeug==2.0.3\n"})
    doc = check(project)
    assert codes(doc) == ["WS503"] and "requirements.txt:2" in ws503(doc)[0]["evidence"]["werkzeug"]
    (project / "requirements.txt").write_text("-e .\nflask-sockets\n")  # no Werkzeug there: the declared range decides
    assert codes(check(project)) == []


# -- the other packages the rules use --------------------------------------------------------------

@pytest.mark.skipif(installed_versions().get("gevent-websocket") is None, reason="WS515 needs gevent-websocket installed here")
def test_lock_without_gevent_websocket_silences_ws515(tmp_path):
    """Flask-SocketIO under gunicorn -k gevent: WS515 because gevent-websocket is installed here;
    a lock of the app (it locks Flask) without gevent-websocket says the app's environment lacks it."""
    base = {"app.py": SOCKETIO_APP, "Procfile": GUNICORN_GEVENT}
    here = check(write(tmp_path / "here", base))
    assert "WS515" in codes(here)
    ev = next(f for f in here["findings"] if f["code"] == "WS515")["evidence"]
    assert ev["gevent_websocket"].endswith("(installed)")
    lock = "".join(f'[[package]]\nname = "{n}"\nversion = "{v}"\n\n' for n, v in
                   (("Flask", "3.0.3"), ("flask-socketio", "5.3.6"), ("gevent", "24.2.1"), ("gunicorn", "22.0.0"),
                    ("python-engineio", "4.9.1"), ("simple-websocket", "1.0.0")))
    locked = check(write(tmp_path / "locked", dict(base, **{"uv.lock": lock})))
    assert "WS515" not in codes(locked) and "WS522" in codes(locked), locked["findings"]
    # the same lock with gevent-websocket in it: WS515, naming the lock's line
    with_gws = lock + '[[package]]\nname = "gevent-websocket"\nversion = "0.10.1"\n'
    doc = check(write(tmp_path / "gws", dict(base, **{"uv.lock": with_gws})))
    ev = next(f for f in doc["findings"] if f["code"] == "WS515")["evidence"]
    line = with_gws.splitlines().index('version = "0.10.1"') + 1
    assert "gevent-websocket 0.10.1 (" in ev["gevent_websocket"] and f"uv.lock:{line}" in ev["gevent_websocket"]


@pytest.mark.skipif(installed_versions().get("gevent-websocket") is None or installed_versions().get("gevent") is None,
                    reason="WS512 for socketio.run needs gevent and gevent-websocket installed here")
def test_lock_decides_whether_socketio_run_serves_flask_sock_through_websockethandler(tmp_path):
    """flask-sock routes served by socketio.run(): WebSocketHandler (double 101, WS512) when
    gevent-websocket is in the app's environment; the app's lock says whether it is."""
    app = textwrap.dedent('''\
        from flask import Flask
        from flask_sock import Sock
        from flask_socketio import SocketIO

        app = Flask(__name__)
        sock = Sock(app)
        socketio = SocketIO(app)


        @sock.route("/echo")
        def echo(ws):
            while True:
                ws.send(ws.receive())


        if __name__ == "__main__":
            socketio.run(app)
        ''')
    lock = '[[package]]\nname = "flask"\nversion = "3.0.3"\n\n[[package]]\nname = "gevent"\nversion = "24.2.1"\n'
    assert "WS512" in codes(check(write(tmp_path / "here", {"app.py": app})))
    assert "WS512" not in codes(check(write(tmp_path / "lock", {"app.py": app, "poetry.lock": lock})))
    gws = lock + '\n[[package]]\nname = "gevent-websocket"\nversion = "0.10.1"\n'
    doc = check(write(tmp_path / "gws", {"app.py": app, "poetry.lock": gws}))
    ev = next(f for f in doc["findings"] if f["code"] == "WS512")["evidence"]
    assert ev["gevent_websocket"].startswith("gevent-websocket 0.10.1 (") and "poetry.lock:11" in ev["gevent_websocket"]


def test_pinned_engineio_and_simple_websocket_decide_the_socketio_driver(tmp_path):
    """threading mode: python-engineio >= 4.7.1 without simple-websocket refuses to start (WS524,
    'refuses'); python-engineio 4.5 without it starts with no WebSocket transport (WS524); with
    simple-websocket locked, no WS524. The driver facts name the lock's lines."""
    app = SOCKETIO_APP.replace("SocketIO(app)", "SocketIO(app, async_mode='threading')")

    def lock(engineio, simple):
        pkgs = [("flask", "3.0.3"), ("flask-socketio", "5.3.6"), ("python-engineio", engineio)]
        pkgs += [("simple-websocket", "1.0.0")] if simple else []
        return "".join(f'[[package]]\nname = "{n}"\nversion = "{v}"\n\n' for n, v in pkgs)

    refuses = check(write(tmp_path / "a", {"app.py": app, "poetry.lock": lock("4.9.1", False)}))
    ws524 = next(f for f in refuses["findings"] if f["code"] == "WS524")
    assert ws524["evidence"]["engineio"] == "4.9.1" and "does not start" in ws524["evidence"]["consequence"]
    assert "python-engineio 4.9.1 (" in ws524["evidence"]["versions_from"]
    assert "simple-websocket not installed (not in " in ws524["evidence"]["versions_from"]
    old = check(write(tmp_path / "b", {"app.py": app, "poetry.lock": lock("4.5.0", False)}))
    ws524 = next(f for f in old["findings"] if f["code"] == "WS524")
    assert "transport is unavailable" in ws524["evidence"]["consequence"]
    ok = check(write(tmp_path / "c", {"app.py": app, "poetry.lock": lock("4.9.1", True)}))
    assert codes(ok) == ["WS522"]
    facts = ok["findings"][0]["evidence"]
    assert facts["driver"] == "simple-websocket" and "poetry.lock:" in facts["versions_from"]


# -- includes stay bounded and inside the project --------------------------------------------------

def test_includes_stay_inside_the_project_and_loops_end(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("werkzeug==1.0.1\n")
    project = write(tmp_path / "proj", {"app.py": SOCKETS_APP, "pyproject.toml": "[project]\nname = 'x'\n",
                                        "requirements.txt": "-r ../outside.txt\n-r loop-a.txt\n",
                                        "loop-a.txt": "-r loop-b.txt\n", "loop-b.txt": "-r loop-a.txt\n-r requirements.txt\n"})
    doc = check(project)
    assert codes(doc) == ["WS503"], doc["findings"]  # the pin outside the project's root is not read
    (project / "loop-b.txt").write_text("-r loop-a.txt\nwerkzeug<2\n")
    assert codes(check(project)) == []  # a pin two includes deep is


# -- bad input: a file that does not parse is skipped with one line, never a traceback ------------

@pytest.mark.parametrize("name, text", [
    ("pyproject.toml", "[project\ndependencies = ['werkzeug==1.0.1']\n"),
    ("poetry.lock", '[[package]]\nname = "werkzeug"\nversion = 1.0.1\n'),
    ("uv.lock", "[[package]\n"),
    ("Pipfile", "[packages]\nwerkzeug = \n"),
    ("Pipfile.lock", '{"default": {"werkzeug": {"version": "==1.0.1"},}'),
    ("setup.cfg", "[options\ninstall_requires = werkzeug<2\n"),
])
def test_malformed_pin_file_is_skipped_in_one_line(tmp_path, name, text):
    project = write(tmp_path, {"app.py": SOCKETS_APP, name: text})
    doc = check(project)
    skipped = {Path(s["file"]).name: s["reason"] for s in doc["skipped"]}
    assert skipped[name].startswith(f"cannot parse {name}: ") and "\n" not in skipped[name]
    assert codes(doc) == ["WS503"]  # its pin is not read: judged with the installed Werkzeug
    wide = dict(os.environ, COLUMNS="400")
    human = wsdiag("check", str(project), "--no-cache", env=wide)
    assert "Traceback" not in human.stdout + human.stderr and human.returncode == 1
    assert f"skipped {project / name}: cannot parse {name}" in human.stdout + human.stderr
    named = wsdiag("check", str(project / name), "--no-cache", "--no-project-context", env=wide)  # named alone
    assert named.returncode == 0 and "Traceback" not in named.stderr
    assert f"cannot parse {name}" in named.stdout + named.stderr


def test_without_a_toml_reader_toml_files_are_skipped_with_the_fix(tmp_path):
    """Python < 3.11 without tomli (the dependency is conditional): one line saying what to install."""
    project = write(tmp_path, {"app.py": SOCKETS_APP, "pyproject.toml": FORMATS["pyproject PEP 621"]["pyproject.toml"].format(v="1.0.1"),
                               "requirements.txt": "gevent-websocket\n"})
    code = ("import sys, runpy; sys.modules['tomllib'] = None; sys.modules['tomli'] = None; "
            f"sys.argv = ['wsdiag', 'check', {str(project)!r}, '--no-cache', '--format', 'json']; "
            "runpy.run_module('wsdiag', run_name='__main__')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    doc = json.loads(out.stdout)
    assert [(Path(s["file"]).name, s["reason"]) for s in doc["skipped"]] == [
        ("pyproject.toml", "cannot read TOML on this Python without tomli (pip install 'wsdiag[toml]')")]
    assert [f["code"] for f in doc["findings"]] == ["WS503"] and "Traceback" not in out.stderr


def test_setup_py_is_read_never_run(tmp_path):
    marker = tmp_path / "ran"
    project = write(tmp_path / "p", {"app.py": SOCKETS_APP, "setup.py": f"""\
        import pathlib
        pathlib.Path({str(marker)!r}).write_text("setup.py was executed")
        from setuptools import setup
        setup(name="chat", install_requires=["flask-sockets"], extras_require={{"old": ["werkzeug<2"]}})
        """})
    assert codes(check(project)) == []
    assert not marker.exists()


# -- the cache and pre-commit see pin files ---------------------------------------------------------

def test_cache_follows_pin_files_and_their_includes(tmp_path):
    project = write(tmp_path / "p", {"app.py": SOCKETS_APP, "requirements.txt": "-r reqs/base.txt\n",
                                     "reqs/base.txt": "werkzeug==1.0.1\n"})
    cache = tmp_path / "cache"

    def run():
        out = wsdiag("check", str(project), "--cache-dir", str(cache), "--format", "json")
        return codes(json.loads(out.stdout))

    assert run() == [] and run() == []
    assert list(cache.glob("check-*.json"))
    (project / "reqs" / "base.txt").write_text("werkzeug==2.0.3\n")  # an included file (not scanned itself)
    assert run() == ["WS503"]
    (project / "pyproject.toml").write_text('[tool.poetry.dependencies]\nwerkzeug = "^1.0"\n')
    (project / "requirements.txt").write_text("flask-sockets\n")
    assert run() == []


def test_pre_commit_hook_and_the_walk_take_pin_files():
    import re

    yaml = pytest.importorskip("yaml")
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    files = re.compile(hooks["wsdiag-check"]["files"])
    names = ("pyproject.toml", "sub/Pipfile", "Pipfile.lock", "poetry.lock", "uv.lock", "pdm.lock", "setup.cfg",
             "setup.py", "requirements.txt", "deploy/requirements-prod.in", "constraints.txt")
    assert all(files.search(p) for p in names), [p for p in names if not files.search(p)]
    assert not any(files.search(p) for p in ("README.md", "Cargo.lock", "package-lock.json"))
    from wsdiag.check.deploy import CONFIG_NAMES

    assert all(CONFIG_NAMES.match(os.path.basename(p)) or p.endswith(".py") for p in names)
