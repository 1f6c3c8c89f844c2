"""Run a probe: every profile and control request for every URL, concurrently.

An I/O edge: it builds requests with the core, runs them through the transport (or the
websocket-client library for that profile), and hands the evidence to ``diagnose``.
"""

from __future__ import annotations

import os
import threading
from typing import Callable, Iterable

from wsdiag.core.diagnose import build_report
from wsdiag.core.findings import Exchange, UrlReport
from wsdiag.core.handshake import build_plain_get, build_request, new_key, parse_target, sibling_resource
from wsdiag.core.profiles import PROFILES, Profile
from wsdiag.core.record import Factory, Record, replace
from wsdiag.net.transport import Settings, run_exchange

NO_SUCH_PATH = "wsdiag-no-such-path-"


class ProbeOptions(Record):
    __slots__ = (
        "profiles", "settings", "origin", "subprotocols", "extra_headers", "controls", "concurrency",
        "trace", "socketio", "socketio_forced", "hold",
    )
    _defaults = {
        "settings": Factory(Settings), "origin": None, "subprotocols": (), "extra_headers": (),
        "controls": True, "concurrency": 16, "trace": None, "socketio": None, "socketio_forced": False,
        "hold": 0.0,
    }
    profiles: list[Profile]
    settings: Settings
    origin: str | None
    subprotocols: tuple[str, ...]
    extra_headers: tuple[tuple[str, str], ...]
    controls: bool
    concurrency: int  # exchanges in flight; 0: run them in the calling thread, one after another
    # (trace URL, token) of an app instrumented with wsdiag.flaskapp.trace: requests are
    # marked with X-Wsdiag-Probe and each exchange's trace is fetched after it.
    trace: tuple[str, str] | None
    # Socket.IO mode (wsdiag.net.socketio): options, and whether --socketio forces it for every URL
    socketio: object
    socketio_forced: bool
    # --hold SECONDS: after the probe, hold an idle (and a pinging) session on upgraded URLs
    hold: float




def _traced(opts: ProbeOptions, run: Callable[[tuple], Exchange]) -> Exchange:
    """Run an exchange with a probe id header when tracing, then fetch its trace."""
    if opts.trace is None:
        return run(opts.extra_headers)
    from wsdiag.core.stages import PROBE_HEADER

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
            there = replace(target, resource=resource)
            box = {}

            def send(headers):
                box["req"] = build_request(PROFILES["minimal"], there, new_key(), extra_headers=headers)
                return run_exchange("no-such-path", there, box["req"].raw, opts.settings)

            ex = _traced(opts, send)
            return box["req"], ex

        jobs.append((("control", "plain-get"), plain))
        jobs.append((("control", "no-such-path"), bogus))
        variant = slash_variant(target.resource)
        if variant is not None:
            def slashed(variant=variant):
                there = replace(target, resource=variant)
                req = build_request(PROFILES["minimal"], there, new_key(), extra_headers=opts.extra_headers)
                return req, run_exchange("slash-variant", there, req.raw, opts.settings)

            jobs.append((("control", "slash-variant"), slashed))
    return target, jobs


def add_hold(report: UrlReport, target, opts: ProbeOptions) -> None:
    """Hold sessions on a URL that upgrades; the finding joins the report's causes (or facts)."""
    if not any(r.status == 101 for r in report.results if r.counts):
        return
    from wsdiag.core.holding import hold_findings
    from wsdiag.net.hold import hold_pair

    idle, pinged = hold_pair(target, opts.settings, opts.hold, opts.extra_headers)
    stack = next((f for f in report.facts if f.code == "WS720"), None)
    proxy = stack.evidence.get("layers", {}).get("proxy") if stack else None
    for f in hold_findings(idle, pinged, proxy):
        if f.severity.value == "info":
            report.facts.append(f)
        else:
            report.causes.append(f)
    for i, f in enumerate(report.causes, 1):
        f.rank = i


