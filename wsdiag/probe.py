"""Run a probe: every profile and control request for every URL, concurrently.

An I/O edge: it builds requests with the core, runs them through the transport (or the
websocket-client library for that profile), and hands the evidence to ``diagnose``.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable

from wsdiag.diagnose import build_report
from wsdiag.findings import Exchange, UrlReport
from wsdiag.handshake import build_plain_get, build_request, new_key, parse_target, sibling_resource
from wsdiag.profiles import PROFILES, Profile
from wsdiag.transport import Settings, run_exchange

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


def _jobs(url: str, opts: ProbeOptions):
    """The exchanges one URL needs, as (slot, callable) pairs; slots key the results."""
    target = parse_target(url)
    jobs: list[tuple[tuple, Callable[[], object]]] = []
    for profile in opts.profiles:
        if profile.driver == "websocket-client":
            from wsdiag.libclient import run_library_exchange

            def call(profile=profile):
                ex = run_library_exchange(
                    profile.name, target, opts.settings, origin=opts.origin,
                    subprotocols=opts.subprotocols, extra_headers=opts.extra_headers,
                )
                req = _library_request(ex, opts)
                return req, ex
        else:
            def call(profile=profile):
                req = build_request(
                    profile, target, new_key(), origin=opts.origin,
                    subprotocols=opts.subprotocols, extra_headers=opts.extra_headers,
                )
                return req, run_exchange(profile.name, target, req.raw, opts.settings)
        jobs.append((("profile", profile.name), call))
    if opts.controls:
        def plain():
            return None, run_exchange("plain-get", target, build_plain_get(target, extra_headers=opts.extra_headers), opts.settings, watch=False)

        def bogus():
            resource = sibling_resource(target.resource, NO_SUCH_PATH + os.urandom(4).hex())
            there = dataclasses.replace(target, resource=resource)
            req = build_request(PROFILES["minimal"], there, new_key(), extra_headers=opts.extra_headers)
            return req, run_exchange("no-such-path", there, req.raw, opts.settings)

        jobs.append((("control", "plain-get"), plain))
        jobs.append((("control", "no-such-path"), bogus))
    return target, jobs


def _library_request(ex: Exchange, opts: ProbeOptions):
    """Reconstruct the Request facts from the bytes websocket-client really sent."""
    from wsdiag.handshake import Request

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
    workers = max(1, min(opts.concurrency, sum(len(j) for _, _, j in plans) or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wsdiag-probe") as pool:
        futures = [(url, target, [(slot, pool.submit(fn)) for slot, fn in jobs]) for url, target, jobs in plans]
        for url, target, slots in futures:
            done = {slot: fut.result() for slot, fut in slots}
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
    return reports
