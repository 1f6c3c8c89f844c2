"""Flask-SocketIO in the app model: `check` and `check --app` know its endpoint, async mode, driver,
origins, queue and workers (WS522), flag origins that cannot match (WS523) and an async mode without a
WebSocket driver (WS524) -- each claim checked against the installed Flask-SocketIO 5.7 /
python-engineio 4.15, in fresh interpreters (the driver choice depends on what imports).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wsdiag.check import sio, static
from wsdiag.check.advice import installed_versions

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("flask_socketio")

REAL = """
import json, sys
from flask import Flask
from flask_socketio import SocketIO
from wsdiag.flaskapp.sio_live import socketio_facts
app = Flask(__name__)
mode = sys.argv[1] or None
try:
    SocketIO(app, async_mode=mode)
except ValueError as exc:
    print(json.dumps({"error": str(exc)}))
else:
    f = socketio_facts(app)[0]
    print(json.dumps({"mode": f["async_mode"], "driver": f["driver"], "state": f["websocket_state"]}))
"""


def _blocker(tmp_path: Path, *modules: str) -> str:
    """A directory that makes ``modules`` unimportable, as if they were not installed."""
    d = tmp_path / "blocked"
    for m in modules:
        (d / m).mkdir(parents=True, exist_ok=True)
        (d / m / "__init__.py").write_text(f"raise ImportError('{m} is not installed (test)')\n")
    return str(d)


def _real(mode: str, blocked: str | None = None) -> dict:
    path = os.pathsep.join(p for p in (blocked, str(ROOT)) if p)
    out = subprocess.run([sys.executable, "-c", REAL, mode], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=path), cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mode", ["", "threading", "gevent", "eventlet"])
def test_the_model_predicts_the_driver_python_engineio_really_picks(mode):
    versions = installed_versions()
    predicted = sio.pick_driver(mode or None, versions)
    real = _real(mode)
    if "error" in real:
        assert predicted["state"] in ("refuses", "not-installed") and "Invalid async_mode" in real["error"]
        return
    assert predicted["state"] == real["state"] == "ok"
    assert predicted["mode"] == real["mode"]
    assert predicted["websocket"] == real["driver"]


@pytest.mark.parametrize("mode, blocked", [("threading", ("simple_websocket",)),
                                           ("", ("simple_websocket", "geventwebsocket")),
                                           ("gevent", ("simple_websocket", "geventwebsocket"))])
def test_no_websocket_driver_refuses_to_start_and_the_model_says_so(tmp_path, mode, blocked):
    """FM-26b on python-engineio 4.15: without simple-websocket the threading driver (and the gevent one
    without gevent-websocket) does not load; SocketIO() raises ValueError. The model predicts it (WS524)."""
    real = _real(mode, _blocker(tmp_path, *blocked))
    assert real == {"error": "Invalid async_mode specified"}
    versions = dict(installed_versions(), **{"simple-websocket": None})
    if "geventwebsocket" in blocked:
        versions["gevent-websocket"] = None
    assert sio.pick_driver(mode or None, versions)["state"] == "refuses"
    src = f"from flask import Flask\nfrom flask_socketio import SocketIO\napp = Flask(__name__)\n" \
          f"socketio = SocketIO(app{', async_mode=' + repr(mode) if mode else ''})\n"
    (tmp_path / "app.py").write_text(src)
    fs = static.findings([static.scan_file(str(tmp_path / "app.py"), src)], versions["werkzeug"], versions)
    (f,) = [f for f in fs if f.code == "WS524"]
    assert f.severity.value == "error" and "the app does not start" in f.summary
    # python-engineio before 4.7.1 starts without simple-websocket and offers no upgrade instead
    older = dict(versions, **{"python-engineio": "4.7.0"})
    fs = static.findings([static.scan_file(str(tmp_path / "app.py"), src)], versions["werkzeug"], older)
    assert [f for f in fs if f.code == "WS524"][0].evidence["consequence"].startswith("the WebSocket transport is unavailable")
    # with the driver installed: no WS524
    fs = static.findings([static.scan_file(str(tmp_path / "app.py"), src)], versions["werkzeug"], installed_versions())
    assert not [f for f in fs if f.code == "WS524"] and [f for f in fs if f.code == "WS522"]


def _status(cors, origin: str) -> tuple[int, str]:
    """What the real python-engineio answers a polling handshake with this Origin (Flask's test client
    drives the real WSGI stack: Flask-SocketIO's middleware and python-engineio)."""
    from flask import Flask
    from flask_socketio import SocketIO

    app = Flask(__name__)
    SocketIO(app, async_mode="threading", cors_allowed_origins=cors)
    resp = app.test_client().get("/socket.io/?EIO=4&transport=polling", headers={"Origin": origin},
                                 base_url="https://chat.example.com")
    return resp.status_code, resp.get_data(as_text=True)


@pytest.mark.parametrize("cors, origin, tls, refused", [
    (["http://chat.example.com"], "https://chat.example.com", ["certfile"], True),  # http list behind TLS
    ("https://chat.example.com/", "https://chat.example.com", [], True),  # trailing slash
    (["chat.example.com"], "https://chat.example.com", [], True),  # no scheme
    (["https://chat.example.com/app"], "https://chat.example.com", [], True),  # a path
    ([], "https://elsewhere.example", [], False),  # [] turns origin checks off: never refused
    ("*", "https://elsewhere.example", [], False),
    (["https://chat.example.com"], "https://chat.example.com", ["certfile"], False),
])
def test_origin_rule_agrees_with_real_python_engineio(cors, origin, tls, refused):
    status, body = _status(cors, origin)
    assert (status == 400 and "Not an accepted origin" in body) == refused, (status, body)
    bad = sio.cors_problem(cors, tls)
    assert bool(bad) == refused
    if bad:  # the suggested list is accepted by the real server
        assert _status(bad["fixed"], origin)[0] == 200


APP = '''
import os
from flask import Flask
from flask_socketio import SocketIO, emit

app = Flask(__name__)
app.config["PREFERRED_URL_SCHEME"] = "https"
socketio = SocketIO(app, async_mode=os.environ.get("SIO_MODE", "threading"), path="rt",
                    cors_allowed_origins=["http://chat.example.com"])


@socketio.on("ping")
def ping(data):
    emit("pong", data)
'''


def _check(tmp_path, *args, env=None) -> dict:
    out = subprocess.run([sys.executable, "-m", "wsdiag", "check", *args, "--no-cache", "--format", "json"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=str(ROOT), **(env or {})))
    assert out.returncode in (0, 1), out.stderr
    return json.loads(out.stdout)


def test_check_app_reads_the_live_socketio_and_check_reads_the_source(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "Procfile").write_text("web: gunicorn -k gthread --threads 50 -w 2 app:app\n")
    static_doc = _check(tmp_path, ".")
    (facts,) = [f for f in static_doc["findings"] if f["code"] == "WS522"]
    ev = facts["evidence"]
    assert (ev["async_mode"], ev["driver"], ev["source"]) == ("(computed)", "not determined", "the source")
    assert ev["endpoint"] == "/rt/" and "gunicorn -w 2" in ev["workers"]
    assert {f["code"] for f in static_doc["findings"]} >= {"WS522", "WS523", "WS514"}
    live_doc = _check(tmp_path, "--app", "app.py", env={"SIO_MODE": "gevent"})
    (live,) = [f for f in live_doc["findings"] if f["code"] == "WS522"]
    ev = live["evidence"]
    assert ev["source"] == "the running app (in-process)" and ev["async_mode"] == "gevent"
    assert ev["driver"].startswith("gevent-websocket") and ev["endpoint"] == "/rt/"
    assert "gunicorn -w 2" in ev["workers"] and live["line"] == 8
    (cors,) = [f for f in live_doc["findings"] if f["code"] == "WS523"]
    assert "https://chat.example.com" in json.dumps(cors)
    threading_doc = _check(tmp_path, "--app", "app.py", env={"SIO_MODE": "threading"})
    (live,) = [f for f in threading_doc["findings"] if f["code"] == "WS522"]
    assert live["evidence"]["async_mode"] == "threading" and live["evidence"]["driver"] == "simple-websocket"


def test_socketio_rules_are_silent_outside_flask_socketio(tmp_path):
    """A flask-sock app with a list of http origins in a config dict and TLS: no Socket.IO finding."""
    src = textwrap.dedent('''
        from flask import Flask
        from flask_sock import Sock
        app = Flask(__name__)
        app.config["PREFERRED_URL_SCHEME"] = "https"
        CONFIG = dict(cors_allowed_origins=["http://chat.example.com"], async_mode="threading")
        sock = Sock(app)

        @sock.route("/ws")
        def ws(s):
            while s.receive() is not None:
                pass
    ''')
    (tmp_path / "app.py").write_text(src)
    versions = dict(installed_versions(), **{"simple-websocket": None})
    fs = static.findings([static.scan_file(str(tmp_path / "app.py"), src)], versions["werkzeug"], versions)
    assert not [f for f in fs if f.code in sio.SIO_CODES]


def test_check_app_on_an_app_that_refuses_to_start_says_why_in_one_line(tmp_path):
    """With python-engineio 4.15 and no simple-websocket, the threading app cannot even be imported:
    `check --app` exits 3 with one line naming the missing driver (the static WS524 says it before)."""
    (tmp_path / "app.py").write_text("from flask import Flask\nfrom flask_socketio import SocketIO\n"
                                     "app = Flask(__name__)\nsocketio = SocketIO(app, async_mode='threading')\n")
    blocked = _blocker(tmp_path, "simple_websocket")
    out = subprocess.run([sys.executable, "-m", "wsdiag", "check", "--app", "app.py", "--no-cache"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join((blocked, str(ROOT)))))
    assert out.returncode == 3 and out.stdout == ""
    (line,) = out.stderr.strip().splitlines()
    assert "Invalid async_mode specified" in line and "need simple-websocket installed" in line


@pytest.mark.parametrize("deployment, tls", [
    ({"gunicorn.conf.py": 'worker_class = "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"\n'
                          'certfile = "/etc/ssl/app.pem"\nkeyfile = "/etc/ssl/app.key"\n'}, True),
    ({"Procfile": "web: gunicorn -k geventwebsocket.gunicorn.workers.GeventWebSocketWorker --certfile=c.pem app:app\n"}, True),
    ({"Procfile": "web: gunicorn -k geventwebsocket.gunicorn.workers.GeventWebSocketWorker app:app\n"}, False),
])
def test_tls_evidence_from_the_deployment_makes_http_origins_unmatchable(tmp_path, deployment, tls):
    """gunicorn serving TLS itself (--certfile, or certfile in gunicorn.conf.py) means https pages:
    a list of http:// origins is WS523; without TLS evidence it is left alone."""
    (tmp_path / "app.py").write_text("from flask import Flask\nfrom flask_socketio import SocketIO\napp = Flask(__name__)\n"
                                     "socketio = SocketIO(app, cors_allowed_origins=['http://chat.example.com'])\n")
    for name, text in deployment.items():
        (tmp_path / name).write_text(text)
    doc = _check(tmp_path, ".")
    codes = {f["code"] for f in doc["findings"]}
    assert ("WS523" in codes) == tls and "WS522" in codes, doc["findings"]
