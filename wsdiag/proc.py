"""Child processes: start a server child, drain its output, wait for its ready line, stop it.

The one child-process module: the sample (``start_sample``) and ``probe --app``
(``wsdiag.flaskapp.appserver.start_app``) both use it.  Standard library only.

Guarantees (issue 15):

* ``spawn`` starts every child in a session (process group) of its own, marked with a
  random value in its environment that its descendants inherit.
* Its stdout and stderr are drained from the first moment by ``OutputTail``: raw reads that
  need no newline, keeping at most ``TAIL_BYTES`` bytes, so a child that prints a lot, prints
  without a newline or closes its stdout can neither block nor hang wsdiag.
* Readiness comes on a pipe of its own (fd named by ``WSDIAG_READY_FD``), never the child's
  stdout: the child calls ``signal_ready(info)``, which writes one line
  ``WSDIAG-READY {json}``; ``wait_ready_channel`` reads it within a deadline.
* ``stop`` ends the whole group (TERM, then KILL), then every process still carrying the
  child's mark or holding its pipes (daemons that left the group), on every exit path:
  callers use ``try/finally``, and an ``atexit`` hook stops whatever is still running.
* When wsdiag cannot run ``stop`` (it was SIGKILLed, crashed hard), the child ends itself:
  ``spawn`` hands it the read end of a *lifeline* pipe (fd named by ``WSDIAG_LIFELINE_FD``)
  whose only writer is this process and which nobody ever writes to; the kernel closes the
  write end when wsdiag dies, the child's watcher sees EOF and ends its process group
  (SIGTERM, then SIGKILL after ``LIFELINE_GRACE`` s).  The one mechanism for every server
  child (the sample and the app server): ``wsdiag.flaskapp.server.watch_parent`` starts it,
  in a greenlet when gevent has patched the process, else in a thread (``watch_parent`` here).
"""

from __future__ import annotations

import atexit
import collections
import json
import os
import re
import secrets
import selectors
import signal
import subprocess
import sys
import threading
import time

READY = re.compile(r"listening on http://(\S+?):(\d+)/")
READY_FD_ENV = "WSDIAG_READY_FD"
LIFELINE_ENV = "WSDIAG_LIFELINE_FD"
LIFELINE_GRACE = 0.8  # seconds between the SIGTERM and the SIGKILL once the parent is gone
MARK_ENV = "WSDIAG_CHILD_MARK"
READY_PREFIX = "WSDIAG-READY "
MAX_READY = 1024 * 1024  # bytes a ready line may have
TAIL_BYTES = 256 * 1024  # output kept per child
MAX_LINE = 8192  # a "line" without newline is cut here


class SampleError(RuntimeError):
    """The child could not be started or was not ready; the message is one line."""


class NotReady(SampleError):
    """No ready line within the deadline (the child was alive)."""


# -- the child's side -------------------------------------------------------------------------

def signal_ready(info: dict) -> bool:
    """In a child started by ``spawn``: say it is ready (or failed: ``{"error": ...}``); once.

    Returns False when the process was not started by ``spawn`` (no ready channel).
    """
    fd_text = os.environ.get(READY_FD_ENV)
    if not fd_text or not fd_text.isdigit():
        return False
    fd = int(fd_text)
    data = (READY_PREFIX + json.dumps(info, default=str) + "\n").encode("utf-8")
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.close(fd)
    except OSError:
        return False
    os.environ.pop(READY_FD_ENV, None)
    return True


def lifeline_fd() -> int | None:
    """In a child started by ``spawn``: the lifeline's read end (once; None without one)."""
    fd_text = os.environ.pop(LIFELINE_ENV, None)
    if not fd_text or not fd_text.isdigit():
        return None
    try:
        os.fstat(int(fd_text))
    except OSError:
        return None
    return int(fd_text)


def watch_parent() -> bool:
    """In a child started by ``spawn``: end this process group when the parent dies, in a daemon
    thread (servers without gevent's monkey patching; gevent servers use
    ``wsdiag.flaskapp.server.watch_parent``, which picks a greenlet when patched).
    Returns False when the process was not started by ``spawn`` (no lifeline)."""
    fd = lifeline_fd()
    if fd is None:
        return False
    watch_lifeline_thread(fd)
    return True


