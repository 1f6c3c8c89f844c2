"""Start the sample server: in this process (serve-sample) or as a child (demo, tests).

The child is ``python -m wsdiag serve-sample --port 0``; its first stdout line names the
port.  Waiting for it is bounded, and ``stop`` always ends the child.
"""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import sys
import time

READY = re.compile(r"listening on http://(\S+?):(\d+)/")


class SampleError(RuntimeError):
    """The sample server could not be started; the message is one line."""


def run_sample_server(variant: str, host: str, port: int, websocket: bool, ready) -> None:
    from wsdiag.sample.app import make_app
    from wsdiag.sample.server import serve

    serve(make_app(variant), host, port, websocket=websocket, ready=ready)


class Child:
    def __init__(self, proc: subprocess.Popen, host: str, port: int, variant: str):
        self.proc, self.host, self.port, self.variant = proc, host, port, variant

    def url(self, variant: str) -> str:
        path = f"/{variant}/ws" if self.variant == "all" else "/ws"
        return f"ws://{self.host}:{self.port}{path}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=3)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def start_sample(variant: str = "all", websocket: bool = True, timeout: float = 20.0) -> Child:
    """Start ``wsdiag serve-sample`` on a free loopback port and wait until it listens."""
    cmd = [sys.executable, "-m", "wsdiag", "serve-sample", "--port", "0", "--variant", variant]
    if not websocket:
        cmd.append("--no-websocket-handler")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    return Child(proc, *wait_ready(proc, READY, timeout), variant)


def wait_ready(proc: subprocess.Popen, pattern: re.Pattern, timeout: float) -> tuple[str, int]:
    """Read the child's stdout until ``pattern`` matches (host, port); bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    seen = b""
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill()
                raise SampleError(f"no 'listening' line within {timeout:.0f}s")
            if not sel.select(left):
                continue
            line = proc.stdout.readline()
            if not line:
                err = proc.stderr.read().decode("utf-8", "replace").strip().splitlines()
                proc.wait(timeout=3)
                raise SampleError(err[-1] if err else f"exited with status {proc.returncode}")
            seen += line
            m = pattern.search(line.decode("utf-8", "replace"))
            if m:
                return m.group(1).strip("[]"), int(m.group(2))
    finally:
        sel.close()
