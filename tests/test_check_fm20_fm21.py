"""`wsdiag check` (static, and the same rules through `check --app`) on FAILURES.md FM-20 and FM-21.

* FM-20 (WS508): a WebSocket route of a blueprint that fails routing (no websocket=True on
  Werkzeug >= 2) runs none of the blueprint's before_request / url_value_preprocessor /
  after_request / teardown_request / errorhandler functions; its errorhandler(400) or
  errorhandler(WebsocketMismatch) never catches the mismatch. One finding per failing route,
  naming each hook with file:line; in app mode the in-process verdict replaces the static one.
* FM-21 (WS525): a health check (Dockerfile HEALTHCHECK, compose healthcheck, Kubernetes probe,
  nginx/ALB) pointed at a path only a websocket=True rule or a flask-sock route matches gets 400.
* FM-21 (WS506): websocket=True (or a flask-sock route) with methods other than GET/HEAD/OPTIONS
  raises ValueError when the rule is registered, on every Werkzeug release of the matrix.

Every claim about Flask/Werkzeug is checked here against the real library: Flask's test client
for routing-level facts, real servers (gevent-websocket's handler, gevent's pywsgi with
flask-sock) for the 400 a health check gets, and the matrix virtualenvs for the ValueError.
Apps are real files written into tmp dirs and run through the real CLI or ``run_check``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import py_compile
import shutil
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from wsdiag.check.run import CheckOptions, run_check

ROOT = Path(__file__).resolve().parent.parent
VENVS = Path(os.environ.get("VENVS", "/work/scratch/venvs"))
UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
           "Sec-WebSocket-Version": "13"}


def write(root: Path, files: dict) -> Path:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def cli(*args: str, cwd: Path) -> tuple[int, dict]:
    """`wsdiag check --format json ARGS` in ``cwd``: the real command line (in this process for the static
    scan, through click; in a child for --app, which imports the app)."""
    argv = ["check", "--no-cache", "--format", "json", *args]
    if "--app" in args:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join((str(cwd), str(ROOT))))
        r = subprocess.run([sys.executable, "-m", "wsdiag", *argv], cwd=cwd, capture_output=True, text=True,
                           timeout=120, env=env)
        code, out, err = r.returncode, r.stdout, r.stderr
    else:
        from click.testing import CliRunner

        from wsdiag.cli import main

        try:
            runner = CliRunner(mix_stderr=False)
        except TypeError:  # click >= 8.2 keeps them apart
            runner = CliRunner()
        before = os.getcwd()
        os.chdir(cwd)
        try:
            res = runner.invoke(main, argv, catch_exceptions=False)
        finally:
            os.chdir(before)
        code, out, err = res.exit_code, res.stdout, ""
    assert code in (0, 1), (code, out[-2000:], err[-2000:])
    doc = json.loads(out)
    assert doc["exit_status"] == code
    return code, doc


def whole(path: Path) -> list:
    """The whole-project mode (--fix/--diff/--app use it): the same rules over every scan at once."""
    cwd = os.getcwd()
    os.chdir(path)
    try:
        return run_check(CheckOptions(paths=["."], diff=True, use_cache=False)).report.findings
    finally:
        os.chdir(cwd)


def codes(doc_or_findings) -> list[str]:
    items = doc_or_findings["findings"] if isinstance(doc_or_findings, dict) else doc_or_findings
    return sorted(f["code"] if isinstance(f, dict) else f.code for f in items)


def load(path: Path, name: str):
    """Import a tmp app file for real (its own module name, removed afterwards)."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.modules.pop(name, None)
    return mod


# -- FM-20 ---------------------------------------------------------------------------------------

BP_APP = '''
from flask import Blueprint, Flask, request
from werkzeug.routing import WebsocketMismatch

RAN = []
app = Flask(__name__)
api = Blueprint("api", __name__, url_prefix="/api")


@app.before_request
def app_log():
    RAN.append("app_log")


@api.before_app_request
def app_wide():
    RAN.append("app_wide")


@api.before_request
def require_token():
    RAN.append("require_token")


@api.url_value_preprocessor
def pull_lang(endpoint, values):
    RAN.append("pull_lang")


@api.after_request
def stamp(response):
    RAN.append("stamp")
    return response


@api.teardown_request
def cleanup(exc):
    RAN.append("cleanup")


@api.errorhandler(400)
def bad_request(e):
    RAN.append("bad_request")
    return "bp 400", 400


def on_mismatch(e):
    RAN.append("on_mismatch")
    return "bp mismatch", 400


api.register_error_handler(WebsocketMismatch, on_mismatch)


@api.errorhandler(404)
def not_found(e):
    RAN.append("not_found")
    return "bp 404", 404


@api.route("/ws")
def ws():
    RAN.append("view")
    sock = request.environ.get("wsgi.websocket")
    if sock is None:
        return "WebSocket only", 400
    while True:
        message = sock.receive()
        if message is None:
            break
        sock.send(message)
    return ""


@api.route("/live", websocket=True)
def live():
    RAN.append("live")
    sock = request.environ["wsgi.websocket"]
    sock.send(sock.receive())
    return ""


app.register_blueprint(api)
'''