def parent_gone(sleep) -> None:
    """The lifeline reached EOF: SIGTERM (the server's own stop path), then SIGKILL to the whole
    group after ``LIFELINE_GRACE`` seconds (``sleep``: time.sleep, or gevent.sleep in a greenlet)."""
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        sleep(LIFELINE_GRACE)
        if os.getpgid(0) == os.getpid():
            os.killpg(os.getpid(), signal.SIGKILL)
    except OSError:
        pass
    os._exit(1)


def watch_lifeline_thread(fd: int) -> None:
    """The lifeline in a daemon thread: blocks in read() until every writer (wsdiag) is gone."""

    def watch():
        try:
            while os.read(fd, 4096):
                pass
        except Exception:
            return
        parent_gone(time.sleep)

    threading.Thread(target=watch, daemon=True, name="wsdiag-parent-watch").start()


# -- the parent's side ------------------------------------------------------------------------

class OutputTail:
    """Drain a child's stdout and stderr in threads, keeping the last ``limit`` bytes as lines.

    Reads are raw (``os.read``), so output without a newline is kept too; a line longer
    than ``MAX_LINE`` is cut into pieces.  Nothing the child writes can block it or us.
    """

    def __init__(self, proc: subprocess.Popen, keep: int = 500, name: str = "wsdiag-child-output",
                 limit: int = TAIL_BYTES):
        self.lines: collections.deque = collections.deque(maxlen=keep)
        self._bytes = 0
        self._limit = limit
        self._lock = threading.Lock()
        self.total = 0  # bytes read, kept or not
        self._threads = [threading.Thread(target=self._drain, args=(s,), daemon=True, name=name)
                         for s in (proc.stdout, proc.stderr) if s is not None]
        for t in self._threads:
            t.start()

    def _add(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        with self._lock:
            if len(self.lines) == self.lines.maxlen:
                self._bytes -= len(self.lines[0])
            self.lines.append(text)
            self._bytes += len(text)
            while self._bytes > self._limit and len(self.lines) > 1:
                self._bytes -= len(self.lines.popleft())

    def _drain(self, stream) -> None:
        try:
            fd = stream.fileno()
        except (OSError, ValueError):
            return
        pending = b""
        try:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                self.total += len(chunk)
                pending += chunk
                *done, pending = pending.split(b"\n")
                for line in done:
                    self._add(line)
                while len(pending) > MAX_LINE:
                    self._add(pending[:MAX_LINE])
                    pending = pending[MAX_LINE:]
        except (OSError, ValueError):
            pass
        if pending:
            self._add(pending)

    def join(self, timeout: float = 2.0) -> None:
        end = time.monotonic() + timeout
        for t in self._threads:
            t.join(timeout=max(0.0, end - time.monotonic()))


_LIVE: set = set()


def spawn(cmd: list[str], *, env: dict | None = None, cwd: str | None = None, stdin: bool = False) -> subprocess.Popen:
    """Start ``cmd`` in its own session with drained output and a ready channel.

    The returned Popen carries ``ready_fd`` (read end), ``mark`` and ``tail`` (OutputTail).
    Raises OSError when the program cannot be run.
    """
    env = dict(os.environ if env is None else env)
    mark = secrets.token_hex(12)
    r, w = os.pipe()
    life_r, life_w = os.pipe()  # the lifeline: we keep the write end (never written) until stop()
    env[READY_FD_ENV] = str(w)
    env[LIFELINE_ENV] = str(life_r)
    env[MARK_ENV] = mark
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(w, life_r),
                                start_new_session=True)
    except BaseException:
        os.close(r)
        os.close(life_w)
        raise
    finally:
        os.close(w)
        os.close(life_r)
    proc.ready_fd = r  # type: ignore[attr-defined]
    proc.lifeline = life_w  # type: ignore[attr-defined]
    proc.mark = mark  # type: ignore[attr-defined]
    proc.own_group = True  # type: ignore[attr-defined]
    proc.pipe_inodes = _inodes(proc)  # type: ignore[attr-defined]
    proc.tail = OutputTail(proc)  # type: ignore[attr-defined]
    _LIVE.add(proc)
    return proc


def _inodes(proc) -> set:
    out = set()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        try:
            if stream is not None:
                out.add(os.fstat(stream.fileno()).st_ino)
        except (OSError, ValueError):
            pass
    for name in ("ready_fd", "lifeline"):
        try:
            out.add(os.fstat(getattr(proc, name)).st_ino)
        except (OSError, AttributeError, TypeError):
            pass
    return out


