"""The Werkzeug/Flask version matrix: wsdiag's verdicts checked against real installs.

    nox -s matrix                 # every environment (CI runs this after the default suite)
    nox -s "matrix(env='w201')"   # one
    python tests/matrix/render_table.py   # docs/compatibility.md from the last run

Each session installs one Flask/Werkzeug pair with gevent and gevent-websocket 0.10.1, then
wsdiag itself (its wide ranges leave the pins alone), and runs tests/matrix -m matrix, which
serves the fixture apps under gevent-websocket and compares every wsdiag verdict with what
an independent raw client saw the real server do.
"""

from __future__ import annotations

import nox

nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["matrix"]

ENVS = {
    "w101": ["flask==1.1.4", "werkzeug==1.0.1", "jinja2<3", "markupsafe<2.1", "itsdangerous<2", "click<8"],
    "w200": ["flask==2.0.1", "werkzeug==2.0.0"],
    "w201": ["flask==2.0.1", "werkzeug==2.0.1"],
    "w203": ["flask==2.0.3", "werkzeug==2.0.3"],
    "w223": ["flask==2.2.5", "werkzeug==2.2.3"],
    "w238": ["flask==2.3.3", "werkzeug==2.3.8"],
    "w306": ["flask==3.0.3", "werkzeug==3.0.6"],
    "w319": ["flask==3.1.3", "werkzeug==3.1.9"],
}


@nox.session
@nox.parametrize("env", list(ENVS))
def matrix(session: nox.Session, env: str) -> None:
    session.install(*ENVS[env], "gevent", "gevent-websocket==0.10.1", "-e", ".", "pytest>=7", "pytest-timeout")
    session.run("python", "-c", "import flask, werkzeug; from importlib.metadata import version as v; "
                "print('flask', v('flask'), 'werkzeug', v('werkzeug'))")
    session.run("python", "-m", "pytest", "tests/matrix", "-m", "matrix", "-p", "no:cacheprovider", "-q",
                env={"WSDIAG_MATRIX_ENV": env, "WSDIAG_MATRIX_OUT": f"tests/matrix/results/{env}.json"})


def _interpreter(version: str) -> str | None:
    """A working python<version>: on PATH, or under pyenv's versions (shims may refuse to run)."""
    import glob
    import os
    import shutil
    import subprocess

    candidates = [shutil.which(f"python{version}")]
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates += sorted(glob.glob(f"{root}/versions/{version}.*/bin/python{version}"), reverse=True)
    for path in filter(None, candidates):
        try:
            if subprocess.run([path, "-c", "pass"], capture_output=True, timeout=20).returncode == 0:
                return path
        except (OSError, subprocess.TimeoutExpired):
            continue
    return None


@nox.session(python=False)
@nox.parametrize("version", ["3.9", "3.13"])
def pythons(session: nox.Session, version: str) -> None:
    """The default suite on the oldest and newest Python wsdiag supports (CI runs 3.11 itself)."""
    python = _interpreter(version)
    if python is None:
        session.skip(f"no Python {version} on this machine")
    venv = f".nox/pythons-{version}"
    session.run(python, "-m", "venv", "--clear", venv, external=True)
    session.run(f"{venv}/bin/python", "-m", "pip", "install", "-q", "-e", ".[test]", external=True)
    session.run(f"{venv}/bin/python", "-m", "pytest", "-q", "-p", "no:cacheprovider", external=True)


# -- Socket.IO: which releases speak which Engine.IO / Socket.IO revision -------------------
# docs/socketio-compatibility.md is generated from these real installs; CI checks it does not drift.
SIO_ENVS = {
    "fsio4": ["flask-socketio==4.3.2", "python-socketio==4.6.1", "python-engineio==3.14.2",
              "flask==2.0.3", "werkzeug==2.0.3", "requests"],
    "fsio50": ["flask-socketio==5.0.3", "python-socketio==5.0.4", "python-engineio==4.0.1",
               "flask==2.0.3", "werkzeug==2.0.3", "requests"],
    "fsio57": ["flask-socketio==5.7.0", "python-socketio==5.18.1", "python-engineio==4.15.1",
               "simple-websocket==1.1.0", "flask==3.1.3", "werkzeug==3.1.9", "requests"],
}


@nox.session
@nox.parametrize("env", list(SIO_ENVS))
def socketio_compat(session: nox.Session, env: str) -> None:
    """Serve Flask-SocketIO of one release set, probe it speaking EIO 3 and 4, record the facts."""
    session.install(*SIO_ENVS[env], "gevent", "gevent-websocket==0.10.1", "gunicorn")
    session.install("--no-deps", "-e", ".")
    session.install("click", "rich", "websocket-client>=1.0")
    session.run("python", "tests/socketio_compat/collect.py",
                env={"WSDIAG_SIO_COMPAT_ENV": env, "WSDIAG_SIO_COMPAT_OUT": f".nox/socketio-results/{env}.json"})


@nox.session
def plain(session: nox.Session) -> None:
    """Plain `pip install wsdiag` (no extras) next to a Flask-SocketIO app (gunicorn -k gevent) and a
    flask-sock app: gevent-websocket is not installed and both apps still work (tests/plain)."""
    session.install("-e", ".")
    session.install("flask-socketio", "flask-sock", "gunicorn", "gevent", "packaging")
    session.run("python", "tests/plain/check_plain.py")
