"""wsdiag check, static mode: source read with ast (never imported), findings with exact locations."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from wsdiag.check import static
from wsdiag.check.result import sort_key

ROOT = Path(__file__).resolve().parent.parent
CHECK = ROOT / "fixtures" / "check"
NEW = "3.1.8"  # a Werkzeug release >= 2.0.2


def scan(name: str, explicit: bool = True) -> static.ModuleScan:
    path = CHECK / name
    return static.scan_file(str(path.relative_to(ROOT)), path.read_text(encoding="utf-8"), explicit)


def found(scans, werkzeug=NEW):
    if isinstance(scans, static.ModuleScan):
        scans = [scans]
    return static.findings(scans, werkzeug)


def codes(findings) -> list[tuple[str, int]]:
    return [(f.code, f.location.line) for f in findings]


def test_seed_route_is_flagged_at_the_decorator():
    """Report variant 1: WS501 at the @app.route line, with the source line, the fix and its diff."""
    (f,) = found(scan("seed_route.py"))
    e, at, fix = f.evidence, f.location, f.fix
    assert (f.code, at.line, at.column, at.end_column) == ("WS501", 21, 2, 18)
    assert at.source == "@app.route('/ws')"
    assert e["route"] == "'/ws'" and e["view"] == "ws()"
    assert fix.blocker is None
    assert "-@app.route('/ws')\n+@app.route('/ws', websocket=True)\n" in fix.diff
    assert "websocket=True" in fix.advice
    # on the wire (JSON, cache) they are the evidence keys they always were
    wire = f.to_dict()["evidence"]
    assert (wire["file"], wire["line"], wire["column"], wire["end_column"]) == (at.file, 21, 2, 18)
    assert wire["diff"] == fix.diff and "fix_blocker" not in wire and "line" not in e
    assert type(f).from_wire(f.code, wire, f.subject, f.confidence) == f


def test_seed_hook_is_the_workaround_with_the_proper_fix():
    """Report variant 2: the app-level hook is WS502 (a warning) and the fix names its handler."""
    (f,) = found(scan("seed_hook.py"))
    assert f.code == "WS502" and f.severity.value == "warning"
    assert f.evidence["hook"] == "before()" and f.evidence["level"] == "app"
    assert f.evidence["helpers"] == ["websocket_handler()"]
    assert '@app.route("/ws", websocket=True)' in f.fix.advice
    assert 'websocket_handler(request.environ["wsgi.websocket"])' in f.fix.advice


def test_seed_fixed_passes():
    """Report variant 3 (websocket=True, WSGIServer with WebSocketHandler): no findings."""
    assert found(scan("seed_fixed.py")) == []


def test_source_is_never_imported():
    """The static scan reads text: a module whose import would fail is still scanned."""
    assert "fixtures.check.flask_sockets_app" not in sys.modules
    (f,) = found(scan("flask_sockets_app.py"))
    assert (f.code, f.location.line, f.evidence["route"]) == ("WS503", 13, "'/echo'")
    assert "fixtures.check.flask_sockets_app" not in sys.modules


def test_factory_blueprints_methodview_helper_and_strict_slashes():
    """Nested blueprints, a helper that reads the socket, a MethodView via add_url_rule, a '/live/' rule."""
    fs = found(scan("factory_app.py"))
    # WS508 (FM-20): the failing room route skips chat_auth, the hook of the blueprint `rooms` is nested in
    assert codes(fs) == [("WS501", 32), ("WS507", 41), ("WS501", 71), ("WS508", 32)]
    room, slash, echo, hooks = fs
    assert hooks.evidence["blueprint"] == "chat.rooms" and hooks.evidence["hooks"] == "chat_auth()"
    assert room.evidence["view"] == "room_socket()"  # reads through current_socket()
    assert echo.evidence["view"] == "class EchoView" and echo.evidence["via"] == "add_url_rule"
    assert slash.evidence["alt_path"] == "'/live'" and "strict_slashes=False" in slash.fix.diff


def test_views_inside_a_factory_get_pythons_qualnames():
    s = scan("factory_app.py")
    assert "create_app.<locals>.log_upgrades" in s.functions
    assert s.reads_socket("EchoView") and s.reads_socket("room_socket") and not s.reads_socket("chat_auth")


def test_host_and_subdomain_rules_are_scanned():
    assert codes(found(scan("hosts_app.py"))) == [("WS501", 15), ("WS501", 37)]


def test_websocket_rule_with_post_is_ws506():
    (f,) = found(scan("methods_app.py"))
    assert f.code == "WS506" and f.evidence["methods"] == "GET, POST"


def test_servers_without_websocket_handler_are_ws504():
    fs = found(scan("servers_app.py"))
    assert [(f.code, f.evidence["call"]) for f in fs] == [("WS504", "WSGIServer(...)"), ("WS504", "app.run()")]
    assert "handler_class=WebSocketHandler" in fs[0].fix.diff
    assert "WSGIServer((\"127.0.0.1\", 5000), app, handler_class=WebSocketHandler)" in fs[1].fix.diff


def test_gunicorn_worker_classes_are_ws505_in_config_procfile_and_scripts():
    """sync (default), gevent and --worker-class= forms; the right worker and pip lines are not flagged."""
    fs = found([scan("deploy/gunicorn.conf.py"), scan("deploy/Procfile"), scan("deploy/run.sh")])
    fs.sort(key=sort_key)
    got = [(f.code, Path(f.location.file).name, f.location.line, f.evidence.get("worker")) for f in fs]
    assert got == [
        ("WS505", "Procfile", 1, "gevent"),
        ("WS505", "gunicorn.conf.py", 4, "gevent"),
        ("WS505", "run.sh", 4, "sync (the default: no -k given)"),
        ("WS504", "run.sh", 6, None),
    ]
    conf = next(f for f in fs if f.location.file.endswith(".py")).fix.diff
    assert '+worker_class = "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"' in conf


def test_server_findings_need_websocket_use_unless_the_file_is_named():
    """A gunicorn config found while walking a project without sockets is not flagged."""
    assert found(scan("deploy/Procfile", explicit=False)) == []
    assert found([scan("deploy/Procfile", explicit=False), scan("seed_fixed.py", explicit=False)])


@pytest.mark.parametrize("werkzeug,code", [("1.0.1", "WS509"), ("2.0.1", "WS501"), ("2.0.2", "WS501"), (None, "WS501")])
def test_advice_follows_the_installed_werkzeug(werkzeug, code):
    """1.0.x: the plain rule works (do not add websocket=True); 2.0.0/2.0.1: both rules; >= 2.0.2: websocket=True."""
    (f,) = found(scan("seed_route.py"), werkzeug)
    assert f.code == code
    advice = f.fix.advice
    if werkzeug == "1.0.1":
        assert "do NOT add websocket=True" in advice and f.fix.diff is None
    elif werkzeug == "2.0.1":
        assert "both rules" in advice and "Chrome" in f.evidence["consequence"]
        assert "2.0.1" in f.fix.blocker and f.fix.diff is None
    elif werkzeug == "2.0.2":
        assert f.fix.blocker is None and f.fix.diff
    else:
        assert "not installed" in f.fix.blocker


@pytest.mark.parametrize("werkzeug,code", [("1.0.1", "WS706"), ("2.0.0", "WS701"), ("3.0.6", None)])
def test_websocket_true_rules_on_old_werkzeug(werkzeug, code):
    """websocket=True never matches on 1.0.x (WS706) and misses 'keep-alive, Upgrade' on 2.0.0/2.0.1 (WS701)."""
    fs = found(scan("seed_fixed.py"), werkzeug)
    assert [f.code for f in fs] == ([code] if code else [])


def test_fix_refusals_name_the_reason():
    """A page view, two rules on one view, **options and a POST-only rule are never rewritten."""
    blockers = {f.evidence["route"]: f.fix.blocker for f in found(scan("page_app.py"))}
    assert "render_template_string(...)" in blockers["'/chat'"] and "plain HTTP pages" in blockers["'/chat'"]
    assert "2 rules" in blockers["'/a/ws'"] and "2 rules" in blockers["'/b/ws'"]
    assert "**options" in blockers["'/opts/ws'"]
    assert "POST" in blockers["'/post/ws'"]


def test_edit_is_an_exact_span_preserving_comments_and_layout():
    """Multi-line decorators with comments and trailing commas keep every byte but the insertion."""
    src = ('from flask import Flask, request\napp = Flask(__name__)\n\n'
           '@app.route(\r\n    "/ws",  # the socket\r\n)\r\ndef ws():\r\n    return request.environ["wsgi.websocket"]\r\n')
    s = static.scan_source(src, "m.py")
    (r,) = s.routes
    after = static.apply_edits(src, [r.edit])
    assert after == src.replace('"/ws",  # the socket', '"/ws", websocket=True,  # the socket')


def test_columns_are_characters_not_utf8_bytes():
    """ast reports byte offsets; a non-ASCII line before the call must not shift the column or the edit."""
    src = ('from flask import Flask, request\napp = Flask(__name__)\n'
           'x = "é"; y = app.route("/ws")(lambda: request.environ["wsgi.websocket"])\n'
           '@app.route("/ünï")\ndef ws():\n    return request.environ.get("wsgi.websocket") or "é"\n')
    s = static.scan_source(src, "m.py")
    r = next(r for r in s.routes if r.rule == "/ünï")
    f = next(f for f in static.findings([s], NEW) if f.location.line == 4)
    assert f.location.column == 2 and f.location.end_column == 19  # in UTF-8 bytes it would be 22
    assert static.apply_edits(src, [r.edit]).splitlines()[3] == '@app.route("/ünï", websocket=True)'


def test_helpers_constants_and_self_methods_count_as_reading_the_socket():
    src = '''
from flask import Flask, request
from flask.views import MethodView
KEY = "wsgi.websocket"
app = Flask(__name__)

def grab():
    return request.environ[KEY]

def indirect():
    return grab()

@app.get("/a")
def a():
    return indirect()

class V(MethodView):
    def get(self):
        return self._sock()
    def _sock(self):
        return request.environ.get("wsgi.websocket")

app.add_url_rule("/v", view_func=V.as_view("v"))

@app.route("/plain")
def plain():
    """Mentions wsgi.websocket only in the docstring."""
    return "wsgi.websocket" and "hi"
'''
    s = static.scan_source(src, "m.py")
    reads = {r.rule: r.reads_socket for r in s.routes}
    assert reads == {"/a": True, "/v": True, "/plain": True}  # a constant in code is a read
    s2 = static.scan_source(src.replace('return "wsgi.websocket" and "hi"', 'return "hi"'), "m.py")
    assert {r.rule: r.reads_socket for r in s2.routes}["/plain"] is False


def test_flask_sock_and_socketio_receivers_are_not_flask_routes():
    src = ('from flask import Flask, request\nfrom flask_sock import Sock\napp = Flask(__name__)\nsock = Sock(app)\n'
           '@sock.route("/echo")\ndef echo(ws):\n    return request.environ.get("wsgi.websocket")\n')
    assert static.findings([static.scan_source(src, "m.py")], NEW) == []


def test_syntax_errors_are_recorded_not_raised():
    """A file that does not parse is a WS511 error (file:line and the parser's message), never a traceback."""
    s = static.scan_source("def broken(:\n", "bad.py")
    assert s.parse_error and s.parse_error[0] == 1 and s.routes == []
    (f,) = static.findings([s], NEW)
    assert f.code == "WS511" and f.severity.value == "error" and f.location.line == 1
    assert "invalid syntax" in f.evidence["message"]


def test_directory_walk_skips_virtualenvs_and_caches(tmp_path):
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "x.py").write_text("x = 1\n")
    (tmp_path / "app.py").write_text("x = 1\n")
    (tmp_path / "Procfile").write_text("web: gunicorn app:app\n")
    (tmp_path / "README.md").write_text("gunicorn -k sync\n")
    names = [Path(p).name for p, _ in static.iter_files([str(tmp_path)])]
    assert names == ["Procfile", "app.py"]


