"""Nothing wsdiag starts outlives it, and no app output can block it (issue 15, item 2).

Real `wsdiag probe --app` runs (a child process of the test) against hostile apps written
to a temporary directory: an app printing without a newline, closing its stdout at import,
writing megabytes at import, starting daemons that hold its pipes (one in the app's process
group, one that left it with setsid).  Each run must end within --app-timeout plus a margin,
and afterwards no process of the app's group and none of the daemons may be alive.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(120)

APP = '''
import os, sys
{prelude}
from flask import Flask

app = Flask(__name__)
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "pgid"), "w") as fh:
    fh.write(str(os.getpgid(0)))


@app.route("/ws", websocket=True)
def ws():
    sock = __import__("flask").request.environ["wsgi.websocket"]
    while True:
        msg = sock.receive()
        if msg is None:
            return ""
        sock.send(msg)
'''

DAEMONS = '''
import subprocess
here = os.path.dirname(os.path.abspath(__file__))
# one daemon stays in the app's group, one leaves it (setsid); both inherit stdout/stderr
for name, new_session in (("in_group", False), ("left_group", True)):
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=new_session)
    with open(os.path.join(here, "daemon_" + name), "w") as fh:
        fh.write(str(p.pid))
'''

HOSTILE = {
    "no_newline": 'sys.stdout.write("starting without a newline"); sys.stdout.flush()',
    "closes_stdout": "os.close(1); os.close(2)",
    "floods_output": 'sys.stderr.write("x" * 4_000_000); sys.stdout.write("y\\n" * 200_000); sys.stdout.flush()',
    "daemons": DAEMONS,
}


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:
        return False


def live_processes():
    """(pid, /proc/PID/stat fields after the command name) of every process not a zombie."""
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[-1].split()
        except OSError:
            continue
        if fields[0] != b"Z":
            yield int(p), fields


def group_members(pgid: int) -> list[int]:
    return [pid for pid, fields in live_processes() if int(fields[3]) == pgid]


def probe_app(tmp_path, name: str, prelude: str, app_timeout: float = 15, extra=()):
    (tmp_path / f"{name}.py").write_text(APP.format(prelude=prelude))
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "wsdiag", "probe", "--app", f"{name}:app", "--app-timeout",
                             str(app_timeout), "--timeout", "3", "--watch", "0.3", "--no-proxy", "--json", *extra],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=app_timeout + 30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out.decode(), err.decode(), time.monotonic() - start


def no_survivors(tmp_path) -> None:
    pgid = int((tmp_path / "pgid").read_text())
    deadline = time.monotonic() + 3
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert group_members(pgid) == [], "processes of the app's group survived wsdiag"
    for f in tmp_path.glob("daemon_*"):
        pid = int(f.read_text())
        assert not alive(pid), f"{f.name} (pid {pid}) survived wsdiag"


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_app_is_probed_and_leaves_nothing_behind(tmp_path, name):
    rc, out, err, took = probe_app(tmp_path, name, HOSTILE[name])
    assert took < 15 + 20, f"probe --app took {took:.1f}s"
    assert rc in (0, 1), err
    doc = json.loads(out)
    assert doc["reports"][0]["url"].endswith("/ws"), out[:500]
    no_survivors(tmp_path)


def test_app_that_never_gets_ready_ends_within_app_timeout(tmp_path):
    """Import never finishes and prints without a newline: not ready within --app-timeout, exit 3, no survivor."""
    prelude = DAEMONS + '\nimport time\nsys.stdout.write("loading"); sys.stdout.flush()\ntime.sleep(300)'
    (tmp_path / "pgid").write_text(str(0))
    rc, out, err, took = probe_app(tmp_path, "stuck_forever", 'open("pgid", "w").write(str(os.getpgid(0)))\n' + prelude,
                                   app_timeout=3)
    assert rc == 3, err
    assert err.strip().splitlines()[-1] == "wsdiag: could not start the app: the app was not ready within 3 s"
    assert took < 3 + 10, f"took {took:.1f}s"
    no_survivors(tmp_path)


@pytest.mark.parametrize("signame, status", [("SIGINT", 130), ("SIGTERM", 143)])
def test_ctrl_c_while_waiting_stops_the_app(tmp_path, signame, status):
    """SIGINT/SIGTERM to wsdiag while the app is still importing: the app's group and daemons are gone."""
    import signal

    prelude = DAEMONS + '\nopen("pgid", "w").write(str(os.getpgid(0)))\nimport time\ntime.sleep(300)'
    (tmp_path / "sleepy.py").write_text(APP.format(prelude=prelude))
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    proc = subprocess.Popen([sys.executable, "-m", "wsdiag", "probe", "--app", "sleepy:app", "--app-timeout", "60"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not (tmp_path / "pgid").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (tmp_path / "pgid").exists(), "the app never started importing"
    time.sleep(0.3)
    proc.send_signal(getattr(signal, signame))
    try:
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == status, err
    no_survivors(tmp_path)


def test_sample_child_is_in_its_own_group_and_stop_ends_it():
    from wsdiag.proc import MARK_ENV, start_sample, survivors

    child = start_sample()
    try:
        assert os.getpgid(child.proc.pid) == child.proc.pid != os.getpgid(0)
        assert child.trace is not None  # token and channel came over the ready pipe, not stdout
        assert not any(child.trace[1] in line for line in child.output)
        mark = child.proc.mark
        assert survivors(mark) == [child.proc.pid]
        with open(f"/proc/{child.proc.pid}/environ", "rb") as f:
            assert f"{MARK_ENV}={mark}".encode() in f.read()
    finally:
        child.stop()
    assert survivors(mark) == []
    assert group_members(child.proc.pid) == []


def test_app_closing_every_descriptor_is_not_ready_within_app_timeout(tmp_path):
    """An app that closes all its descriptors (the ready pipe too) at import can never say ready:
    wsdiag waits no longer than --app-timeout, exits 3 and leaves nothing behind."""
    rc, out, err, took = probe_app(tmp_path, "closes_all", "os.closerange(3, 4096)", app_timeout=3)
    assert rc == 3, err
    assert "not ready within 3 s" in err
    assert took < 3 + 10
    no_survivors(tmp_path)
