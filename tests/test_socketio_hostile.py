"""The Socket.IO mode against scripted misbehaving servers: every wait bounded, a cause, no crash."""

from __future__ import annotations

import socket
import threading

import pytest

from wsdiag.core.handshake import accept_for
from wsdiag.net.socketio import SioOptions, socketio_report
from wsdiag.net.transport import Settings

pytestmark = pytest.mark.timeout(40)


def _key(head: bytes) -> str:
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"sec-websocket-key:"):
            return line.split(b":", 1)[1].strip().decode()
    return ""


def _101(head: bytes) -> bytes:
    return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_for(_key(head)).encode() + b"\r\n\r\n")


SCENARIOS = {
    # plain HTTP that is not Engine.IO at all
    "html-everywhere": (lambda head: b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
                        "not-engineio"),
    # upgrades, then speaks something that is not an OPEN packet; polling answers a JSON error
    "101-garbage": (lambda head: _101(head) + b"\x81\x05hello" if b"Upgrade" in head else
                    b'HTTP/1.1 400 Bad Request\r\nContent-Length: 12\r\nConnection: close\r\n\r\n"Go away, x"',
                    "engineio-bad-request"),
    # accepts, reads, and never answers
    "silent": (None, "no-response"),
    # a chunked answer that never ends
    "endless-chunks": ("stream", "not-engineio"),
}


class Scripted:
    def __init__(self, kind):
        self.kind = kind
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, conn):
        conn.settimeout(0.5)
        head = b""
        try:
            while b"\r\n\r\n" not in head and not self.stop.is_set():
                try:
                    chunk = conn.recv(4096)
                except socket.timeout:
                    continue
                if not chunk:
                    return
                head += chunk
            action = SCENARIOS[self.kind][0]
            if action is None:
                self.stop.wait(10)
            elif action == "stream":
                conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                while not self.stop.is_set():
                    conn.sendall(b"3\r\nabc\r\n")
                    self.stop.wait(0.01)
            else:
                conn.sendall(action(head))
                self.stop.wait(0.3)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=2)
        self.sock.close()


@pytest.mark.parametrize("kind", list(SCENARIOS))
def test_misbehaving_server_gets_a_cause_within_the_deadline(kind):
    server = Scripted(kind)
    try:
        report = socketio_report(f"ws://127.0.0.1:{server.port}/socket.io/", Settings(timeout=1.5),
                                 SioOptions(sessions=2, connect_wait=1))
    finally:
        server.close()
    names = [c.info.name for c in report.causes]
    assert SCENARIOS[kind][1] in names, (names, report.socketio)
    assert not report.ok
