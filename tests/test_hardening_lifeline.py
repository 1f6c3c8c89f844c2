"""Server children end when wsdiag dies, even by SIGKILL (issue 15, "children outlive wsdiag").

``wsdiag.proc.spawn`` hands every child the read end of a lifeline pipe; when the parent
dies for any reason the kernel closes the write end and the child's ``watch_parent`` ends
its process group.  Real `wsdiag probe --sample` / `probe --app` runs are SIGKILLed mid-run
(so no ``finally``, no ``atexit`` of wsdiag runs); afterwards no process of the server's
group may be alive.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT
from tests.test_hardening_children import alive, group_members, live_processes

pytestmark = pytest.mark.timeout(120)

SLOW_APP = '''
import os, time
from flask import Flask

app = Flask(__name__)
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "pgid"), "w") as fh:
    fh.write(str(os.getpgid(0)))


@app.route("/ws", websocket=True)
def ws():
    open(os.path.join(here, "upgraded"), "w").close()
    sock = __import__("flask").request.environ.get("wsgi.websocket")
    time.sleep(60)  # the probe is mid-run while this view holds the socket
    return ""
'''


def _children(ppid: int) -> list[int]:
    return [pid for pid, fields in live_processes() if int(fields[1]) == ppid]


def _listening(pid: int) -> bool:
    """Does the process hold a socket (the server bound its port)?"""
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:") for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def _gone_within(pgid: int, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return group_members(pgid)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def test_sigkilled_probe_sample_leaves_no_sample_server():
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    proc = subprocess.Popen([sys.executable, "-m", "wsdiag", "probe", "--sample", "--watch", "30", "--timeout", "40",
                             "--json"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    child = None
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            kids = [k for k in _children(proc.pid) if _listening(k)]
            if kids:
                child = kids[0]
                break
            time.sleep(0.05)
        assert child is not None, "the sample server never started listening"
        assert os.getpgid(child) == child  # its own group: the lifeline, not the terminal, must end it
        # killed as soon as the sample listens: wsdiag is waiting for its ready line or probing it
        assert proc.poll() is None, "wsdiag ended before it could be killed mid-run"
    finally:
        _kill(proc)
    assert _gone_within(child, 3.0) == [], "the sample server outlived a SIGKILLed wsdiag"
    assert not alive(child)


PARENT = """
import sys, time
from wsdiag.proc import start_sample
child = start_sample()
print(child.proc.pid, flush=True)
time.sleep(120)
"""


def test_sigkilled_parent_of_a_quiet_sample_leaves_nothing():
    """A parent that started the sample (start_sample) and is SIGKILLed while the sample is idle:
    nothing the sample writes could end it by a broken pipe, only the lifeline can."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", PARENT], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    try:
        line = proc.stdout.readline()  # bounded by the test's timeout; start_sample has its own
        child = int(line)
        assert alive(child) and os.getpgid(child) == child
        time.sleep(0.3)
    finally:
        _kill(proc)
        proc.stdout.close()
    start = time.monotonic()
    assert _gone_within(child, 3.0) == [], "the sample server outlived its SIGKILLed parent"
    assert time.monotonic() - start < 2.0


def test_sigkill_ends_the_sample_server_within_about_a_second():
    """Directly through proc: closing the lifeline (what the kernel does on the parent's death)."""
    from wsdiag.proc import start_sample, stop

    child = start_sample()
    try:
        pid = child.proc.pid
        start = time.monotonic()
        os.close(child.proc.lifeline)
        child.proc.lifeline = None
        child.proc.wait(timeout=5)
        took = time.monotonic() - start
    finally:
        stop(child.proc)
    assert took < 2.0, f"the sample took {took:.2f}s to notice its parent was gone"
    assert group_members(pid) == []


@pytest.mark.parametrize("server, patched", [("gevent-websocket", False), ("dev", False), ("gevent", True),
                                             ("gunicorn:geventwebsocket.gunicorn.workers.GeventWebSocketWorker", False)])
def test_sigkilled_probe_app_leaves_no_app_server(tmp_path, server, patched):
    """probe --app, SIGKILLed while its probe waits on a view holding the socket: the app's group ends.
    ``patched``: the app monkey-patches itself at import (the watcher must then be a greenlet)."""
    if server.startswith("gunicorn"):
        pytest.importorskip("gunicorn")
    prelude = "from gevent import monkey\nmonkey.patch_all()\n" if patched else ""
    (tmp_path / "slowapp.py").write_text(prelude + SLOW_APP)
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    proc = subprocess.Popen([sys.executable, "-m", "wsdiag", "probe", "--app", "slowapp:app", "--server", server,
                             "--app-timeout", "30", "--timeout", "40", "--json"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 40
        while not (tmp_path / "upgraded").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert (tmp_path / "upgraded").exists(), "the probe never reached the view"
        assert proc.poll() is None, "wsdiag ended before it could be killed mid-run"
    finally:
        _kill(proc)
    pgid = int((tmp_path / "pgid").read_text())
    assert pgid != os.getpgid(0)
    assert _gone_within(pgid, 3.0) == [], f"the app server ({server}) outlived a SIGKILLed wsdiag"
