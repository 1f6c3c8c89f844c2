"""Shared test fixtures: real gevent-websocket servers from fixtures/ on 127.0.0.1:0."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from wsdiag.sample.launch import SampleError, wait_ready

ROOT = Path(__file__).resolve().parent.parent
READY = re.compile(r"listening on http://(\S+?):(\d+)/")


class Served:
    """A fixture app running in a child process; ``url(path)`` gives ws:// URLs."""

    def __init__(self, proc, host, port):
        self.proc, self.host, self.port = proc, host, port

    def url(self, path: str = "/ws", scheme: str = "ws") -> str:
        return f"{scheme}://{self.host}:{self.port}{path}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for s in (self.proc.stdout, self.proc.stderr):
            if s:
                s.close()


def start_fixture_app(module: str, websocket: bool = True) -> Served:
    cmd = [sys.executable, "-m", "fixtures.serve", module]
    if not websocket:
        cmd.append("--no-websocket-handler")
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        host, port = wait_ready(proc, READY, 20)
    except SampleError as exc:
        raise RuntimeError(f"fixture app {module} did not start: {exc}") from None
    return Served(proc, host, port)


@pytest.fixture(scope="session")
def serve_app():
    """Factory: serve_app('fixtures.apps.seed_route', websocket=True) -> Served (cached)."""
    started: dict[tuple[str, bool], Served] = {}

    def get(module: str, websocket: bool = True) -> Served:
        key = (module, websocket)
        if key not in started:
            started[key] = start_fixture_app(module, websocket)
        return started[key]

    yield get
    for s in started.values():
        s.stop()
