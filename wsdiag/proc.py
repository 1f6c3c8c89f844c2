"""Child processes: start a server child, drain its output, wait for its ready line, stop it.

The one child-process module: the sample (``start_sample``) and ``probe --app``
(``wsdiag.flaskapp.appserver.start_app``) both use it.  Standard library only.

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


TRACE = re.compile(r"trace channel http://127\.0\.0\.1:(\d+) token ([0-9a-f]+)")


class OutputTail:
    """Read a child's stdout and stderr to the end in threads, keeping the last lines.

    A child whose pipes nobody reads blocks as soon as a pipe buffer fills (serve-sample logs
    every upgrade); every server child wsdiag starts is drained through this.
    """

    def __init__(self, proc: subprocess.Popen, keep: int = 500, name: str = "wsdiag-child-output"):
        import collections
        import threading

        self.lines: collections.deque = collections.deque(maxlen=keep)
        self._threads = [threading.Thread(target=self._drain, args=(s,), daemon=True, name=name)
                         for s in (proc.stdout, proc.stderr) if s is not None]
        for t in self._threads:
            t.start()

    def _drain(self, stream) -> None:
        try:
            for raw in iter(stream.readline, b""):
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
        except (OSError, ValueError):
            pass

    def join(self, timeout: float = 2.0) -> None:
        for t in self._threads:
            t.join(timeout=timeout)


class Child:
    """A started server child; its output is drained (``output``: the last lines)."""

    def __init__(self, proc: subprocess.Popen, host: str, port: int, variant: str,
                 trace_url: str | None = None, token: str | None = None):
        self.proc, self.host, self.port, self.variant = proc, host, port, variant
        self.trace_url, self.token = trace_url, token
        self._tail = OutputTail(proc)

    @property
    def output(self):
        return self._tail.lines

    @property
    def trace(self) -> tuple[str, str] | None:
        return (self.trace_url, self.token) if self.trace_url and self.token else None

    def url(self, variant: str) -> str:
        path = f"/{variant}/ws" if self.variant == "all" else "/ws"
        return f"ws://{self.host}:{self.port}{path}"

    def page_url(self, variant: str) -> str:
        """The variant's browser chat page."""
        return f"http://{self.host}:{self.port}/chat/{variant}"

    def browser_events(self) -> list[dict]:
        """What the pages reported (open, message, close with code), oldest first."""
        import json
        import urllib.request

        with urllib.request.urlopen(f"http://{self.host}:{self.port}/events", timeout=5) as resp:
            return json.loads(resp.read())["events"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=3)
        self._tail.join()
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
    m = wait_ready_match(proc, READY, timeout)
    t = TRACE.search(m.string)
    trace_url = f"http://127.0.0.1:{t.group(1)}" if t else None
    return Child(proc, m.group(1).strip("[]"), int(m.group(2)), variant, trace_url, t.group(2) if t else None)


def wait_ready(proc: subprocess.Popen, pattern: re.Pattern, timeout: float) -> tuple[str, int]:
    """Read the child's stdout until ``pattern`` matches (host, port); bounded by ``timeout``."""
    m = wait_ready_match(proc, pattern, timeout)
    return m.group(1).strip("[]"), int(m.group(2))


def wait_ready_match(proc: subprocess.Popen, pattern: re.Pattern, timeout: float) -> re.Match:
    """Read the child's stdout until a line matches ``pattern``; bounded by ``timeout``."""
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
                return m
    finally:
        sel.close()