def _line(text: str, needle: str) -> int:
    return next(n for n, ln in enumerate(textwrap.dedent(text).lstrip("\n").splitlines(), 1) if needle in ln)


def test_fm20_static_names_every_skipped_blueprint_hook_with_file_line(tmp_path):
    write(tmp_path, {"app.py": BP_APP})
    status, doc = cli(".", cwd=tmp_path)
    assert status == 1 and codes(doc) == ["WS501", "WS508"], doc["findings"]
    route_line = _line(BP_APP, '@api.route("/ws")')
    ws501, ws508 = sorted(doc["findings"], key=lambda f: f["code"])
    assert ws501["line"] == ws508["line"] == route_line  # one place: the failing route
    assert ws508["severity"] == "info" and ws508["evidence"]["blueprint"] == "api"
    at = ws508["evidence"]["hooks_at"]
    for name, kind, needle in [("require_token", "before_request", "@api.before_request"),
                               ("pull_lang", "url_value_preprocessor", "@api.url_value_preprocessor"),
                               ("stamp", "after_request", "@api.after_request"),
                               ("cleanup", "teardown_request", "@api.teardown_request"),
                               ("bad_request", "errorhandler(400)", "@api.errorhandler(400)"),
                               ("on_mismatch", "errorhandler(WebsocketMismatch)", "api.register_error_handler"),
                               ("not_found", "errorhandler(404)", "@api.errorhandler(404)")]:
        assert f"{name}() ({kind}, app.py:{_line(BP_APP, needle)})" in at, at
    # app-level registrations of the blueprint (before_app_request) do run: never listed
    assert not any("app_wide" in h or "app_log" in h for h in at)
    # the handlers written to catch the 400 are called out; the 404 handler is not
    assert "bad_request() (errorhandler(400)" in ws508["summary"] and "on_mismatch() (errorhandler(WebsocketMismatch)" in ws508["summary"]
    assert "never catch this 400 (WebsocketMismatch)" in ws508["summary"] and "not_found() (errorhandler(404)" not in ws508["evidence"]["handlers"]
    # the websocket=True route of the same blueprint routes fine: no finding for it
    assert all(f["line"] == route_line for f in doc["findings"])
    # the whole-project mode says the same
    assert codes(whole(tmp_path)) == ["WS501", "WS508"]


def test_fm20_claim_holds_on_real_flask(tmp_path):
    """What WS508 says, with the real Flask/Werkzeug: on the failing upgrade only app-level hooks and
    handlers run; the same blueprint's websocket=True route runs every blueprint hook."""
    write(tmp_path, {"app.py": BP_APP})
    mod = load(tmp_path / "app.py", "wsdiag_fm20_app")
    client = mod.app.test_client()
    r = client.get("/api/ws", headers=UPGRADE)
    assert r.status_code == 400
    assert mod.RAN == ["app_log", "app_wide"], mod.RAN  # no blueprint hook, no blueprint error handler, no view
    mod.RAN.clear()
    r = client.get("/api/live", headers=UPGRADE)
    assert {"require_token", "pull_lang", "live", "stamp", "cleanup"} <= set(mod.RAN), mod.RAN


def test_fm20_app_mode_reports_it_once_from_the_live_app(tmp_path):
    """check --app: the in-process WS508 replaces the static one (not twice), with the live app's hooks."""
    write(tmp_path, {"app.py": BP_APP})
    status, doc = cli("--app", "app.py", cwd=tmp_path)
    found = [(f["code"], f["line"]) for f in doc["findings"]]
    route_line = _line(BP_APP, '@api.route("/ws")')
    assert sorted(found) == [("WS508", route_line), ("WS601", route_line)], doc["findings"]
    ws508 = next(f for f in doc["findings"] if f["code"] == "WS508")
    assert ws508["evidence"]["blueprint"] == "api"
    names = ws508["evidence"]["hooks"].split(", ")
    assert sorted(names) == sorted(["require_token()", "pull_lang()", "stamp()", "cleanup()", "bad_request()",
                                    "on_mismatch()", "not_found()"])
    assert "bad_request()" in ws508["evidence"]["handlers"] and "on_mismatch()" in ws508["evidence"]["handlers"]
    assert "not_found()" not in ws508["evidence"]["handlers"]
    assert "register_error_handler" not in ws508["summary"]


