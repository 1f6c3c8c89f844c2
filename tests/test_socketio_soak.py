"""Socket.IO: 20 runs per healthy server, and gunicorn with several workers (-m socketio).

    python -m pytest tests/test_socketio_soak.py -m socketio

Every healthy Flask-SocketIO server must come out OK in each of 20 runs with nothing in its
log; gunicorn with 3 GeventWebSocketWorkers (no stickiness) must be recognised as several
processes (FAILURES.md FM-25) every time, and the same server with 1 worker never.
"""

from __future__ import annotations

import time

import pytest

from fixtures.socketio import start
from wsdiag.net.socketio import SioOptions, socketio_report
from wsdiag.net.transport import Settings

pytestmark = [pytest.mark.socketio, pytest.mark.timeout(300)]

HEALTHY = {
    "threading": ("run",),
    "gevent-socketio-run": ("run", "--async", "gevent"),
    "gunicorn-gws-1": ("gunicorn-gws",),
    "gunicorn-gthread-1": ("gunicorn-thread",),
}


@pytest.mark.parametrize("label", list(HEALTHY))
def test_healthy_server_ok_in_20_runs_with_nothing_logged(label):
    server = start(*HEALTHY[label])
    try:
        mark = server.log_mark()
        for i in range(20):
            report = socketio_report(server.url(), Settings(timeout=4), SioOptions())
            assert report.ok, (i, [c.info.name for c in report.causes], report.socketio)
            assert report.socketio["polling"]["reached"] == "upgraded"
        time.sleep(0.5)
        assert server.log_problems(mark) == []
    finally:
        server.stop()


def test_gunicorn_three_workers_are_several_processes_fm25():
    server = start("gunicorn-gws", workers=3)
    try:
        for i in range(5):
            report = socketio_report(server.url(), Settings(timeout=4), SioOptions(sessions=8))
            names = [c.info.name for c in report.causes]
            assert names[0] == "engineio-several-processes", (i, names, report.socketio["several_processes"])
            assert "werkzeug" not in report.causes[0].summary.lower()
            # a websocket-only client (no sid) is unaffected
            assert report.socketio["websocket"]["reached"] == "connected"
    finally:
        server.stop()


def test_gunicorn_one_worker_is_never_several_processes():
    server = start("gunicorn-gws", workers=1)
    try:
        for _ in range(5):
            report = socketio_report(server.url(), Settings(timeout=4), SioOptions(sessions=8))
            assert report.ok and report.socketio["several_processes"]["outcomes"] == {"200": 24}
    finally:
        server.stop()