def wait_ready_channel(proc: subprocess.Popen, timeout: float) -> dict:
    """The child's ready document (``signal_ready``), within ``timeout`` seconds.

    Raises ``NotReady`` after the deadline, ``SampleError`` when the child exits (or closes
    the channel) without a ready line, with the last line it wrote to stderr/stdout.
    """
    deadline = time.monotonic() + timeout
    fd = proc.ready_fd  # type: ignore[attr-defined]
    buf = b""
    exited_at = None
    while True:
        now = time.monotonic()
        if now >= deadline:
            raise NotReady(f"not ready within {timeout:g} s")
        readable = False
        if fd is None:
            time.sleep(min(0.1, deadline - now))
        else:
            with selectors.DefaultSelector() as sel:  # not select(): descriptors above 1023 work too
                sel.register(fd, selectors.EVENT_READ)
                readable = bool(sel.select(min(0.1, deadline - now)))
        if readable and fd is not None:
            chunk = os.read(fd, 65536)
            if not chunk:  # every writer closed it: the child exited, or closed the fd itself
                _wait_quietly(proc, min(1.0, max(0.0, deadline - time.monotonic())))
                if proc.poll() is not None:
                    raise SampleError(_last_words(proc))
                fd = None  # alive without a channel: it can never say ready; wait for exit or the deadline
                continue
            buf += chunk
            if b"\n" in buf:
                line = buf.split(b"\n", 1)[0].decode("utf-8", "replace")
                if not line.startswith(READY_PREFIX):
                    raise SampleError("unreadable ready line from the child")
                try:
                    doc = json.loads(line[len(READY_PREFIX):])
                except ValueError:
                    raise SampleError("unreadable ready line from the child") from None
                if not isinstance(doc, dict):
                    raise SampleError("unreadable ready line from the child")
                return doc
            if len(buf) > MAX_READY:
                raise SampleError(f"ready line over {MAX_READY} bytes")
            continue
        if proc.poll() is not None:  # exited; a grandchild may hold the channel open
            exited_at = exited_at or time.monotonic()
            if time.monotonic() - exited_at > 0.5:
                raise SampleError(_last_words(proc))


def _wait_quietly(proc, timeout: float) -> None:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass


def _last_words(proc) -> str:
    tail = getattr(proc, "tail", None)
    if tail is not None:
        tail.join(timeout=0.5)
        lines = [ln.strip() for ln in list(tail.lines) if ln.strip()]
        if lines:
            return lines[-1][:300]
    code = proc.poll()
    return f"exited with status {code}" if code is not None else "closed its ready channel"


def stop(proc: subprocess.Popen, grace: float = 3.0) -> None:
    """End the child's whole process group, then any marked or pipe-holding survivor; idempotent."""
    try:
        if proc.stdin is not None and not proc.stdin.closed:
            proc.stdin.close()
    except OSError:
        pass
    own_group = getattr(proc, "own_group", False) or _leads_group(proc.pid)
    if proc.poll() is None:
        if own_group:
            _killpg(proc.pid, signal.SIGTERM)
        else:
            proc.terminate()
        _wait_quietly(proc, grace)
    if own_group:
        _killpg(proc.pid, signal.SIGKILL)  # the group: workers and forks that stayed in it
    if proc.poll() is None:
        try:
            proc.kill()
        except OSError:
            pass
    _wait_quietly(proc, grace)
    mark = getattr(proc, "mark", None)
    if mark:
        for _ in range(3):  # daemons that left the group but carry the mark or hold the pipes
            found = survivors(mark, getattr(proc, "pipe_inodes", set()))
            if not found:
                break
            for pid in found:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.05)
    tail = getattr(proc, "tail", None)
    if tail is not None:
        tail.join(timeout=1.0)
    for stream in (proc.stdout, proc.stderr):
        try:
            if stream is not None:
                stream.close()
        except OSError:
            pass
    for name in ("ready_fd", "lifeline"):
        fd = getattr(proc, name, None)
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
            setattr(proc, name, None)
    _LIVE.discard(proc)


def _leads_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except OSError:
        return False


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (OSError, AttributeError):
        pass