def test_prose_and_install_lines_are_not_commands():
    """Only a gunicorn in command position counts; **options may carry handler_class."""
    text = ("description: routes, gunicorn workers and more\nRUN pip install gunicorn\n"
            "cd /srv && exec gunicorn -c gunicorn.conf.py app:app\n"
            "ExecStart=/opt/venv/bin/gunicorn -k sync app:app\nGUNICORN_CMD_ARGS=\"-k gthread\"\n")
    s = static.scan_config_text(text, "deploy.yml", explicit=True)
    assert [(g.worker, g.loc.line) for g in s.gunicorn] == [("sync", 4), ("gthread", 5)]
    src = ("from gevent.pywsgi import WSGIServer\nfrom flask import Flask\napp = Flask(__name__)\n"
           "kw = {}\nWSGIServer(('127.0.0.1', 0), app, **kw)\n")
    assert static.scan_source(src, "m.py").servers == []


def test_local_edit_diff_equals_the_whole_file_diff():
    """edit_diff (lines around the edit only) gives exactly the whole-file unified diff."""
    from pathlib import Path

    from wsdiag.check import static as st

    checked = 0
    for path in sorted(Path("fixtures/check").rglob("*.py")):
        text = path.read_text()
        scan = st.scan_source(text, str(path))
        for r in scan.routes:
            if r.edit is None:
                continue
            for context in (1, 3):
                assert st.edit_diff(scan, r.edit, context) == st.unified_diff(scan.file, text, st.apply_edits(text, [r.edit]), context)
            checked += 1
    assert checked >= 3
