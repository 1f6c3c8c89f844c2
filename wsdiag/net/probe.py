"""Run a probe: every profile and control request for every URL, concurrently.

An I/O edge: it builds requests with the core, runs them through the transport (or the
websocket-client library for that profile), and hands the evidence to ``diagnose``.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterable

from wsdiag.core.diagnose import build_report
from wsdiag.core.findings import Exchange, UrlReport
from wsdiag.core.handshake import build_plain_get, build_request, new_key, parse_target, sibling_resource
from wsdiag.core.profiles import PROFILES, Profile
from wsdiag.core.stages import PROBE_HEADER
from wsdiag.net.transport import Settings, run_exchange

NO_SUCH_PATH = "wsdiag-no-such-path-"


@dataclass
class ProbeOptions:
    profiles: list[Profile]
    settings: Settings = field(default_factory=Settings)
    origin: str | None = None
    subprotocols: tuple[str, ...] = ()
    extra_headers: tuple[tuple[str, str], ...] = ()
    controls: bool = True
    concurrency: int = 16
    # (trace URL, token) of an app instrumented with wsdiag.flaskapp.trace: requests are
    # marked with X-Wsdiag-Probe and each exchange's trace is fetched after it.
    trace: tuple[str, str] | None = None




def _traced(opts: ProbeOptions, run: Callable[[tuple], Exchange]) -> Exchange:
    """Run an exchange with a probe id header when tracing, then fetch its trace."""
    if opts.trace is None:
        return run(opts.extra_headers)
    probe_id = os.urandom(8).hex()
    ex = run(opts.extra_headers + ((PROBE_HEADER, probe_id),))
    ex.probe_id = probe_id
    from wsdiag.net.traceclient import fetch_trace

    ex.trace = fetch_trace(opts.trace[0], opts.trace[1], probe_id, timeout=1.5)
    return ex


def _jobs(url: str, opts: ProbeOptions):
    """The exchanges one URL needs, as (slot, callable) pairs; slots key the results."""
    target = parse_target(url)
    jobs: list[tuple[tuple, Callable[[], object]]] = []
    for profile in opts.profiles:
        if profile.driver == "websocket-client":
            from wsdiag.net.libclient import run_library_exchange

            def call(profile=profile):
                ex = _traced(opts, lambda headers: run_library_exchange(
                    profile.name, target, opts.settings, origin=opts.origin,
                    subprotocols=opts.subprotocols, extra_headers=headers,
                ))
                return _library_request(ex, opts), ex
        else:
            def call(profile=profile):
                box = {}

                def send(headers):
                    box["req"] = build_request(
                        profile, target, new_key(), origin=opts.origin,
                        subprotocols=opts.subprotocols, extra_headers=headers,
                    )
                    return run_exchange(profile.name, target, box["req"].raw, opts.settings)

                ex = _traced(opts, send)
                return box["req"], ex
        jobs.append((("profile", profile.name), call))
    if opts.controls:
        def plain():
            return None, run_exchange("plain-get", target, build_plain_get(target, extra_headers=opts.extra_headers), opts.settings, watch=False)

        def bogus():
            resource = sibling_resource(target.resource, NO_SUCH_PATH + os.urandom(4).hex())
            there = dataclasses.replace(target, resource=resource)
            box = {}

            def send(headers):
                box["req"] = build_request(PROFILES["minimal"], there, new_key(), extra_headers=headers)
                return run_exchange("no-such-path", there, box["req"].raw, opts.settings)

            ex = _traced(opts, send)
            return box["req"], ex

        jobs.append((("control", "plain-get"), plain))
        jobs.append((("control", "no-such-path"), bogus))
    return target, jobs


def _library_request(ex: Exchange, opts: ProbeOptions):
    """Reconstruct the Request facts from the bytes websocket-client really sent."""
    from wsdiag.core.handshake import Request

    text = ex.request.decode("latin-1")
    lines = [ln for ln in text.split("\r\n")[1:] if ln]
    headers = tuple((n.strip(), v.strip()) for n, _, v in (ln.partition(":") for ln in lines))
    get = {n.lower(): v for n, v in headers}
    return Request(
        raw=ex.request,
        key=get.get("sec-websocket-key"),
        offered_protocols=tuple(t.strip() for t in get.get("sec-websocket-protocol", "").split(",") if t.strip()),
        offered_extensions=tuple(
            t.split(";")[0].strip().lower() for t in get.get("sec-websocket-extensions", "").split(",") if t.strip()
        ),
        headers=headers,
        http_version="HTTP/1.1",
        upgrade=True,
    )


def probe(urls: Iterable[str], opts: ProbeOptions, on_report: Callable[[UrlReport], None] | None = None) -> list[UrlReport]:
    """Probe every URL (all exchanges concurrently); reports come back in URL order.

    URLs are validated before any traffic is sent (``BadURL`` propagates).
    """
    plans = [(url, *_jobs(url, opts)) for url in urls]
    reports: list[UrlReport] = []
    flat = [fn for _, _, jobs in plans for _, fn in jobs]
    results: list = [None] * len(flat)
    done_events = [threading.Event() for _ in flat]
    cursor = iter(range(len(flat)))
    lock = threading.Lock()

    def worker() -> None:  # a minimal pool: concurrent.futures costs ~3.5 ms of imports (logging)
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                return
            try:
                results[i] = (True, flat[i]())
            except BaseException as exc:  # re-raised in the caller's thread, as Future.result() does
                results[i] = (False, exc)
            done_events[i].set()

    workers = [threading.Thread(target=worker, name="wsdiag-probe", daemon=True)
               for _ in range(max(1, min(opts.concurrency, len(flat) or 1)))]
    for w in workers:
        w.start()
    k = 0
    for url, target, jobs in plans:
        done = {}
        for slot, _ in jobs:
            done_events[k].wait()
            ok, value = results[k]
            if not ok:
                raise value
            done[slot] = value
            k += 1
        runs = []
        for profile in opts.profiles:
            req, ex = done[("profile", profile.name)]
            runs.append((profile, req, ex))
        plain = done.get(("control", "plain-get"))
        bogus = done.get(("control", "no-such-path"))
        report = build_report(
            target.url, target.resource, runs,
            plain[1] if plain else None,
            bogus if bogus else None,
        )
        reports.append(report)
        if on_report is not None:
            on_report(report)
    for w in workers:
        w.join()
    return reports