MATRIX = ("f114-w101", "f201-w200", "f201-w201", "f203-w202", "f203-w203", "f213-w212", "f225-w223", "f233-w238",
          "f303-w306", "f313-w319")


def matrix_python(venv: str) -> Path:
    py = VENVS / venv / "bin" / "python"
    if not py.exists():
        if os.environ.get("WSDIAG_REQUIRE_MATRIX_VENVS"):
            pytest.fail(f"matrix virtualenv {venv} missing; .ci/run builds them with tests/matrix/mkvenvs.sh")
        pytest.skip(f"matrix virtualenv {venv} not built (tests/matrix/mkvenvs.sh)")
    return py


@pytest.mark.parametrize("venv", MATRIX)
def test_fm20_check_app_agrees_with_each_real_flask_release(tmp_path, venv):
    """In each matrix virtualenv (Flask 1.1 .. 3.1): `check --app` reports WS508 for the route exactly when
    that release's Flask, given a real upgrade request, skips the blueprint's hooks and handlers."""
    py = matrix_python(venv)
    write(tmp_path, {"app.py": BP_APP})
    env = dict(os.environ, PYTHONPATH=os.pathsep.join((str(tmp_path), str(ROOT))))
    r = subprocess.run([str(py), "-m", "wsdiag", "check", "--app", "app.py", "--format", "json", "--no-cache"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode in (0, 1), r.stderr
    doc = json.loads(r.stdout)
    route_line = _line(BP_APP, '@api.route("/ws")')
    ws508 = [f for f in doc["findings"] if f["code"] == "WS508" and f["line"] == route_line]
    served = subprocess.run([str(py), "-c", "import json, app\n"
                             f"r = app.app.test_client().get('/api/ws', headers={UPGRADE!r})\n"
                             "print(json.dumps([r.status_code, app.RAN]))"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert served.returncode == 0, served.stderr
    status, ran = json.loads(served.stdout)
    skipped = not ({"require_token", "pull_lang", "stamp", "cleanup"} & set(ran))
    assert bool(ws508) == skipped, (doc["versions"], ran, doc["findings"])
    if int(doc["versions"]["werkzeug"].split(".")[0]) >= 2:
        assert ws508 and status == 400 and ran == ["app_log", "app_wide"], (ran, status)
        assert len(ws508) == 1 and "bad_request()" in ws508[0]["evidence"]["handlers"]


def test_fm20_nested_blueprint_hooks_of_the_parent_are_named(tmp_path):
    """fixtures/check/factory_app.py: the route is on `rooms`, nested in `chat`, whose hook is skipped
    (the same name tests/test_check_inprocess.py gets from the live app)."""
    shutil.copy(ROOT / "fixtures" / "check" / "factory_app.py", tmp_path / "factory_app.py")
    rc, doc = cli(".", cwd=tmp_path)
    ws508 = [f for f in doc["findings"] if f["code"] == "WS508"]
    assert len(ws508) == 1 and ws508[0]["line"] == 32 and ws508[0]["evidence"]["blueprint"] == "chat.rooms"
    assert ws508[0]["evidence"]["hooks_at"] == ["chat_auth() (before_request, factory_app.py:27)"]


def test_fm20_served_fixture_agrees(tmp_path):
    """fixtures/trace/blueprint.py is the app tests/test_undecided.py serves under gevent-websocket, where the
    trace shows require_token skipped: check names the same hook at the same route."""
    shutil.copy(ROOT / "fixtures" / "trace" / "blueprint.py", tmp_path / "blueprint.py")
    rc, doc = cli(".", cwd=tmp_path)
    ws508 = [f for f in doc["findings"] if f["code"] == "WS508"]
    assert [f["evidence"]["hooks"] for f in ws508] == ["require_token()"]
    assert ws508[0]["source"].strip() == '@api.route("/ws")'


@pytest.mark.parametrize("name,files", [
    ("websocket=True route", {"app.py": BP_APP.replace('@api.route("/ws")', '@api.route("/ws", websocket=True)')}),
    ("flask-sock route on a blueprint", {"app.py": '''
        from flask import Blueprint, Flask
        from flask_sock import Sock

        app = Flask(__name__)
        sock = Sock(app)
        bp = Blueprint("rt", __name__, url_prefix="/rt")


        @bp.before_request
        def auth():
            return None


        @bp.errorhandler(400)
        def bad(e):
            return "bad", 400


        @sock.route("/ws", bp=bp)
        def echo(ws):
            while True:
                data = ws.receive()
                if data is None:
                    break
                ws.send(data)


        app.register_blueprint(bp)
        '''}),
    ("Flask-SocketIO app with blueprint hooks", {"app.py": '''
        from flask import Blueprint, Flask
        from flask_socketio import SocketIO

        app = Flask(__name__)
        bp = Blueprint("pages", __name__)
        socketio = SocketIO(app, async_mode="threading")


        @bp.before_request
        def auth():
            return None


        @bp.route("/")
        def index():
            return "hello"


        @socketio.on("message")
        def message(data):
            socketio.emit("reply", data)


        app.register_blueprint(bp)
        '''}),
])
def test_fm20_silent_where_routing_succeeds(tmp_path, name, files):
    write(tmp_path, files)
    status, doc = cli(".", cwd=tmp_path)
    assert "WS508" not in codes(doc) and "WS501" not in codes(doc), (name, doc["findings"])
    assert not [f for f in doc["findings"] if f["severity"] == "error"], (name, doc["findings"])
    status, doc = cli("--app", "app.py", cwd=tmp_path)
    assert "WS508" not in codes(doc), (name, doc["findings"])


def test_fm20_follows_the_release_on_werkzeug_1(tmp_path):
    """Werkzeug 1.0 routes the plain rule (WS509): routing succeeds, the blueprint hooks run, no WS508
    there; it is the websocket=True rule that never matches there (WS706), so WS508 moves to it."""
    write(tmp_path, {"app.py": BP_APP})
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        fs = run_check(CheckOptions(paths=["."], use_cache=False,
                                    versions={"flask": "1.1.4", "werkzeug": "1.0.1", "gevent-websocket": "0.10.1"})).report.findings
    finally:
        os.chdir(cwd)
    by = {(f.code, f.location.line) for f in fs}
    plain, ws_true = _line(BP_APP, '@api.route("/ws")'), _line(BP_APP, '@api.route("/live", websocket=True)')
    assert by == {("WS509", plain), ("WS706", ws_true), ("WS508", ws_true)}, by


# -- FM-21 (a): health checks --------------------------------------------------------------------

SOCK_APP = '''
from flask import Flask
from flask_sock import Sock

app = Flask(__name__)
sock = Sock(app)


@sock.route("/ws")
def echo(ws):
    while True:
        data = ws.receive()
        if data is None:
            break
        ws.send(data)


@app.route("/healthz")
def healthz():
    return "ok"
'''

DOCKERFILE = '''
FROM python:3.12-slim
WORKDIR /app
COPY . .
HEALTHCHECK --interval=30s --timeout=3s \\
  CMD curl -fsS http://localhost:8000/ws || exit 1
CMD ["gunicorn", "--threads", "50", "-b", "0.0.0.0:8000", "app:app"]
'''
# the same for a raw gevent-websocket app (its worker is gevent-websocket's)
DOCKERFILE_GWS = DOCKERFILE.replace('"--threads", "50"', '"-k", "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"')

COMPOSE = '''
services:
  web:
    build: .
    ports: ["8000:8000"]
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O- http://localhost:8000/ws?probe=1 || exit 1"]
      interval: 10s
  redis:
    image: redis:7
    healthcheck:
      test: ["CMD", "redis-cli", "ping"]
  proxy:
    image: nginx:1.27
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost/ws"]
'''

K8S = '''
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: web
          image: registry.example/web:1.2
          readinessProbe:
            httpGet:
              path: "/ws"
              port: 8000
          livenessProbe:
            httpGet:
              path: /healthz
              port: 8000
        - name: sidecar
          image: nginx:1.27
          livenessProbe:
            httpGet:
              path: /ws
              port: 80
'''


def test_fm21_health_checks_on_a_websocket_only_path_are_ws525(tmp_path):
    write(tmp_path, {"app.py": SOCK_APP, "Dockerfile": DOCKERFILE, "docker-compose.yml": COMPOSE, "k8s/deploy.yaml": K8S})
    status, doc = cli(".", cwd=tmp_path)
    assert status == 1
    got = sorted((f["file"], f["line"], f["evidence"]["probe"]) for f in doc["findings"] if f["code"] == "WS525")
    assert got == [("Dockerfile", _line(DOCKERFILE, "CMD curl"), "Dockerfile HEALTHCHECK"),
                   ("docker-compose.yml", _line(COMPOSE, "wget"), "docker-compose healthcheck"),
                   ("k8s/deploy.yaml", _line(K8S, 'path: "/ws"'), "Kubernetes readinessProbe httpGet")], doc["findings"]
    assert [f for f in doc["findings"] if f["code"] != "WS525"] == []
    for f in doc["findings"]:
        assert f["severity"] == "error" and f["evidence"]["path"] == "/ws"
        assert f["evidence"]["rule_at"] == f"app.py:{_line(SOCK_APP, '@sock.route')}"
        assert "Add a plain HTTP route for health checks and point the probe at it" in f["fix"]
        # the app already serves /healthz: the fix only points the probe at it
        assert f["diff"].count("--- a/") == 1 and f"--- a/{f['file']}" in f["diff"] and "/healthz" in f["diff"]
    k8s = next(f for f in doc["findings"] if f["file"] == "k8s/deploy.yaml")
    assert k8s["source"].strip() == 'path: "/ws"' and k8s["column"] == 22
    assert codes(whole(tmp_path)) == ["WS525"] * 3


@pytest.mark.parametrize("name,text,needle", [
    ("deploy/nginx.conf", "upstream web { server 127.0.0.1:8000; }\nserver {\n  location / {\n    proxy_pass http://web;\n"
                          "    health_check uri=/ws interval=5;\n  }\n}\n", "health_check"),
    ("cloudformation.yaml", "Resources:\n  Targets:\n    Type: AWS::ElasticLoadBalancingV2::TargetGroup\n    Properties:\n"
                            "      HealthCheckPath: /ws\n      Port: 8000\n", "HealthCheckPath"),
    ("Dockerfile", "FROM python:3.12-slim\nHEALTHCHECK CMD python -c \"import urllib.request as u; "
                   "u.urlopen('http://127.0.0.1:8000/ws')\"\n", "HEALTHCHECK"),
])
def test_fm21_load_balancer_and_python_probes(tmp_path, name, text, needle):
    write(tmp_path, {"app.py": SOCK_APP, name: text})
    status, doc = cli(".", cwd=tmp_path)
    assert [(f["code"], f["file"], f["line"]) for f in doc["findings"]] == [("WS525", name, _line(text, needle))], doc["findings"]
    write(tmp_path, {name: text.replace("/ws", "/healthz")})
    status, doc = cli(".", cwd=tmp_path)
    assert status == 0 and doc["findings"] == []


def _apply(tree: Path, diff: str, work: Path) -> Path:
    """Copy the project, apply one suggested diff with the real `patch`, compile every Python file."""
    shutil.copytree(tree, work)
    done = subprocess.run(["patch", "-p1", "--batch", "--silent"], input=diff, cwd=work, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, (diff, done.stdout, done.stderr)
    for py in work.rglob("*.py"):
        py_compile.compile(str(py), doraise=True)
    return work


@pytest.mark.parametrize("with_route", [True, False])
def test_fm21_fix_diffs_apply_compile_and_cure_the_probe(tmp_path, with_route):
    """Each WS525 diff applies with `patch`, compiles, leaves no WS525 for its probe, and the patched app
    answers the new probe path with 200 (the real Flask). Without a /healthz route the diff adds one
    right after the WebSocket view, with the file's own app object."""
    src = SOCK_APP if with_route else SOCK_APP.split("@app.route")[0].replace("app = Flask(", "application = Flask(")
    src = src.replace("Sock(app)", "Sock(application)") if not with_route else src
    tree = write(tmp_path / "src", {"app.py": src, "Dockerfile": DOCKERFILE, "docker-compose.yml": COMPOSE,
                                    "k8s/deploy.yaml": K8S})
    status, doc = cli(".", cwd=tree)
    found = [f for f in doc["findings"] if f["code"] == "WS525"]
    assert len(found) == 3
    for n, f in enumerate(found):
        assert f["diff"].count("--- a/") == (1 if with_route else 2), f["diff"]
        if not with_route:
            assert '+@application.route("/healthz")' in f["diff"]
        work = _apply(tree, f["diff"], tmp_path / f"work{n}")
        status, after = cli(".", cwd=work)
        assert (f["file"], f["line"]) not in [(g["file"], g["line"]) for g in after["findings"] if g["code"] == "WS525"]
        mod = load(work / "app.py", f"wsdiag_fm21_fixed_{with_route}_{n}")
        flask_app = getattr(mod, "app", None) or mod.application
        assert flask_app.test_client().get("/healthz").status_code == 200
        assert flask_app.test_client().head("/healthz").status_code == 200


def test_fm21_health_check_400_is_real_on_real_servers(tmp_path):
    """The claim, served for real: fixtures/stacks/apps.py (gevent-websocket's websocket=True /ws and
    flask-sock's /ws, plain /health) under gevent-websocket's handler and gevent's pywsgi. check says
    WS525 for a probe at /ws and nothing for a probe at /health; the servers answer a plain GET and HEAD
    of /ws with 400 and /health with 200."""
    from tests.test_failures import start_stack

    shutil.copy(ROOT / "fixtures" / "stacks" / "apps.py", tmp_path / "apps.py")
    write(tmp_path, {"Dockerfile": DOCKERFILE})
    status, doc = cli(".", cwd=tmp_path)
    (f,) = [f for f in doc["findings"] if f["code"] == "WS525"]  # (and WS505: the Dockerfile's gunicorn is not gevent-websocket's)
    assert f["evidence"]["route"] == "'/ws'" and f["file"] == "Dockerfile"
    assert not f.get("diff")  # the rules live in factory functions: no safe place for a route, advice only
    assert len(f["evidence"]["routes"]) == 3  # gws_app, gws_close_app (websocket=True) and flasksock_app's /ws
    write(tmp_path, {"Dockerfile": DOCKERFILE.replace(":8000/ws", ":8000/health")})
    status, doc = cli(".", cwd=tmp_path)
    assert "WS525" not in codes(doc)
    for kind, module in (("gws", "fixtures.failures.gws_echo"), ("pywsgi", "fixtures.failures.sock_echo")):
        server = start_stack(kind, module)
        try:
            for method in ("GET", "HEAD"):
                req = urllib.request.Request(f"http://127.0.0.1:{server.port}/ws", method=method)
                with pytest.raises(urllib.error.HTTPError) as err:
                    urllib.request.urlopen(req, timeout=5)
                assert err.value.code == 400, (kind, method)
                with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/health", timeout=5) as ok:
                    assert ok.status == 200
        finally:
            server.stop()


BLUEPRINT_WS = {
    "views.py": '''
        from flask import Blueprint, request

        bp = Blueprint("live", __name__, url_prefix="/live")


        @bp.route("/rooms/<int:room>", websocket=True)
        def room(room):
            sock = request.environ["wsgi.websocket"]
            while True:
                message = sock.receive()
                if message is None:
                    break
                sock.send(message)
            return ""
        ''',
    "app.py": '''
        from flask import Flask

        from views import bp

        app = Flask(__name__)
        app.register_blueprint(bp, url_prefix="/api/live")


        @app.route("/health")
        def health():
            return "ok"
        ''',
}


@pytest.mark.parametrize("path,fires", [("/api/live/rooms/7", True), ("/live/rooms/7", False),
                                        ("/api/live/rooms/seven", False), ("/health", False)])
def test_fm21_paths_map_through_blueprint_prefixes_and_converters(tmp_path, path, fires):
    """register_blueprint(url_prefix=...) in another file wins over the Blueprint's own; <int:room>
    matches 7, not 'seven'. Checked against the real app's url_map too."""
    write(tmp_path, dict(BLUEPRINT_WS, **{"deploy.yaml": f'''
        containers:
          - name: web
            image: example/web
            livenessProbe:
              httpGet:
                path: {path}
                port: 8000
        '''}))
    status, doc = cli(".", cwd=tmp_path)
    assert (codes(doc) == ["WS525"]) is fires, doc["findings"]
    sys.path.insert(0, str(tmp_path))
    try:
        mod = load(tmp_path / "app.py", "wsdiag_fm21_bp_app")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("views", None)
    status = mod.app.test_client().get(path).status_code
    assert (status == 400) is fires, status  # the real routing: 400 exactly where WS525 fires


@pytest.mark.parametrize("name,files", [
    ("a plain page at the WebSocket rule's path", {"app.py": '''
        from flask import Flask, request

        app = Flask(__name__)


        def ws():
            sock = request.environ["wsgi.websocket"]
            sock.send(sock.receive())
            return ""


        def page():
            return "ok"


        app.add_url_rule("/ws", "ws", ws, websocket=True)
        app.add_url_rule("/ws", "page", page)
        ''', "Dockerfile": DOCKERFILE_GWS}),
    ("raw gevent-websocket, probe on /health", {"app.py": '''
        from flask import Flask, request

        app = Flask(__name__)


        @app.route("/ws", websocket=True)
        def ws():
            sock = request.environ["wsgi.websocket"]
            sock.send(sock.receive())
            return ""


        @app.route("/health")
        def health():
            return "ok"
        ''', "Dockerfile": DOCKERFILE_GWS.replace("/ws ||", "/health ||")}),
    ("flask-sock, probes on /healthz", {"app.py": SOCK_APP, "k8s.yaml": K8S.replace('"/ws"', "/healthz")}),
    ("Flask-SocketIO, probe on its page", {"app.py": '''
        from flask import Flask
        from flask_socketio import SocketIO

        app = Flask(__name__)
        socketio = SocketIO(app, async_mode="threading")


        @app.route("/")
        def index():
            return "ok"
        ''', "Dockerfile": DOCKERFILE.replace("/ws ||", "/ ||")}),
    ("the probe belongs to an nginx image", {"app.py": SOCK_APP, "proxy/Dockerfile": '''
        FROM nginx:1.27
        HEALTHCHECK CMD curl -f http://localhost/ws || exit 1
        '''}),
])
def test_fm21_healthy_apps_get_no_ws525(tmp_path, name, files):
    write(tmp_path, files)
    status, doc = cli(".", cwd=tmp_path)
    assert "WS525" not in codes(doc), (name, doc["findings"])
    assert not [f for f in doc["findings"] if f["severity"] == "error"], (name, doc["findings"])
    assert "WS525" not in codes(whole(tmp_path))


def test_fm21_both_rules_really_answer_the_probe(tmp_path):
    """Why the 'both rules' app is healthy: Werkzeug falls through to the plain rule for a plain GET."""
    from flask import Flask

    app = Flask(__name__)
    app.add_url_rule("/ws", "ws", lambda: "ws", websocket=True)
    app.add_url_rule("/ws", "ws_http", lambda: "ok")
    client = app.test_client()
    assert client.get("/ws").status_code == 200 and client.head("/ws").status_code == 200


def test_fm21_app_mode_routes_the_probe_in_the_live_app(tmp_path):
    """check --app routes each probe's path with the installed Werkzeug: a computed url_prefix the source
    cannot tell is decided (WS525 added), and a plain rule the static pass did not see (a module without
    WebSocket code) makes the probe healthy (WS525 dropped); the real test client agrees both times."""
    write(tmp_path / "a", {
        "views.py": '''
            from flask import Blueprint, request

            PREFIX = "/api"
            bp = Blueprint("live", __name__, url_prefix=PREFIX)


            @bp.route("/ws", websocket=True)
            def ws():
                sock = request.environ["wsgi.websocket"]
                sock.send(sock.receive())
                return ""
            ''',
        "app.py": '''
            from flask import Flask

            from views import bp

            app = Flask(__name__)
            app.register_blueprint(bp)
            ''',
        "k8s.yaml": K8S.replace('"/ws"', "/api/ws").split("        - name: sidecar")[0]})
    status, doc = cli(".", cwd=tmp_path / "a")
    assert "WS525" not in codes(doc)  # the source alone cannot tell where the blueprint is served
    status, doc = cli("--app", "app.py", cwd=tmp_path / "a")
    (f,) = [f for f in doc["findings"] if f["code"] == "WS525"]
    assert f["evidence"]["route"] == "'/api/ws'" and f["evidence"]["rule_at"] == "views.py:7" and status == 1
    assert "live app" in f["evidence"]["routed_by"] and f["file"] == "k8s.yaml"
    write(tmp_path / "b", {"app.py": SOCK_APP.split("@app.route")[0] + "\nimport pages  # noqa: E402,F401\n",
                           "pages.py": '''
                               from app import app


                               @app.route("/ws")
                               def landing():
                                   return "connect with a WebSocket client"
                               ''',
                           "Dockerfile": DOCKERFILE})
    status, doc = cli("--app", "app.py", cwd=tmp_path / "b")
    assert "WS525" not in codes(doc), doc["findings"]
    sys.path.insert(0, str(tmp_path / "b"))
    try:
        mod = load(tmp_path / "b" / "app.py", "app")
        assert mod.app.test_client().get("/ws").status_code == 200  # the probe is answered by the landing page
    finally:
        sys.path.remove(str(tmp_path / "b"))
        sys.modules.pop("pages", None)


def test_fm21_app_mode_reads_the_deployment_files_too(tmp_path):
    write(tmp_path, {"app.py": SOCK_APP, "Dockerfile": DOCKERFILE})
    status, doc = cli("--app", "app.py", cwd=tmp_path)
    assert status == 1 and codes(doc) == ["WS525"], doc["findings"]


# -- FM-21 (b): websocket=True with other methods -----------------------------------------------

METHODS_APP = '''
from flask import Flask, request
from flask_sock import Sock

app = Flask(__name__)
sock = Sock(app)


@app.route("/ws", websocket=True, methods=["GET", "POST"])
def ws():
    sock_ = request.environ["wsgi.websocket"]
    sock_.send(sock_.receive())
    return ""
'''

SOCK_POST = '''
from flask import Flask
from flask_sock import Sock

app = Flask(__name__)
sock = Sock(app)


@sock.route("/echo", methods=["POST"])
def echo(ws):
    ws.send(ws.receive())
'''


@pytest.mark.parametrize("source,needle,methods", [(METHODS_APP, "@app.route", "GET, POST"),
                                                   (SOCK_POST, "@sock.route", "POST")])
def test_fm21_websocket_rule_with_post_is_ws506_and_really_fails_at_import(tmp_path, source, needle, methods):
    write(tmp_path, {"app.py": source})
    status, doc = cli(".", cwd=tmp_path)
    ws506 = [f for f in doc["findings"] if f["code"] == "WS506"]
    assert status == 1 and len(ws506) == 1, doc["findings"]
    assert ws506[0]["file"] == "app.py" and ws506[0]["line"] == _line(source, needle)
    assert ws506[0]["evidence"]["methods"] == methods and "ValueError" in ws506[0]["summary"]
    with pytest.raises(ValueError, match="WebSocket rules can only use 'GET', 'HEAD', and 'OPTIONS' methods"):
        load(tmp_path / "app.py", "wsdiag_fm21_methods_app")


def test_fm21_get_head_options_websocket_rule_is_fine(tmp_path):
    source = METHODS_APP.replace('["GET", "POST"]', '["GET", "HEAD", "OPTIONS"]')
    write(tmp_path, {"app.py": source})
    status, doc = cli(".", cwd=tmp_path)
    assert "WS506" not in codes(doc)
    load(tmp_path / "app.py", "wsdiag_fm21_methods_ok")  # imports


PROBE = r'''
import json
from importlib.metadata import version
from werkzeug.routing import Map, Rule
from werkzeug.test import EnvironBuilder
out = {"werkzeug": version("werkzeug")}
for methods in (["GET", "POST"], ["POST"], ["PUT"], ["GET", "HEAD", "OPTIONS"]):
    try:
        Map([Rule("/ws", endpoint="ws", websocket=True, methods=methods)])
        out["+".join(methods)] = "ok"
    except ValueError as exc:
        out["+".join(methods)] = "ValueError: " + str(exc)
adapter = Map([Rule("/ws", endpoint="ws", websocket=True)]).bind_to_environ(EnvironBuilder(path="/ws").get_environ())
try:
    adapter.match()
    out["plain_get"] = "match"
except Exception as exc:
    out["plain_get"] = "%s %s" % (type(exc).__name__, getattr(exc, "code", None))
print(json.dumps(out))
'''


@pytest.mark.parametrize("venv", MATRIX)
def test_fm21_version_claims_hold_on_every_matrix_release(venv):
    """WS506 ('Werkzeug raises ValueError') and WS525 ('a plain GET gets 400 WebsocketMismatch') on
    each real Werkzeug release of the matrix, 1.0.1 to 3.1."""
    py = matrix_python(venv)
    r = subprocess.run([str(py), "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    msg = "ValueError: WebSocket rules can only use 'GET', 'HEAD', and 'OPTIONS' methods."
    assert out["GET+POST"] == out["POST"] == out["PUT"] == msg, out
    assert out["GET+HEAD+OPTIONS"] == "ok" and out["plain_get"] == "WebsocketMismatch 400", out


def test_fm21_claims_hold_on_the_installed_release():
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    out = json.loads(r.stdout)
    assert out["POST"].startswith("ValueError") and out["plain_get"] == "WebsocketMismatch 400", out


def test_new_codes_are_registered_and_documented():
    from wsdiag.core.codes import REGISTRY

    text = (ROOT / "docs" / "check.md").read_text()
    for code in ("WS508", "WS525"):
        assert code in REGISTRY and f"| {code} |" in text
