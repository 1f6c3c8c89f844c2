"""The app model behind ``wsdiag check``: rules per stack, silent outside it; fixes that apply.

The corpus (fixtures/apps_corpus/, one small app per stack x deployment, healthy and broken,
written for these tests; fixtures/apps_corpus/EXPECTED.json says what each must get) runs
through the static rules in one process (the whole-project mode used by --fix/--diff/--app)
and through the real ``wsdiag check`` command line (the streaming mode); both must agree with
the expectation. Every suggested edit is applied with the real ``patch`` tool and the patched
file compiled. The real site-packages tree of this environment gets no error finding.
"""

from __future__ import annotations

import json
import os
import py_compile
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from wsdiag.check import static
from wsdiag.check.advice import installed_versions

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fixtures" / "apps_corpus"
EXPECTED = {k: v for k, v in json.loads((CORPUS / "EXPECTED.json").read_text()).items() if not k.startswith("_")}
VERSIONS = {"flask": "3.1.3", "werkzeug": "3.1.9", "gevent-websocket": "0.10.1", "gevent": "26.9.0"}


def scan_dir(path: Path, explicit: bool = False) -> list:
    os.chdir(ROOT)
    return [static.scan_file(p, Path(p).read_text(encoding="utf-8"), explicit or e)
            for p, e in static.iter_files([str(path.relative_to(ROOT))])]