def slash_variant(resource: str) -> str | None:
    """``/ws`` -> ``/ws/`` and ``/ws/`` -> ``/ws`` (query kept); None for the root."""
    path, sep, query = resource.partition("?")
    if path in ("", "/"):
        return None
    other = path[:-1] if path.endswith("/") else path + "/"
    return other + sep + query


def follow_location(target, runs, opts: ProbeOptions):
    """One bounded hop: upgrade to a redirect's Location when it names the same host and port."""
    from wsdiag.core.handshake import BadURL, parse_response_head

    for profile, _req, ex in runs:
        head = parse_response_head(ex.response_head) if ex.response_head else None
        if not profile.expect_service or head is None or not (300 <= head.status < 400):
            continue
        location = head.get("Location") or ""
        if location.startswith("/"):
            there = replace(target, resource=location)
        else:
            try:
                there = parse_target(location)
            except BadURL:
                return None
            if (there.host.lower(), there.port, there.secure) != (target.host.lower(), target.port, target.secure):
                return None  # another host: wsdiag sends traffic only where it was told to
        req = build_request(PROFILES["minimal"], there, new_key(), extra_headers=opts.extra_headers)
        return ("location", f"the redirect target {there.url}", req, run_exchange("location", there, req.raw, opts.settings))
    return None


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

    URLs are validated before any traffic is sent (``BadURL`` propagates).  Socket.IO URLs
    (path ``/socket.io/``, an ``EIO=`` query, or ``--socketio``) go to wsdiag.net.socketio.
    """
    urls = list(urls)
    forced = getattr(opts, "socketio_forced", False)
    # a substring pre-check keeps the Engine.IO modules out of a plain probe's start-up
    if forced or any("socket.io" in u or "EIO=" in u for u in urls):
        from wsdiag.core.engineio import is_socketio_url

        if not forced and not any(is_socketio_url(parse_target(u).resource) for u in urls):
            return _probe_websocket(urls, opts, on_report)
        from wsdiag.net.socketio import probe_with_socketio  # only when a URL needs it (start-up)

        return probe_with_socketio(urls, opts, on_report, _probe_websocket)
    return _probe_websocket(urls, opts, on_report)


def _probe_websocket(urls: Iterable[str], opts: ProbeOptions, on_report: Callable[[UrlReport], None] | None = None) -> list[UrlReport]:
    """The plain WebSocket probe of ``urls`` (every profile and control)."""
    if (len(opts.profiles) > 1 or opts.controls) and not opts.settings.idle:
        # later exchanges to the same server could show a stall that a session's close would race
        from wsdiag.net.session import IDLE_BEFORE_CLOSE

        opts = replace(opts, settings=replace(opts.settings, idle=IDLE_BEFORE_CLOSE))
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

    if opts.concurrency == 0:  # inline in the caller's thread (wsdiag.net.fleet: one URL per fleet worker)
        workers: list = []
        worker()
    else:
        workers = [threading.Thread(target=worker, name="wsdiag-probe", daemon=True)
                   for _ in range(max(1, min(opts.concurrency, len(flat) or 1)))]
    for w in workers:
        w.start()
    k = 0
    for _url, target, jobs in plans:
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
        extra = []
        slashed = done.get(("control", "slash-variant"))
        if slashed is not None:
            extra.append(("slash-variant", f"an upgrade to {slashed[1].url} (the path with the trailing slash toggled)", *slashed))
        if opts.controls:
            hop = follow_location(target, runs, opts)
            if hop is not None:
                extra.append(hop)
        report = build_report(
            target.url, target.resource, runs,
            plain[1] if plain else None,
            bogus if bogus else None,
            extra,
        )
        if opts.hold > 0:
            add_hold(report, target, opts)
        reports.append(report)
        if on_report is not None:
            on_report(report)
    for w in workers:
        w.join()
    return reports
