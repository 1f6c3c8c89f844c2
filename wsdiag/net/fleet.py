"""Fleet probing: thousands of URLs streamed through a bounded pool, one record per URL.

An I/O edge like ``probe``: it reuses ``probe.probe`` for each URL (so a fleet record is
exactly what ``wsdiag probe URL --json`` reports for that URL) and adds what a fleet scan
needs:

* memory bounded whatever the URL count: URLs are read lazily (a feeder thread, a bounded
  queue), at most ``concurrency`` URLs are in flight, and each report is handed to ``emit``
  and dropped as soon as it completes (completion order, not input order);
* politeness: at most ``per_host`` URLs of one host:port in flight, and at most ``rate`` URLs
  started per second (a token bucket);
* resume: ``resume_keys`` reads a partial JSON Lines output and the URLs it already records
  are skipped (kept as 8-byte digests, not strings);
* a summary: counts per verdict and per leading cause.

It never prints: ``emit`` receives the records, ``progress`` a ``Summary`` now and then.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from wsdiag.core.findings import UrlReport
from wsdiag.core.handshake import BadURL, parse_target
from wsdiag.core.record import replace

RECORD_TYPES = ("report", "error", "summary")


@dataclass
class FleetOptions:
    concurrency: int = 16  # URLs in flight at once
    per_host: int | None = None  # URLs of one host:port in flight at once (None: no limit below concurrency)
    rate: float | None = None  # URLs started per second (None: no limit)
    skip: set = field(default_factory=set)  # url_key()s already recorded (--resume)


@dataclass
class Summary:
    urls: int = 0  # URLs probed in this run
    ok: int = 0
    failing: int = 0  # reports at or above --fail-on
    bad_urls: int = 0  # lines that are not a usable URL
    errors: int = 0  # URLs wsdiag could not probe at all (an internal error)
    resumed: int = 0  # URLs skipped because the resumed output already records them
    verdicts: dict = field(default_factory=dict)  # URL verdict -> count
    causes: dict = field(default_factory=dict)  # leading cause code -> count
    started: float = field(default_factory=time.monotonic)

    def to_dict(self) -> dict:
        return {"type": "summary", "urls": self.urls, "ok": self.ok, "with_problems": self.urls - self.ok,
                "failing": self.failing, "bad_urls": self.bad_urls, "errors": self.errors, "resumed": self.resumed,
                "verdicts": dict(sorted(self.verdicts.items(), key=lambda kv: (-kv[1], kv[0]))),
                "leading_causes": dict(sorted(self.causes.items(), key=lambda kv: (-kv[1], kv[0]))),
                "seconds": round(time.monotonic() - self.started, 3)}


def url_key(url: str) -> bytes:
    return hashlib.blake2b(url.encode("utf-8", "surrogateescape"), digest_size=8).digest()


def url_verdict(report: UrlReport) -> str:
    """The verdict of the first counted profile that failed, or ``serviced``."""
    for r in report.results:
        if r.counts and not r.verdict.ok:
            return r.verdict.value
    return "serviced"


def leading_cause(report: UrlReport) -> str | None:
    causes = sorted(report.causes, key=lambda f: f.rank or 1_000)
    return causes[0].code if causes else None


def resume_keys(path: str) -> tuple[set, int]:
    """The url_key()s of the report records in a (possibly partial) JSON Lines output, and the
    byte length of its complete lines (a torn last line is to be cut off before appending)."""
    keys: set = set()
    good = 0
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break  # the run that wrote it was cut short mid-line
            good += len(line)
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and rec.get("type", "report") == "report" and isinstance(rec.get("url"), str):
                keys.add(url_key(rec["url"]))
    return keys, good


MAX_LINE = 8192  # characters in one URL line (as the non-streaming --from-file)


def read_lines(f, limit: int = MAX_LINE):
    """Lines of a text file, each read with a bound: a longer line is yielded as the marker
    ``(too long)`` (after skipping the rest of it), so one huge line cannot fill memory."""
    while True:
        line = f.readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith("\n"):
            while True:
                rest = f.readline(limit + 1)
                if not rest or rest.endswith("\n"):
                    break
            yield TOO_LONG
            continue
        yield line


TOO_LONG = "\0(too long)"


def iter_url_lines(lines: Iterable[str]):
    for ln in lines:
        s = ln.strip()
        if s and not s.startswith("#"):
            yield s


class _Politeness:
    """Per-host slots and a token bucket, shared by the workers."""

    def __init__(self, per_host: int | None, rate: float | None):
        self.per_host, self.rate = per_host, rate
        self.cond = threading.Condition()
        self.busy: dict = {}  # host:port -> URLs in flight (entries removed at zero: bounded)
        self.next_start = time.monotonic()

    def acquire(self, host: str, stop: threading.Event) -> bool:
        with self.cond:
            if self.per_host:
                while self.busy.get(host, 0) >= self.per_host:
                    if stop.is_set():
                        return False
                    self.cond.wait(0.2)
            self.busy[host] = self.busy.get(host, 0) + 1
            wait = 0.0
            if self.rate:
                now = time.monotonic()
                start = max(now, self.next_start)
                self.next_start = start + 1.0 / self.rate
                wait = start - now
        if wait > 0:
            stop.wait(wait)
        if stop.is_set():
            self.release(host)
            return False
        return True

    def release(self, host: str) -> None:
        with self.cond:
            n = self.busy.get(host, 1) - 1
            if n <= 0:
                self.busy.pop(host, None)
            else:
                self.busy[host] = n
            self.cond.notify_all()


def run_fleet(lines: Iterable[str], opts, fleet: FleetOptions, emit: Callable[[str, object], None],
              is_failing: Callable[[UrlReport], bool] = lambda r: False,
              progress: Callable[[Summary], None] | None = None) -> Summary:
    """Probe every URL of ``lines`` (``opts``: a ``probe.ProbeOptions``) and stream the results.

    ``emit(kind, value)`` is called in the caller's thread, in completion order, with
    ``("report", UrlReport)`` or ``("error", {"url", "error"})``; it must not keep the report.
    """
    from wsdiag.net.probe import probe as probe_urls

    # the fleet's concurrency is across URLs: each worker runs its URL's exchanges itself
    # (concurrency 0: no thread per URL), one after another
    per_url = replace(opts, concurrency=0)
    summary = Summary()
    n_workers = max(1, fleet.concurrency)
    todo: queue.Queue = queue.Queue(maxsize=n_workers * 2)
    done: queue.Queue = queue.Queue(maxsize=n_workers * 2)
    stop = threading.Event()
    polite = _Politeness(fleet.per_host, fleet.rate)

    def put(q: queue.Queue, item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def feeder() -> None:
        try:
            for url in iter_url_lines(lines):
                if stop.is_set():
                    return
                if url == TOO_LONG.strip():
                    if not put(done, ("bad", {"url": "(a line of the list)", "error": f"longer than {MAX_LINE} characters"})):
                        return
                    continue
                try:
                    target = parse_target(url)
                except BadURL as exc:
                    if not put(done, ("bad", {"url": url, "error": str(exc)})):
                        return
                    continue
                if fleet.skip and url_key(url) in fleet.skip:
                    put(done, ("resumed", None))
                    continue
                if not put(todo, (url, f"{target.host.lower()}:{target.port}")):
                    return
        except (OSError, UnicodeDecodeError) as exc:
            put(done, ("fatal", f"cannot read the URL list: {exc}"))
        finally:
            for _ in range(n_workers):
                put(todo, None)

    def worker() -> None:
        while not stop.is_set():
            try:
                item = todo.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is None:
                break
            url, host = item
            if not polite.acquire(host, stop):  # holds no slot when it fails
                break
            result: tuple
            try:
                result = ("report", probe_urls([url], per_url)[0])
            except Exception as exc:  # one URL's internal error must not end the fleet
                result = ("error", {"url": url, "error": f"{type(exc).__name__}: {exc}"})
            finally:
                polite.release(host)
            if not put(done, result):
                break
        put(done, ("worker-done", None))

    threads = [threading.Thread(target=feeder, name="wsdiag-fleet-feed", daemon=True)]
    threads += [threading.Thread(target=worker, name="wsdiag-fleet", daemon=True) for _ in range(n_workers)]
    for t in threads:
        t.start()
    live = n_workers
    last_progress = 0.0
    fatal = None
    try:
        while live and not stop.is_set():
            try:
                kind, value = done.get(timeout=0.5)
            except queue.Empty:
                kind = None
            if kind == "worker-done":
                live -= 1
            elif kind == "resumed":
                summary.resumed += 1
            elif kind == "fatal":
                fatal = value
                stop.set()
            elif kind == "bad":
                summary.bad_urls += 1
                emit("error", value)
            elif kind == "error":
                summary.errors += 1
                emit("error", value)
            elif kind == "report":
                report = value
                summary.urls += 1
                summary.ok += bool(report.ok)
                summary.failing += bool(is_failing(report))
                v = url_verdict(report)
                summary.verdicts[v] = summary.verdicts.get(v, 0) + 1
                cause = leading_cause(report)
                if cause:
                    summary.causes[cause] = summary.causes.get(cause, 0) + 1
                emit("report", report)
                del report, value
            if progress is not None and time.monotonic() - last_progress > 0.1:
                last_progress = time.monotonic()
                progress(summary)
    finally:
        stop.set()
    if fatal:
        raise OSError(fatal)
    return summary
