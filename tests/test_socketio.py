"""The Socket.IO mode against real Flask-SocketIO servers, with python-socketio as the reference.

Every server is a real Flask-SocketIO app (fixtures/socketio) started in a child on 127.0.0.1:0.
Healthy servers must come out OK with nothing in their log; each failure mode (FAILURES.md
FM-23 .. FM-28, a refusing connect handler) must get its cause. The python-socketio client is the
independent reference: it must agree with wsdiag on whether a connect works and why not.
The 20-run loops and gunicorn with several workers are in test_socketio_soak.py (-m socketio).
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from click.testing import CliRunner

from fixtures.socketio import start
from wsdiag.cli import main
from wsdiag.net.socketio import SioOptions, socketio_report
from wsdiag.net.transport import Settings

socketio = pytest.importorskip("socketio")

HEALTHY = {
    "threading (Werkzeug + simple-websocket)": ("run",),
    "gevent + gevent-websocket (socketio.run)": ("run", "--async", "gevent"),
    "gunicorn GeventWebSocketWorker -w 1": ("gunicorn-gws",),
}


@pytest.fixture(scope="module")
def servers():
    started: dict = {}

    def get(*args, workers: int = 1):
        key = (args, workers)
        if key not in started:
            started[key] = start(*args, workers=workers)
        return started[key]

    yield get
    for s in started.values():
        s.stop()


def probe(server, **kw):
    origin = kw.pop("origin", None)
    extra = kw.pop("extra", ())
    mark = server.log_mark()
    report = socketio_report(server.url(), Settings(timeout=4), SioOptions(**kw), origin, extra)
    return report, mark


def names(report):
    return [c.info.name for c in report.causes]


def wait_log(server, mark, settle=0.3):
    time.sleep(settle)  # the server writes its log line after answering
    return server.log_problems(mark)


def reference_connect(server, transports, wait=3.0, **kw):
    """python-socketio's verdict: None when connected, else its connect_error data (or error text).

    ``wait``: the client waits this long for namespaces after a refusal, so refusals use 1 s."""
    client = socketio.Client(reconnection=False)
    refused: list = []
    client.on("connect_error", lambda data=None: refused.append(data))
    try:
        client.connect(server.url(scheme="http"), transports=transports, wait_timeout=wait, **kw)
    except socketio.exceptions.ConnectionError as exc:
        return json.dumps(refused) if refused else (str(exc) or type(exc).__name__)
    finally:
        # python-socketio's websocket disconnect waits up to 3 s for the socket to end; let it, elsewhere
        threading.Thread(target=_quietly, args=(client.disconnect,), daemon=True).start()
    return None


def _quietly(fn) -> None:
    try:
        fn()
    except Exception:
        pass


@pytest.mark.parametrize("label", list(HEALTHY))
def test_healthy_server_is_ok_with_nothing_in_its_log(servers, label):
    server = servers(*HEALTHY[label])
    report, mark = probe(server)
    assert report.ok, (names(report), report.socketio)
    assert report.causes == []
    sio = report.socketio
    assert sio["websocket"]["reached"] == "connected" and sio["polling"]["reached"] == "upgraded"
    assert sio["polling"]["open"]["upgrades"] == ["websocket"]
    assert sio["several_processes"]["outcomes"] == {"200": 3 * sio["several_processes"]["opened"]}
    assert {f.info.name for f in report.facts} == {"socketio-connected"}
    assert wait_log(server, mark) == []
    # the reference client agrees, over both transports
    assert reference_connect(server, ["websocket"]) is None
    assert reference_connect(server, ["polling", "websocket"]) is None


def test_refusing_connect_handler_fm27(servers):
    server = servers("run", "--refuse")
    report, mark = probe(server)
    assert names(report) == ["socketio-connect-refused"]
    assert report.causes[0].evidence["message"] == "authentication failed: token missing or wrong"
    assert report.socketio["websocket"]["connect"]["packet"] == "44"
    assert report.socketio["polling"]["connect"]["packet"] == "44"
    assert not report.ok
    # with the auth payload the handler wants, the same server is healthy
    ok, _ = probe(server, auth={"token": "letmein"})
    assert ok.ok, names(ok)
    # a refusal is not an error in the server's log
    assert wait_log(server, mark) == []
    ref = reference_connect(server, ["websocket"], wait=1)
    assert ref is not None and "authentication failed: token missing or wrong" in ref
    assert reference_connect(server, ["websocket"], auth={"token": "letmein"}) is None


def test_namespace_refused_and_namespace_not_served(servers):
    server = servers("run", "--refuse")
    report, _ = probe(server, namespace="/chat")
    assert names(report) == ["socketio-connect-refused"]
    assert report.causes[0].evidence["namespace"] == "/chat"
    report, _ = probe(servers("run"), namespace="nope")
    assert names(report) == ["socketio-namespace-not-served"]
    assert report.causes[0].evidence["message"] == "Unable to connect"


@pytest.mark.parametrize("args,hidden", [(("run",), False), (("run", "--async", "gevent"), True)])
def test_origin_rejected_fm23(servers, args, hidden):
    server = servers(*args, "--cors", "https://app.example.com")
    report, _ = probe(server)
    assert names(report)[0] == "engineio-origin-rejected"
    assert report.causes[0].confidence == "certain"
    # only the Origin is objected to: without it, the same handshake opens a session
    assert report.socketio["without_origin"]["opened"] is True
    assert "without Origin is accepted" in report.causes[0].summary
    ws = report.socketio["websocket"]
    if hidden:  # gevent-websocket: 101, then closed; the reason comes from the polling replay
        assert ws["status"] is None and ws["stopped_at"] == "open"
        assert report.socketio["replay"]["message"] == "Not an accepted origin."
        assert "reason-recovered-by-polling" in {f.info.name for f in report.facts}
        assert "hidden behind a 101" in report.causes[0].summary
    else:
        assert ws["status"] == 400 and ws["engineio_message"] == "Not an accepted origin."
    # the page's origin is accepted: OK, and the reference client agrees both ways
    good, _ = probe(server, origin="https://app.example.com")
    assert good.ok, names(good)
    # (polling: the websocket-client library under python-socketio adds an Origin of its own)
    assert reference_connect(server, ["polling"], headers={"Origin": "https://app.example.com"}) is None
    own = server.url(scheme="http").rsplit("/socket.io", 1)[0]
    assert reference_connect(server, ["polling"], wait=1, headers={"Origin": own}) is not None


def test_version_mismatch_fm24(servers):
    server = servers("run")
    report, _ = probe(server, eio=3, eio_forced=True)
    assert names(report) == ["engineio-version-mismatch"]
    assert report.socketio["websocket"]["requests"][0]["request_line"].startswith("GET /socket.io/?EIO=3&transport=websocket")


def test_upgrade_headers_stripped_fm26(servers):
    """What a proxy without WebSocket directives forwards: transport=websocket, no Upgrade/Connection."""
    server = servers("run")
    report, _ = probe(server, extra=(("Upgrade", ""), ("Connection", "")))
    assert names(report)[0] == "engineio-upgrade-headers-missing"
    assert "engineio-transport-not-allowed" not in names(report)
    # polling still works: the JS client's path stops at the upgrade
    assert report.socketio["polling"]["reached"] == "connected"


def test_gevent_websocket_installed_under_gunicorn_gevent_fm28(servers):
    server = servers("gunicorn-gevent")
    report, mark = probe(server)
    assert names(report) == ["engineio-gevent-websocket-not-serving"]
    assert report.causes[0].confidence == "likely"
    assert report.socketio["polling"]["connect"]["packet"] == "40"  # polling works
    log = "\n".join(wait_log(server, mark))
    assert "gevent-websocket" in log  # the server's own RuntimeError names it


def test_wrong_path_is_not_engineio(servers):
    server = servers("run")
    report = socketio_report(server.url("/nothing/socket.io/"), Settings(timeout=4), SioOptions(sessions=0))
    assert names(report) == ["not-engineio"]


# -- the CLI ---------------------------------------------------------------------------


def test_cli_selects_socketio_mode_by_path_and_reports(servers):
    server = servers("run", "--refuse")
    res = CliRunner().invoke(main, ["probe", server.url(), "--json", "--sessions", "0"])
    assert res.exit_code == 1, res.output
    doc = json.loads(res.output)
    rep = doc["reports"][0]
    assert rep["causes"][0]["code"] == "WS801" and rep["socketio"]["websocket"]["connect"]["packet"] == "44"
    res = CliRunner().invoke(main, ["probe", server.url(), "--auth", '{"token": "letmein"}'])
    assert res.exit_code == 0, res.output
    assert "Socket.IO" in res.output and "40 connected" in res.output


def test_cli_socketio_forced_on_another_path_and_bad_input(servers):
    server = servers("run")
    base = server.url("/")
    res = CliRunner().invoke(main, ["probe", "--socketio", "/socket.io/", base, "--sessions", "0"])
    assert res.exit_code == 0, res.output
    # `--socketio URL` (no PATH): click takes the URL as PATH; wsdiag treats it as the URL
    res = CliRunner().invoke(main, ["probe", "--socketio", server.url(), "--sessions", "0"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["probe", server.url(), "--auth", "{nope"])
    assert res.exit_code == 2 and "--auth is not JSON" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(main, ["probe", "--socketio", "relative", server.url()])
    assert res.exit_code == 2 and "must start with '/'" in res.output
    res = CliRunner().invoke(main, ["probe", server.url(), "--eio", "3", "--json", "--sessions", "0"])
    assert res.exit_code == 1 and json.loads(res.output)["reports"][0]["causes"][0]["code"] == "WS803"


def test_nothing_listening_is_a_transport_finding():
    import socket as so

    s = so.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    report = socketio_report(f"ws://127.0.0.1:{port}/socket.io/", Settings(timeout=2), SioOptions())
    assert names(report) == ["connection-refused"]


def test_websocket_transport_not_allowed(servers):
    server = servers("run", "--transports", "polling")
    report, mark = probe(server)
    assert names(report) == ["engineio-transport-not-allowed"]
    assert report.causes[0].evidence["transport"] == "websocket"
    pol = report.socketio["polling"]
    assert pol["connect"]["packet"] == "40"  # polling works
    # python-engineio 4.15 still offers the upgrade in the OPEN packet, then refuses it
    assert pol["open"]["upgrades"] == ["websocket"]
    assert (pol["stopped_at"], pol["engineio_message"]) == ("upgrade handshake", "Invalid transport")
    assert wait_log(server, mark)  # Engine.IO logs the refusal


def test_bare_engineio_never_answers_the_connect(servers):
    server = servers("bare-engineio")
    report = socketio_report(server.url(), Settings(timeout=4), SioOptions(sessions=0, connect_wait=1.0))
    assert names(report) == ["socketio-no-connect-answer"]
    assert report.socketio["websocket"]["open"] is not None


def test_auth_payload_stays_out_of_the_report(servers):
    server = servers("run", "--refuse")
    res = CliRunner().invoke(main, ["probe", server.url(), "--auth", '{"token": "letmein"}', "--json", "-v",
                                    "--sessions", "0"])
    assert res.exit_code == 0, res.output
    assert "letmein" not in res.output and "{auth: redacted}" in res.output


def test_wss_through_tls(tls_material):
    server = start("run", "--certfile", tls_material["chain"], "--keyfile", tls_material["key"])
    try:
        url = server.url(scheme="wss")
        report = socketio_report(url, Settings(timeout=4, cacert=tls_material["ca"]), SioOptions(sessions=2))
        assert report.ok, (names(report), report.socketio)
        assert report.socketio["origin"].startswith("https://")
        untrusted = socketio_report(url, Settings(timeout=4), SioOptions(sessions=0))
        assert names(untrusted) == ["tls-certificate-rejected"]
    finally:
        server.stop()


def test_transport_refusal_hidden_by_gevent_websocket_is_not_guessed(servers):
    """transports=['polling'] under gevent-websocket: the "Invalid transport" 400 hides behind a 101 and
    polling replays cannot recover it (polling is allowed), so wsdiag says only what it saw."""
    server = servers("run", "--async", "gevent", "--transports", "polling")
    report, _ = probe(server, sessions=0)
    assert names(report) == ["socketio-websocket-failed-polling-works"]
    assert report.causes[0].confidence == "likely"
    pol = report.socketio["polling"]
    # the upgrade on the polling session's sid was replayed over polling (and closed the session)
    assert pol["stopped_at"] == "upgrade probe" and pol["replay"]["how"] == "101 then abandoned"
    assert pol["replay"]["status"] == 200 and report.socketio["replay"]["opened"] is True


def test_plain_and_socketio_urls_in_one_run_keep_their_order(servers, serve_app):
    plain = serve_app("fixtures.apps.seed_fixed").url("/ws")
    server = servers("run")
    sio, mark = server.url(), server.log_mark()
    res = CliRunner().invoke(main, ["probe", "--json", "--sessions", "0", "-p", "minimal", sio, plain])
    # the /socket.io/ URL got the Socket.IO mode: no raw WebSocket text frame, nothing in the app's log
    assert wait_log(server, mark) == []
    doc = json.loads(res.output)
    first, second = doc["reports"]
    assert first["url"] == sio and "socketio" in first and first["ok"] is True
    assert second["url"] == plain and "socketio" not in second
    assert [r["profile"] for r in second["results"]] == ["minimal"]


def test_probe_app_finds_and_probes_the_socketio_endpoint(monkeypatch):
    """probe --app: the app model lists Flask-SocketIO's /socket.io/, and the Socket.IO mode probes it."""
    monkeypatch.setenv("WSDIAG_SIO_ASYNC", "gevent")
    monkeypatch.setenv("WSDIAG_SIO_REFUSE", "1")
    res = CliRunner().invoke(main, ["probe", "--app", "fixtures.socketio.app:app", "--json", "--sessions", "0"])
    doc = json.loads(res.output[res.output.index("{"):])
    rep = next(r for r in doc["reports"] if r["url"].endswith("/socket.io/"))
    assert rep["causes"][0]["name"] == "socketio-connect-refused", rep["causes"]
    assert rep["socketio"]["websocket"]["connect"]["data"] == "authentication failed: token missing or wrong"
