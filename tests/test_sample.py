"""The sample server: the report's variants behave as documented and the chat handlers are correct."""

from __future__ import annotations

import json
import os
import time

import pytest
import websocket

from wsdiag.proc import start_sample

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def sample():
    child = start_sample()
    yield child
    child.stop()


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_binds_loopback_by_default(sample):
    assert sample.host == "127.0.0.1"


@pytest.mark.parametrize("variant", ["hook", "fixed"])
def test_chat_broadcasts_to_the_other_sockets(sample, variant):
    """A message from one client reaches the other clients of the room, not the sender."""
    a = websocket.create_connection(sample.url(variant), timeout=5)
    b = websocket.create_connection(sample.url(variant), timeout=5)
    try:
        time.sleep(0.1)  # both have joined the room
        a.send("hello from a")
        got = json.loads(b.recv())
        assert got["message"] == "hello from a"
        a.settimeout(0.3)
        with pytest.raises(websocket.WebSocketTimeoutException):
            a.recv()
    finally:
        a.close()
        b.close()


def test_route_variant_is_abandoned_on_this_werkzeug(sample):
    """Variant 1 on Werkzeug >= 2: open, then an immediate empty close frame."""
    ws = websocket.create_connection(sample.url("route"), timeout=5)
    try:
        opcode, frame = ws.recv_data_frame(True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE and frame.data == b""
    finally:
        ws.close()


@pytest.mark.parametrize("variant", ["hook", "fixed"])
def test_handler_leaves_when_the_peer_closes_instead_of_spinning(sample, variant):
    """The report's loop spun on receive() -> None; the sample's uses no CPU after peers leave."""
    for _ in range(5):
        ws = websocket.create_connection(sample.url(variant), timeout=5)
        ws.send("x")
        ws.close()
    time.sleep(0.3)
    before = cpu_seconds(sample.proc.pid)
    time.sleep(1.0)
    assert cpu_seconds(sample.proc.pid) - before < 0.2


def test_serve_sample_refuses_a_busy_port_with_one_line(sample):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "wsdiag", "serve-sample", "--port", str(sample.port)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 3
    assert r.stderr.startswith("wsdiag: cannot serve on 127.0.0.1:") and "Traceback" not in r.stderr


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_serve_sample_stops_cleanly_on_ctrl_c(sig):
    """Ctrl-C (or SIGTERM) ends serve-sample with status 0 and no traceback, promptly."""
    import signal

    child = start_sample()
    child.proc.send_signal(getattr(signal, sig))
    try:
        child.proc.wait(timeout=10)
    finally:
        child.stop()
    out = "\n".join(child.output)
    assert child.proc.returncode == 0, out
    assert "Traceback" not in out
