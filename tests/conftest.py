"""Shared test fixtures: real gevent-websocket servers from fixtures/ on 127.0.0.1:0."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from wsdiag.proc import Child, SampleError, wait_ready

ROOT = Path(__file__).resolve().parent.parent
READY = re.compile(r"listening on http://(\S+?):(\d+)/")


class Served(Child):
    """A fixture app running in a child process; ``url(path)`` gives ws:// URLs."""

    def __init__(self, proc, host, port):
        super().__init__(proc, host, port, variant="")

    def url(self, path: str = "/ws", scheme: str = "ws") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{path}"


def start_fixture_app(module: str, websocket: bool = True, host: str = "127.0.0.1", tls: tuple[str, str] | None = None) -> Served:
    cmd = [sys.executable, "-m", "fixtures.serve", module, "--host", host]
    if not websocket:
        cmd.append("--no-websocket-handler")
    if tls:
        cmd += ["--certfile", tls[0], "--keyfile", tls[1]]
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


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory):
    """A throwaway CA and a server certificate for 127.0.0.1/localhost (made at test time)."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    d = tmp_path_factory.mktemp("tls")
    paths = {"ca": d / "ca.pem", "chain": d / "chain.pem", "key": d / "key.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    with open(paths["chain"], "wb") as f:
        for blob in cert.cert_chain_pems:
            f.write(blob.bytes())
    return {k: str(v) for k, v in paths.items()}


@pytest.fixture(scope="session")
def tls_app(tls_material):
    served = start_fixture_app("fixtures.apps.seed_fixed", tls=(tls_material["chain"], tls_material["key"]))
    yield served
    served.stop()


def has_ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False