def survivors(mark: str, inodes: set | None = None) -> list[int]:
    """Live processes (not zombies) carrying ``mark`` in their environment or holding one of ``inodes``."""
    found: list[int] = []
    needle = f"{MARK_ENV}={mark}".encode()
    me = os.getpid()
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return found
    for pid in pids:
        if pid == me:
            continue
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[-1].split()[0] == b"Z":
                    continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(pid)
                    continue
            if inodes:
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("pipe:[") and int(link[6:-1]) in inodes:
                        found.append(pid)
                        break
        except (OSError, ValueError, IndexError):
            continue
    return found


@atexit.register
def _stop_all() -> None:
    for proc in list(_LIVE):
        try:
            stop(proc, grace=1.0)
        except Exception:
            pass


# -- the sample ---------------------------------------------------------------------------

class Child:
    """A started server child; its output is drained (``output``: the last lines)."""

    def __init__(self, proc: subprocess.Popen, host: str, port: int, variant: str,
                 trace_url: str | None = None, token: str | None = None):
        self.proc, self.host, self.port, self.variant = proc, host, port, variant
        self.trace_url, self.token = trace_url, token
        self._tail = getattr(proc, "tail", None) or OutputTail(proc)

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
        import urllib.request

        with urllib.request.urlopen(f"http://{self.host}:{self.port}/events", timeout=5) as resp:
            return json.loads(resp.read(8 * 1024 * 1024))["events"]

    def stop(self) -> None:
        stop(self.proc)
        self._tail.join()


def start_sample(variant: str = "all", websocket: bool = True, timeout: float = 20.0) -> Child:
    """Start ``wsdiag serve-sample`` on a free loopback port and wait until it listens."""
    cmd = [sys.executable, "-m", "wsdiag", "serve-sample", "--port", "0", "--variant", variant]
    if not websocket:
        cmd.append("--no-websocket-handler")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
        proc = spawn(cmd, env=env)
    except OSError as exc:
        raise SampleError(f"could not run {sys.executable}: {exc.strerror or exc}") from None
    try:
        doc = wait_ready_channel(proc, timeout)
        if "error" in doc:
            raise SampleError(str(doc["error"])[:300])
        return Child(proc, str(doc["host"]).strip("[]"), int(doc["port"]), variant,
                     doc.get("trace_url"), doc.get("token"))
    except NotReady:
        stop(proc)
        raise SampleError(f"no 'listening' line within {timeout:.0f}s") from None
    except (KeyError, TypeError, ValueError):
        stop(proc)
        raise SampleError("unreadable ready line from the sample") from None
    except BaseException:
        stop(proc)
        raise


# -- servers that announce themselves on stdout (test fixtures) --------------------------------

def wait_ready(proc: subprocess.Popen, pattern: re.Pattern, timeout: float) -> tuple[str, int]:
    """Read the child's stdout until ``pattern`` matches (host, port); bounded by ``timeout``."""
    m = wait_ready_match(proc, pattern, timeout)
    return m.group(1).strip("[]"), int(m.group(2))


def wait_ready_match(proc: subprocess.Popen, pattern: re.Pattern, timeout: float) -> re.Match:
    """Read the child's stdout until a line matches ``pattern``; bounded in time and bytes.

    For servers that announce themselves on stdout (test fixtures); wsdiag's own children
    use the ready channel (``spawn`` / ``wait_ready_channel``).  Raw reads: a child printing
    without a newline cannot block this past ``timeout``.
    """
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    if proc.stdout is None:
        raise SampleError("the child's stdout is not a pipe")
    fd = proc.stdout.fileno()
    sel.register(fd, selectors.EVENT_READ)
    pending = b""
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill()
                raise SampleError(f"no 'listening' line within {timeout:.0f}s")
            if not sel.select(left):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                err = b""
                if proc.stderr is not None:
                    try:
                        os.set_blocking(proc.stderr.fileno(), False)
                        err = os.read(proc.stderr.fileno(), 65536) or b""
                    except (OSError, TypeError):
                        err = b""
                _wait_quietly(proc, 3)
                lines = err.decode("utf-8", "replace").strip().splitlines()
                raise SampleError(lines[-1] if lines else f"exited with status {proc.returncode}")
            pending += chunk
            *done, pending = pending.split(b"\n")
            for line in done:
                m = pattern.search(line.decode("utf-8", "replace"))
                if m:
                    return m
            pending = pending[-MAX_LINE:]
    finally:
        sel.close()
