"""Run by `nox -s plain`: plain `pip install wsdiag` (no extras) next to real apps of two stacks.

Installing the diagnostic must never change the app it diagnoses (FAILURES FM-28): in an
environment with wsdiag (no extras), Flask-SocketIO, flask-sock, gevent and gunicorn, this
checks that gevent-websocket was not installed, then serves

* the Flask-SocketIO corpus app under ``gunicorn -k gevent`` (healthy only while
  gevent-websocket is absent) and completes an Engine.IO WebSocket open, and
* the flask-sock corpus app under ``gunicorn --threads`` and echoes a message,

each on a free loopback port, and runs ``wsdiag check`` over both: no error finding.
Exits non-zero with one line on any failure. Every child is stopped.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "fixtures", "apps_corpus")


def fail(msg: str) -> None:
    print(f"plain: FAIL: {msg}")
    sys.exit(1)


def serve(app_dir: str, *gunicorn_args: str):
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", *gunicorn_args, "-b", "127.0.0.1:0", "app:app"],
                            cwd=app_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        m = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", line)
        if m:
            return proc, int(m.group(1))
    proc.kill()
    fail(f"gunicorn {' '.join(gunicorn_args)} in {app_dir} did not start: {''.join(seen)[-500:]}")


def stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def main() -> None:
    import websocket  # websocket-client: a dependency of plain wsdiag

    if importlib.util.find_spec("geventwebsocket") is not None:
        fail("gevent-websocket is installed by plain wsdiag")
    from importlib.metadata import requires

    if any(r.split(";")[0].strip().lower().startswith(("gevent", "gevent-websocket"))
           and "extra ==" not in r for r in requires("wsdiag") or []):
        fail("wsdiag still depends on gevent/gevent-websocket outside an extra")

    sio, sio_port = serve(os.path.join(CORPUS, "socketio_gevent"), "-k", "gevent", "-w", "1")
    try:
        ws = websocket.create_connection(f"ws://127.0.0.1:{sio_port}/socket.io/?EIO=4&transport=websocket", timeout=10)
        opened = ws.recv()
        ws.close()
        if not str(opened).startswith("0{"):
            fail(f"Flask-SocketIO under gunicorn -k gevent did not open an Engine.IO session: {opened!r}")
    except Exception as exc:  # noqa: BLE001 - any failure is the finding
        fail(f"Flask-SocketIO under gunicorn -k gevent broke: {exc}")
    finally:
        stop(sio)
    print("plain: Flask-SocketIO under gunicorn -k gevent: WebSocket open packet received")

    sock, sock_port = serve(os.path.join(CORPUS, "sock_gthread"), "--threads", "4")
    try:
        ws = websocket.create_connection(f"ws://127.0.0.1:{sock_port}/echo", timeout=10)
        ws.send("hello")
        echoed = ws.recv()
        ws.close()
        if echoed != "hello":
            fail(f"flask-sock under gunicorn --threads echoed {echoed!r}")
    except Exception as exc:  # noqa: BLE001
        fail(f"flask-sock under gunicorn --threads broke: {exc}")
    finally:
        stop(sock)
    print("plain: flask-sock under gunicorn --threads: echo received")

    for name in ("socketio_gevent", "sock_gthread"):
        out = subprocess.run([sys.executable, "-m", "wsdiag", "check", os.path.join(CORPUS, name), "--no-cache",
                              "--format", "json"], capture_output=True, text=True, timeout=120)
        doc = json.loads(out.stdout)
        errors = [f["code"] for f in doc["findings"] if f["severity"] == "error"]
        if errors or out.returncode != 0:
            fail(f"wsdiag check {name}: exit {out.returncode}, errors {errors}")
    print("plain: wsdiag check: no error on either app")


if __name__ == "__main__":
    main()
