"""Soak: the sample server holds 1,000 concurrent sockets; probing hundreds of URLs leaks nothing.

The 1,000-client hold is marked ``soak`` (run by .ci/run after the default suite); the
descriptor-leak check of a multi-hundred-URL probe is quick and runs by default.
"""

from __future__ import annotations

import base64
import os
import resource
import selectors
import socket
import time

import pytest

from wsdiag.net.probe import ProbeOptions, probe
from wsdiag.core.profiles import resolve
from wsdiag.proc import start_sample
from wsdiag.net.transport import Settings

CLIENTS, HOLD = 1000, 30.0


def open_fds(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.timeout(120)
def test_probing_hundreds_of_urls_leaks_no_descriptors(serve_app):
    """300 URLs x (1 profile + 2 controls), concurrently: the fd count returns to where it was."""
    base = serve_app("fixtures.apps.seed_fixed")
    urls = [base.url(f"/ws?i={i}") for i in range(300)]
    opts = ProbeOptions(resolve(["minimal"]), Settings(timeout=5, watch=1, use_env_proxy=False), concurrency=32)
    probe(urls[:10], opts)  # warm-up: lazy imports, thread pools
    before = open_fds()
    reports = probe(urls, opts)
    assert len(reports) == 300 and all(r.ok for r in reports)
    assert open_fds() <= before


def _raise_fd_limit(n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))


def _handshake(port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET /fixed/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


PING = bytes([0x89, 0x80]) + b"\x00\x00\x00\x00"  # masked empty ping (zero mask)


@pytest.mark.soak
@pytest.mark.timeout(HOLD + 90)
def test_sample_holds_a_thousand_sockets_with_bounded_memory():
    """1,000 clients upgrade, stay open 30 s answering pings; RSS stays bounded; all fds released."""
    _raise_fd_limit(CLIENTS * 2 + 256)
    child = start_sample()
    pid = child.proc.pid
    socks: list[socket.socket] = []
    sel = selectors.DefaultSelector()
    try:
        fds_idle, rss_idle = open_fds(pid), rss_mib(pid)
        for _ in range(CLIENTS):
            s = socket.create_connection(("127.0.0.1", child.port), timeout=5)
            s.sendall(_handshake(child.port))
            socks.append(s)
        upgraded = 0
        for s in socks:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(4096)
                assert chunk, "server closed during the handshake"
                head += chunk
            upgraded += head.startswith(b"HTTP/1.1 101")
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
        assert upgraded == CLIENTS
        rss_loaded = rss_mib(pid)
        assert open_fds(pid) >= fds_idle + CLIENTS
        end, pongs, rounds = time.monotonic() + HOLD, 0, 0
        while time.monotonic() < end:
            for s in socks:
                s.sendall(PING)
            rounds += 1
            round_end = min(time.monotonic() + 5, end)
            while time.monotonic() < round_end:
                for key, _ in sel.select(timeout=0.2):
                    data = key.fileobj.recv(65536)
                    assert data, "server dropped a socket during the hold"
                    pongs += data.count(b"\x8a\x00")
        assert pongs >= CLIENTS * (rounds - 1)  # every round answered (the last may still be in flight)
        rss_end = rss_mib(pid)
        assert rss_end < rss_idle + 200, (rss_idle, rss_loaded, rss_end)  # bounded: ~0.2 MiB per socket at most
        assert rss_end < rss_loaded * 1.5 + 20  # no growth while holding
    finally:
        sel.close()
        for s in socks:
            s.close()
    try:
        deadline = time.monotonic() + 15
        while open_fds(pid) > fds_idle + 5 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert open_fds(pid) <= fds_idle + 5  # every server-side socket closed
    finally:
        child.stop()
