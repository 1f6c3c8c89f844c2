"""A tiny loopback server that records a browser's opening handshake byte for byte.

Used by ``wsdiag profiles --refresh``: ``GET /`` answers an empty page (the origin the
browser's page runs on), ``GET /wsdiag-capture`` with an upgrade is recorded exactly as it
arrived, answered with a correct 101, then closed with a 1000 close frame.  Binds
127.0.0.1 port 0; every socket has a timeout; ``stop`` ends the thread.
"""

from __future__ import annotations

import socket
import threading

from wsdiag.core.handshake import accept_for, find_head_end

PATH = "/wsdiag-capture"
IO_TIMEOUT = 5.0


class CaptureServer:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.captured: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="wsdiag-capture", daemon=True)
        self._thread.start()

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{PATH}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(IO_TIMEOUT)
        try:
            buf = b""
            while find_head_end(buf) is None and len(buf) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                buf += chunk
            head = buf[: find_head_end(buf)]
            line = head.split(b"\r\n", 1)[0].split(b" ")
            path = line[1].decode("latin-1") if len(line) == 3 else ""
            if path == PATH:
                self.captured.append(head)
                key = ""
                for ln in head.split(b"\r\n")[1:]:
                    name, _, value = ln.partition(b":")
                    if name.strip().lower() == b"sec-websocket-key":
                        key = value.strip().decode("latin-1")
                conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              f"Sec-WebSocket-Accept: {accept_for(key)}\r\n\r\n").encode())
                conn.sendall(b"\x88\x02\x03\xe8")  # close 1000
                try:
                    conn.recv(1024)
                except OSError:
                    pass
            else:
                body = b"<!doctype html><title>wsdiag</title>"
                status = b"200 OK" if path == "/" else b"404 Not Found"
                conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: text/html\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()

    def __enter__(self) -> "CaptureServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