def wsdiag(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wsdiag", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_static_rules(name):
    """The whole-project rules give each corpus app exactly its expected codes; healthy ones no error."""
    fs = static.findings(scan_dir(CORPUS / name), VERSIONS["werkzeug"], VERSIONS)
    assert sorted({f.code for f in fs}) == sorted(EXPECTED[name]["codes"]), [f.summary for f in fs]
    if EXPECTED[name]["healthy"]:
        assert not [f for f in fs if f.severity.value == "error"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_command_line_agrees(name):
    """`wsdiag check DIR` (the streaming scan, the installed versions) says the same, with the exit status."""
    expected = set(EXPECTED[name]["codes"])
    if installed_versions().get("gevent-websocket") is None:
        expected.discard("WS515")  # the Flask-SocketIO -k gevent fault needs gevent-websocket installed
    out = wsdiag("check", str((CORPUS / name).relative_to(ROOT)), "--no-cache", "--format", "json")
    doc = json.loads(out.stdout)
    assert {f["code"] for f in doc["findings"]} == expected, out.stdout
    errors = [f for f in doc["findings"] if f["severity"] == "error"]
    assert out.returncode == (1 if errors else 0) and doc["exit_status"] == out.returncode
    if EXPECTED[name]["healthy"]:
        assert not errors


def test_rules_state_their_stacks_and_codes_are_registered():
    from wsdiag.check import rules
    from wsdiag.core.codes import REGISTRY

    for code, stacks in rules.APPLIES.items():
        assert code in REGISTRY and stacks
    for code in ("WS511", "WS512", "WS513", "WS514", "WS515", "WS516", "WS517", "WS518", "WS519", "WS520", "WS521"):
        assert code in REGISTRY


def _diffs(findings) -> list[str]:
    return [f.fix.diff for f in findings if f.fix is not None and f.fix.diff]


def test_every_suggested_fix_applies_and_compiles(tmp_path):
    """Every diff the corpus and the check fixtures produce applies with `patch` and the result compiles."""
    scans = []
    for d in sorted(p for p in CORPUS.iterdir() if p.is_dir()):
        scans += [s for s in scan_dir(d) if s.file.endswith(".py")]
    scans += scan_dir(ROOT / "fixtures" / "check", explicit=True)
    diffs = _diffs(static.findings(scans, VERSIONS["werkzeug"], VERSIONS))
    assert len(diffs) >= 8
    for n, diff in enumerate(diffs):
        work = tmp_path / str(n)
        target = diff.splitlines()[0][len("--- a/"):]
        (work / target).parent.mkdir(parents=True)
        shutil.copy(ROOT / target, work / target)
        done = subprocess.run(["patch", "-p1", "--batch", "--silent"], input=diff, cwd=work, capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 0, (diff, done.stdout, done.stderr)
        if target.endswith(".py"):
            py_compile.compile(str(work / target), doraise=True)


def test_server_fix_keeps_bind_address_port_variables_and_app_object():
    (f,) = static.findings(scan_dir(CORPUS / "raw_devserver"), VERSIONS["werkzeug"], VERSIONS)
    diff = f.fix.diff
    assert "+    WSGIServer((HOST, PORT), application, handler_class=WebSocketHandler).serve_forever()" in diff
    assert "+    from geventwebsocket.handler import WebSocketHandler" in diff
    assert "# the server call under test" in diff.splitlines()[-1]  # the trailing comment survives
    (g,) = static.findings(scan_dir(CORPUS / "raw_wsgiserver"), VERSIONS["werkzeug"], VERSIONS)
    assert "+from geventwebsocket.handler import WebSocketHandler" in g.fix.diff
    assert "log=sys.stderr, handler_class=WebSocketHandler)" in g.fix.diff


def test_no_fix_moves_a_flask_sock_app_onto_gevent_websocket(tmp_path):
    """An app mixing flask-sock and raw wsgi.websocket: the raw fault is reported, its handler fix is not offered."""
    src = (CORPUS / "raw_devserver" / "app.py").read_text().replace(
        "from flask import Flask, request\n", "from flask import Flask, request\nfrom flask_sock import Sock\n")
    (tmp_path / "app.py").write_text(src)
    fs = static.findings([static.scan_file(str(tmp_path / "app.py"), src)], VERSIONS["werkzeug"], VERSIONS)
    ws504 = [f for f in fs if f.code == "WS504"]
    assert ws504 and ws504[0].fix is None


def test_a_file_that_does_not_parse_fails_the_run_with_file_line_and_message():
    out = wsdiag("check", "fixtures/apps_corpus/py2_app", "--no-cache", "--format", "json")
    assert out.returncode == 1, out.stdout + out.stderr
    (f,) = json.loads(out.stdout)["findings"]
    assert f["code"] == "WS511" and f["line"] == 15 and f["source"] == "        except Exception, e:"
    try:  # the message is this Python's own parser's (3.9 says "invalid syntax", 3.11 more)
        compile((CORPUS / "py2_app" / "app.py").read_text(), "app.py", "exec")
    except SyntaxError as exc:
        assert exc.msg in f["evidence"]["message"]
    else:
        raise AssertionError("the Python 2 file compiled")
    assert "route '/echo' (line 9)" in f["evidence"]["seen"] and "handler_class=WebSocketHandler" in f["evidence"]["seen"]
    human = wsdiag("check", "fixtures/apps_corpus/py2_app/app.py", "--no-cache")
    assert human.returncode == 1 and "fixtures/apps_corpus/py2_app/app.py:15" in human.stdout


def test_other_frameworks_are_out_of_scope_never_flask():
    fs = static.findings(scan_dir(CORPUS / "bottle_ws") + scan_dir(CORPUS / "quart_ws"), VERSIONS["werkzeug"], VERSIONS)
    assert [(f.code, f.severity.value, f.evidence["framework"]) for f in fs] == [("WS521", "info", "Bottle")]


def test_flask_sockets_is_flagged_unless_werkzeug_1_is_pinned(tmp_path):
    app = (CORPUS / "flask_sockets_pinned" / "app.py").read_text()
    (tmp_path / "app.py").write_text(app)
    alone = [static.scan_file(str(tmp_path / "app.py"), app)]
    assert [f.code for f in static.findings(alone, "3.1.9", VERSIONS)] == ["WS503"]
    assert static.findings(alone, "1.0.1", VERSIONS) == []  # installed Werkzeug 1.0: its rules match


def test_fix_is_idempotent(tmp_path):
    shutil.copy(ROOT / "fixtures" / "check" / "seed_route.py", tmp_path / "app.py")
    first = wsdiag("check", "app.py", "--fix", "--no-cache", cwd=tmp_path)
    once = (tmp_path / "app.py").read_text()
    second = wsdiag("check", "app.py", "--fix", "--no-cache", cwd=tmp_path)
    assert "websocket=True" in once and (tmp_path / "app.py").read_text() == once
    assert first.returncode in (0, 1) and second.returncode == 0, second.stdout


def test_no_error_on_any_file_of_the_real_site_packages_tree():
    """`wsdiag check` over this environment's site-packages (Flask, gevent, gevent-websocket,
    flask-sock, Flask-SocketIO, gunicorn... and their tests): no error finding, exit 0."""
    site = sysconfig.get_paths()["purelib"]
    out = wsdiag("check", site, "--no-cache", "--format", "json")
    doc = json.loads(out.stdout)
    errors = [(f["code"], f.get("file"), f.get("line")) for f in doc["findings"]
              if f["severity"] == "error"]
    assert errors == [] and out.returncode == 0
    assert len(doc["files"]) > 1000


# -- the three agree: check, check --app, probe --app (marker `corpus`: it serves every app) ----

PROBED = sorted(k for k, v in EXPECTED.items() if v.get("probe") is not None)


def _errors(doc) -> list:
    return [f["code"] for f in doc["findings"] if f["severity"] == "error"]


@pytest.mark.corpus
@pytest.mark.parametrize("name", PROBED)
def test_check_app_and_probe_app_agree_with_check(name):
    """In the app's directory: `check --app app.py` finds the static codes (with the deployment files),
    and `probe --app app.py` serves it the way it is deployed, says which server and why, and fails
    exactly when the app has an error finding."""
    expected = set(EXPECTED[name]["codes"])
    if installed_versions().get("gevent-websocket") is None and "WS515" in expected:
        pytest.skip("the Flask-SocketIO -k gevent fault needs gevent-websocket installed")
    cwd = CORPUS / name
    checked = wsdiag("check", "--app", "app.py", "--no-cache", "--format", "json", cwd=cwd)
    doc = json.loads(checked.stdout)
    # in app mode the installed Werkzeug's routing verdict (WS601) replaces the static one (WS501)
    assert {"WS501" if f["code"] == "WS601" else f["code"] for f in doc["findings"]} >= expected, checked.stdout
    has_error = bool(_errors(doc))
    assert has_error == (not EXPECTED[name]["probe"]), doc["findings"]
    probed = wsdiag("probe", "--app", "app.py", "--format", "json", cwd=cwd)
    assert probed.returncode == (0 if EXPECTED[name]["probe"] else 1), (probed.stdout[-2000:], probed.stderr)
    started = [ln for ln in probed.stderr.splitlines() if ln.startswith("wsdiag: started app.py under ")]
    assert started and ("its own server call" in started[0] or "deployed by" in started[0]), probed.stderr


@pytest.mark.corpus
def test_probe_server_override_and_no_monkey_patching():
    """--server overrides the deployment: the healthy flask-sock app under gevent-websocket's handler
    gets the double handshake (FM-11) that its real server never shows."""
    cwd = CORPUS / "sock_gevent_patched"
    own = wsdiag("probe", "--app", "app.py", "--format", "json", cwd=cwd)
    forced = wsdiag("probe", "--app", "app.py", "--server", "gevent-websocket", "--format", "json", cwd=cwd)
    assert own.returncode == 0 and forced.returncode == 1, (own.stderr, forced.stderr)
    assert "(--server)" in forced.stderr
    doc = json.loads(forced.stdout)  # the JSON says which server too, not only stderr
    assert doc["app_server"]["why"] == "--server" and "WebSocketHandler" in doc["app_server"]["server"]
    assert json.loads(own.stdout)["app_server"]["why"] != "--server"
    bad = wsdiag("probe", "--app", "app.py", "--server", "tornado", cwd=cwd)
    assert bad.returncode == 2 and "--server must be" in bad.stderr


def test_one_loader_and_one_route_discovery_for_check_app_and_probe_app(monkeypatch):
    """A DispatcherMiddleware app loads for `check --app` as for `probe --app`, and both find the
    same WebSocket routes, including a view that reads the socket through a helper."""
    from wsdiag.flaskapp import appserver, inprocess

    monkeypatch.chdir(CORPUS / "mounted")
    monkeypatch.syspath_prepend(str(CORPUS / "mounted"))
    monkeypatch.delitem(sys.modules, "app", raising=False)
    try:
        wsgi = inprocess.load_app("app.py")
    finally:
        sys.modules.pop("app", None)  # other tests import their own app.py as `app`
    assert not hasattr(wsgi, "url_map")  # the DispatcherMiddleware itself, not one of its apps
    checked = inprocess.check_app(wsgi, werkzeug="3.1.9")
    routes, _ = appserver.discover(appserver._flask_mounts(wsgi))
    assert sorted(r.rule for r in checked.results) == sorted(r["rule"] for r in routes) == ["/api/legacy", "/api/live"]
    assert all(r.reads_socket for r in checked.results) and all(r["reads_wsgi_websocket"] for r in routes)


def test_findings_have_typed_location_and_fix():
    (f,) = static.findings(scan_dir(CORPUS / "raw_devserver"), VERSIONS["werkzeug"], VERSIONS)
    loc, fix = f.location, f.fix
    assert (loc.file, loc.line, loc.column) == ("fixtures/apps_corpus/raw_devserver/app.py", 24, 5)
    assert loc.source.strip().startswith("application.run(HOST, PORT")
    assert fix.diff and fix.diff.startswith("--- a/fixtures/apps_corpus/raw_devserver/app.py") and fix.blocker is None


def test_deployment_files_of_every_kind_are_read(tmp_path):
    """systemd unit, uWSGI ini and Dockerfile CMD next to a raw gevent-websocket app are judged by its stack;
    the same files next to a flask-sock app are not gevent-websocket's business."""
    raw = (CORPUS / "raw_procfile_gevent" / "app.py").read_text()
    (tmp_path / "app.py").write_text(raw)
    (tmp_path / "app.service").write_text("[Service]\nExecStart=/srv/venv/bin/gunicorn -k gevent app:app\n")
    (tmp_path / "uwsgi.ini").write_text("[uwsgi]\nmodule = app:app\nhttp = :8000\n")
    (tmp_path / "Dockerfile").write_text('FROM python:3.11\nCMD ["gunicorn", "-w", "2", "app:app"]\n')

    def codes():
        scans = [static.scan_file(p, Path(p).read_text(), False) for p, _ in static.iter_files([str(tmp_path)])]
        return sorted((f.code, Path(f.location.file).name) for f in static.findings(scans, "3.1.9", VERSIONS))

    assert codes() == [("WS504", "uwsgi.ini"), ("WS505", "Dockerfile"), ("WS505", "app.service")]
    (tmp_path / "app.py").write_text((CORPUS / "sock_gthread" / "app.py").read_text())
    assert codes() == [("WS513", "Dockerfile")]  # flask-sock on two sync workers (FM-12); gevent and uWSGI: silent


def test_gunicorn_preload_with_a_gevent_worker_is_late_patching(tmp_path):
    """FM-14 (c): --preload imports the app in the arbiter, before the gevent worker patches."""
    (tmp_path / "app.py").write_text((CORPUS / "sock_gthread" / "app.py").read_text())
    (tmp_path / "Procfile").write_text("web: gunicorn -k gevent --preload app:app\n")
    (tmp_path / "gunicorn.conf.py").write_text('worker_class = "gevent"\npreload_app = True\n')
    scans = [static.scan_file(p, Path(p).read_text(), False) for p, _ in static.iter_files([str(tmp_path)])]
    got = sorted((f.code, Path(f.location.file).name) for f in static.findings(scans, "3.1.9", VERSIONS))
    assert got == [("WS519", "Procfile"), ("WS519", "gunicorn.conf.py")]
    (tmp_path / "Procfile").write_text("web: gunicorn -k gevent app:app\n")
    (tmp_path / "gunicorn.conf.py").write_text('worker_class = "gevent"\n')
    scans = [static.scan_file(p, Path(p).read_text(), False) for p, _ in static.iter_files([str(tmp_path)])]
    assert static.findings(scans, "3.1.9", VERSIONS) == []
