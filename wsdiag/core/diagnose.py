"""Evidence in, findings and verdicts out.

Rules this module keeps:

* Pure core: standard library and wsdiag's core only; no sockets, no printing.
* ``judge`` turns one recorded exchange into a verdict and that exchange's own findings.
* ``infer`` reads across profiles and control requests (a plain GET of the same path, an
  upgrade to a path that cannot exist) and ranks the likely causes, each with its fix.
  A cause is ``certain`` only when the evidence admits no other reading.
* Every input, however broken, yields a verdict: nothing here raises on odd bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wsdiag.core import codes
from wsdiag.core.deflate import negotiate
from wsdiag.core.findings import Control, Exchange, Finding, ProfileResult, UrlReport, Verdict
from wsdiag.core.handshake import (
    Request,
    ResponseHead,
    check_head_form,
    check_upgrade,
    content_length,
    find_head_end,
    looks_like_tls,
    parse_response_head,
    status_line_of,
)
from wsdiag.core.profiles import Profile
from wsdiag.core.record import Record
from wsdiag.core.versions import connection_window

if TYPE_CHECKING:  # the trace's stages are imported only when an exchange has a trace (start-up)
    from wsdiag.core.stages import StagePath

WERKZEUG_400 = b"The browser (or proxy) sent a request that this server could not understand"


class Judgement(Record):
    __slots__ = ("verdict", "status", "findings", "phase", "head")
    verdict: Verdict
    status: int | None
    findings: list[Finding]
    phase: str | None
    head: ResponseHead | None


def judge(request: Request | None, ex: Exchange, subject: str = "") -> Judgement:
    """One exchange -> verdict, HTTP status and the findings about that exchange alone."""
    found: list[Finding] = []
    head = parse_response_head(ex.response_head) if ex.response_head else None
    incomplete = ex.error_kind is not None and find_head_end(ex.response_head) is None
    if incomplete and (b"HTTP/".startswith(ex.response_head[:5]) or head is not None):
        # A head cut short (slow drip, EOF, reset, too large): the transport failure is the
        # finding, not the half status line.
        found.append(_transport_finding(ex))
        return _done(Verdict.UNREACHABLE, None, found, ex.error_phase, None, subject)

    if head is None and looks_like_tls(ex.response_head) and ex.url.startswith("ws://"):
        found.append(_transport_finding(ex, "tls-spoken-on-plain-url"))
        return _done(Verdict.UNREACHABLE, None, found, ex.error_phase or "response", None, subject)

    if head is None:
        if ex.response_head and ex.error_kind not in ("tls-spoken-on-plain-url", "response-head-too-large"):
            found.append(Finding("WS209", {"line": status_line_of(ex.response_head)}))
            return _done(Verdict.INVALID, None, found, "response", None, subject)
        if ex.error_kind:
            found.append(_transport_finding(ex))
            return _done(Verdict.UNREACHABLE, None, found, ex.error_phase, None, subject)
        found.append(Finding("WS110", {"received": 0}))
        return _done(Verdict.UNREACHABLE, None, found, "response", None, subject)

    found.extend(check_head_form(head))
    status = head.status

    if status == 101:
        return _judge_101(request, ex, head, found, subject)

    length = content_length(head)
    if length and len(ex.body) < length and length <= 4096:
        found.append(Finding("WS210", {"length": length, "received": len(ex.body)}))
    evidence = {"status": status, "reason": head.reason, "body": _excerpt(ex.body)}
    if ex.library_error:
        evidence["library_error"] = ex.library_error
    upgrade_requested = request is None or request.upgrade
    if 200 <= status < 300:
        if upgrade_requested:
            found.append(Finding("WS202", {**evidence, "server": head.get("Server")}))
        return _done(Verdict.NOT_UPGRADED, status, found, None, head, subject)
    if 300 <= status < 400:
        found.append(Finding("WS203", {**evidence, "location": head.get("Location")}))
    elif status in (401, 403, 407):
        found.append(Finding("WS206", evidence))
    elif status == 402:
        found.append(Finding("WS204", {**evidence, "request_version": request.http_version if request else None}))
    elif status == 426:
        found.append(Finding("WS205", {**evidence, "versions": head.get("Sec-WebSocket-Version")}))
    elif status == 429:
        found.append(Finding("WS207", {**evidence, "retry_after": head.get("Retry-After")}))
    elif status in (502, 503, 504):
        found.append(Finding("WS208", evidence))
    else:
        found.append(Finding("WS201", evidence))
    return _done(Verdict.REFUSED, status, found, None, head, subject)


def _judge_101(request, ex: Exchange, head: ResponseHead, found: list[Finding], subject: str) -> Judgement:
    if request is not None:
        found.extend(check_upgrade(request, head))
        # RFC 7692: the server's answer to a permessage-deflate offer, each defect its own finding.
        offer = [v for n, v in request.headers if n.lower() == "sec-websocket-extensions"]
        neg = negotiate(offer, head.get_all("Sec-WebSocket-Extensions"))
        found.extend(Finding(p.code, dict(p.evidence)) for p in neg.problems)
    length = content_length(head)
    if length:
        found.append(Finding("WS312", {"length": length}))
    invalid = any(f.severity is codes.Severity.ERROR for f in found)
    if ex.library_error:
        found.append(Finding("WS406", {"problem": "the websocket-client library rejected the handshake", "library_error": ex.library_error}))
        return _done(Verdict.INVALID, 101, found, "handshake", head, subject)
    after = ex.after
    if after is None:
        if ex.error_kind:
            found.append(_transport_finding(ex))
        return _done(Verdict.INVALID if invalid else Verdict.UNREACHABLE, 101, found, "after-upgrade", head, subject)
    for ev in after.events:
        if ev.get("event") == "invalid" and ev.get("code") in codes.REGISTRY:
            found.append(Finding(ev["code"], {k: v for k, v in ev.items() if k not in ("event", "code")}))
        elif ev.get("event") == "invalid":
            found.append(Finding("WS406", {"problem": ev.get("detail", "invalid frame")}))
        elif ev.get("event") == "note" and ev.get("code") in codes.REGISTRY:
            # recorded after the answer (closing handshake, later frames): a finding, not the verdict
            found.append(Finding(ev["code"], {k: v for k, v in ev.items() if k not in ("event", "code")}))
    if after.outcome == "invalid" or invalid:
        return _done(Verdict.INVALID, 101, found, "after-upgrade" if not invalid else "handshake", head, subject)
    if after.outcome in ("pong", "data"):
        return _done(Verdict.SERVICED, 101, found, None, head, subject)
    if after.outcome == "silent":
        found.append(Finding("WS404", {"window_ms": after.window_ms}))
        return _done(Verdict.SILENT, 101, found, None, head, subject)
    close_ms = after.first_event_ms
    ev = {"close_ms": None if close_ms is None else round(close_ms, 1)}
    if after.outcome == "close":
        close = next((e for e in after.events if e.get("event") == "close"), {})
        code = close.get("close_code")
        found.append(Finding("WS401", {**ev, "close_code": code if code is not None else "none (1005)", "reason": close.get("reason", "")}))
        if code is None:
            found.append(Finding("WS411", {}))
    elif after.outcome == "reset":
        found.append(Finding("WS403", ev))
    else:
        found.append(Finding("WS402", ev))
    return _done(Verdict.ABANDONED, 101, found, None, head, subject)


def _done(verdict, status, found, phase, head, subject) -> Judgement:
    for f in found:
        f.subject = f.subject or subject
    return Judgement(verdict, status, found, phase, head)


def _transport_finding(ex: Exchange, kind: str | None = None) -> Finding:
    code = codes.BY_NAME.get(kind or ex.error_kind or "", codes.BY_NAME["reset-before-response"])
    host, port = _host_port(ex.url)
    return Finding(
        code.code,
        {
            "host": host,
            "port": port,
            "phase": ex.error_phase,
            "detail": ex.error_detail,
            "received": ex.received_before_error,
            "limit": 65536,
            "timeout_s": round(ex.timings.get("total_ms", 0) / 1000.0, 2),
        },
    )


def _host_port(url: str) -> tuple[str, str]:
    rest = url.split("://", 1)[-1].split("/", 1)[0]
    if rest.startswith("["):
        host, _, port = rest[1:].partition("]")
        return host, port.lstrip(":") or "?"
    host, _, port = rest.rpartition(":")
    return (host, port) if host else (rest, "?")


def _excerpt(body: bytes, n: int = 200) -> str:
    return body[:n].decode("utf-8", "replace")


# -- across profiles and controls ------------------------------------------------------


def build_report(
    url: str,
    path: str,
    runs: list[tuple[Profile, Request | None, Exchange]],
    plain_get: Exchange | None,
    bogus: tuple[Request, Exchange] | None,
    extra: list[tuple[str, str, Request | None, Exchange]] | None = None,
) -> UrlReport:
    """Judge every exchange, then infer the causes across them.

    ``extra`` holds further controls as (name, description, request, exchange): the path's
    slash variant (``slash-variant``) and a redirect's target (``location``).
    """
    results: list[ProfileResult] = []
    for profile, request, ex in runs:
        j = judge(request, ex, profile.name)
        results.append(
            ProfileResult(
                profile.name, j.verdict, j.status, j.findings, ex, j.phase,
                counts=profile.expect_service,
                connection=(_sent_header(request, "Connection") if request else "") or (profile.connection or ""),
                http_version=profile.http_version,
                stages=_stage_path(ex.trace) if ex.trace else None,
            )
        )
    controls: list[Control] = []
    if plain_get is not None:
        head = parse_response_head(plain_get.response_head) if plain_get.response_head else None
        controls.append(
            Control(
                "plain-get",
                "the same URL as a plain GET, without upgrade headers",
                plain_get,
                head.status if head else None,
                None,
                _excerpt(plain_get.body),
                head.get("Server") if head else None,
            )
        )
    if bogus is not None:
        req, ex = bogus
        j = judge(req, ex, "no-such-path")
        controls.append(
            Control(
                "no-such-path",
                "an upgrade to a path that cannot exist",
                ex,
                j.status,
                j.verdict,
                _excerpt(ex.body),
                j.head.get("Server") if j.head else None,
            )
        )
    for name, description, xreq, xex in extra or ():
        j = judge(xreq, xex, name)
        controls.append(Control(name, description, xex, j.status, j.verdict, _excerpt(xex.body),
                                j.head.get("Server") if j.head else None))
    causes, facts = infer(path, results, controls, url=url)
    return UrlReport(url, results, controls, causes, facts)


def infer(path: str, results: list[ProfileResult], controls: list[Control], url: str = "URL") -> tuple[list[Finding], list[Finding]]:
    """Cross-profile, cross-request inference: ranked causes, and supporting facts."""
    from wsdiag.core import refusals

    counted = [r for r in results if r.counts]
    get = next((c for c in controls if c.name == "plain-get"), None)
    bogus = next((c for c in controls if c.name == "no-such-path"), None)
    slash = next((c for c in controls if c.name == "slash-variant"), None)
    location = next((c for c in controls if c.name == "location"), None)
    ident = refusals.identification(results, controls)
    causes: list[Finding] = []
    facts: list[Finding] = []

    abandoned = [r for r in counted if r.verdict is Verdict.ABANDONED]
    serviced = [r for r in counted if r.verdict is Verdict.SERVICED]
    get_status = get.status if get else None
    get_body = get.exchange.body if get else b""
    werkzeug_400 = get_status == 400 and WERKZEUG_400 in get_body
    bogus_abandoned = bogus is not None and bogus.verdict is Verdict.ABANDONED
    bogus_serviced = bogus is not None and bogus.verdict is Verdict.SERVICED
    base = {"path": path, "plain_get_status": get_status}

    gws = ident.get("websocket")
    if gws is not None and gws.name == "gevent-websocket" and gws.strong:
        facts.append(Finding("WS705", {"evidence": "; ".join(gws.reasons)}, subject="url", confidence="likely"))
    answered_any = any(r.exchange.response_head for r in results) or any(c.exchange.response_head for c in controls)
    facts.extend(refusals.server_facts(ident, url, answered_any))
    if serviced and get_status == 400 and WERKZEUG_400 in get_body:
        facts.append(Finding("WS225", {"path": path}, "url", "likely"))

    # Clients split by the Connection header they send: name the release window.
    if abandoned and serviced:
        failing = sorted({r.connection for r in abandoned})
        working = sorted({r.connection for r in serviced})
        if not set(failing) & set(working):
            window = connection_window(failing, working, route_is_websocket=werkzeug_400)
            causes.append(
                Finding(
                    "WS701",
                    {
                        **base,
                        "failing": ", ".join(r.profile for r in abandoned),
                        "working": ", ".join(r.profile for r in serviced),
                        "failing_connection": failing,
                        "working_connection": working,
                        "window": window.text,
                        "werkzeug": window.releases,
                    },
                    subject="url",
                    confidence="likely",
                )
            )

    if abandoned:
        ev = {
            **base,
            "profiles": [r.profile for r in abandoned],
            "close_ms": [_close_ms(r) for r in abandoned],
            "no_such_path": bogus.verdict.value if bogus and bogus.verdict else None,
        }
        hidden = refusals.hidden_causes(abandoned, get, slash, base)
        if hidden:
            causes.extend(hidden)
        elif get_status is not None and 200 <= get_status < 300 and not werkzeug_400:
            causes.append(Finding("WS601", ev, "url", "likely"))
        elif werkzeug_400:
            causes.append(Finding("WS603", ev, "url", "likely"))
            # Same black-box picture on Werkzeug 1.0, where websocket=True rules never match.
            causes.append(Finding("WS706", ev, "url", "possible"))
        elif get_status == 404:
            causes.append(Finding("WS602", ev, "url", "likely" if not bogus_abandoned else "certain"))
        elif get_status is not None and 300 <= get_status < 400:
            causes.append(Finding("WS605", {**ev, "status": get_status, "location": _header(get, "Location")}, "url", "likely"))
        elif get_status in (401, 403):
            causes.append(Finding("WS606", {**ev, "status": get_status}, "url", "likely"))
        elif get_status is not None and get_status >= 500:
            causes.append(Finding("WS607", {**ev, "status": get_status}, "url", "likely"))
        else:
            causes.append(Finding("WS608", ev, "url", "possible"))

    if counted and serviced and len(serviced) == len(counted) and bogus_serviced:
        causes.append(Finding("WS604", {**base, "control_path": bogus.exchange.url if bogus else "?"}, "url", "likely"))

    unreachable = [r for r in counted if r.verdict is Verdict.UNREACHABLE and r.findings]
    if counted and len(unreachable) == len(counted):
        first = unreachable[0].findings[0]
        if all(r.findings[0].code == first.code for r in unreachable):
            causes.append(Finding(first.code, dict(first.evidence), "url", "certain"))

    upgraded = [r for r in counted if r.status == 101]
    answered = [r for r in counted if r.status is not None]
    refused = [r for r in counted if r.verdict is Verdict.REFUSED]
    causes.extend(refusals.stall_cause(counted, controls))
    named = refusals.refusal_causes(refused, ident, location, path, slash) if refused else []
    causes.extend(named)
    if answered and not upgraded and not named:
        causes.extend(_not_upgraded_causes(answered, get, base))
    causes = refusals.consistent(causes, ident, any_101=bool(upgraded) or (bogus is not None and bogus.status == 101))
    refusals.calibrate(causes)

    # A second 101 inside the frame stream: two WebSocket servers answered (FM-11). Whatever the
    # app's trace says about the view ending is a consequence of the client failing.
    doubled = [r for r in counted if any(f.code == "WS409" and str(f.evidence.get("line", "")).startswith("HTTP/1.")
                                         and " 101" in str(f.evidence.get("line", ""))[:13] for f in r.findings)]
    if doubled:
        line = next(str(f.evidence["line"]) for f in doubled[0].findings if f.code == "WS409")
        causes.insert(0, Finding("WS707", {**base, "line": line, "profiles": ", ".join(r.profile for r in doubled)},
                                 "url", "likely"))
        causes = [c for c in causes if not (c.code.startswith("WS6") or c.code == "WS706")]

    traced = _trace_causes(path, counted)
    if doubled:
        traced = [c for c in traced if c.code != "WS603"]
    if traced:
        # The app's own trace is certain; black-box guesses about the app give way to it.
        causes = [c for c in causes if not (c.code.startswith("WS6") or c.code == "WS706")] + traced

    ranked = _rank(causes)
    for i, f in enumerate(ranked, 1):
        f.rank = i
    refusals.mark_undecided(ranked, url)
    return ranked, facts


def _stage_path(trace) -> StagePath:
    from wsdiag.core.stages import StagePath

    return StagePath.from_events(trace)


def _trace_causes(path: str, counted: list[ProfileResult]) -> list[Finding]:
    """Certain causes from the app's stage traces (one finding per code, all profiles named)."""
    by_code: dict[str, Finding] = {}

    def add(code: str, r: ProfileResult, sp: StagePath, **extra) -> None:
        f = by_code.get(code)
        if f is None:
            from wsdiag.core.stages import render_path

            ev = {"path": sp.path or path, "stage_path": render_path(sp), "profiles": [], "hidden_status": sp.hidden_status,
                  "source": "trace", **extra}
            f = by_code[code] = Finding(code, ev, "url", "certain")
        f.evidence["profiles"].append(r.profile)

    for r in counted:
        sp = r.stages
        if sp is None:
            continue
        stop = sp.stopping_hook
        if sp.served_by and sp.served_by.startswith("hook:"):
            add("WS604", r, sp, control_path=sp.path, hook=sp.served_by[5:])
        elif r.verdict is Verdict.SERVICED:
            continue
        elif stop is not None and stop.outcome == "raised":
            add("WS607", r, sp, status=sp.status, where=f"before_request {stop.label}", exception=stop.exception)
        elif stop is not None:
            add("WS606", r, sp, status=sp.status, hook=stop.label)
        elif sp.routing_ok is False:
            exc = sp.routing_exception
            if exc == "WebsocketMismatch" and sp.detected_websocket is False:
                werkzeug = _traced_version(r.exchange.trace, "werkzeug")
                code = "WS706" if werkzeug and werkzeug.split(".")[0] in ("0", "1") else "WS701"
                add(code, r, sp, werkzeug=werkzeug, failing=r.profile, working="?", window="")
            elif exc == "WebsocketMismatch":
                add("WS601", r, sp, rule=sp.other_rule, endpoint=sp.other_endpoint)
            elif exc == "NotFound":
                add("WS602", r, sp)
            elif exc == "RequestRedirect":
                add("WS605", r, sp, status=sp.status or 308, location=sp.new_url)
            elif exc == "MethodNotAllowed":
                add("WS609", r, sp, valid_methods=sp.valid_methods)
            else:
                add("WS608", r, sp, routing_exception=exc)
        elif sp.app_exception and not sp.routing_dispatched and sp.view_outcome is None:
            # raised before Flask's routing, by a WSGI middleware (FM-16: flask-sockets' own url_map)
            mod = sp.app_exception_in or "?"
            if sp.app_exception == "WebsocketMismatch" and mod.split(".")[0] == "flask_sockets":
                add("WS503", r, sp, route=sp.path or path, exception=sp.app_exception, raised_in=mod,
                    werkzeug=_traced_version(r.exchange.trace, "werkzeug"))
            else:
                add("WS607", r, sp, status=sp.status or 500, where=f"WSGI middleware {mod}", exception=sp.app_exception)
        elif sp.view_outcome == "raised":
            add("WS607", r, sp, status=sp.status, where=f"view {sp.view}", exception=sp.view_exception)
        elif sp.view_ran and not sp.socket_served:
            add("WS603", r, sp, view=sp.view, view_ms=sp.view_ms)
    for f in by_code.values():
        f.evidence["failing"] = ", ".join(f.evidence["profiles"])
    return list(by_code.values())


def _traced_version(events: list[dict] | None, name: str) -> str | None:
    for ev in events or []:
        if isinstance(ev, dict) and ev.get("stage") == "request":
            return ev.get(name)
    return None


def _not_upgraded_causes(answered: list[ProfileResult], get: Control | None, base: dict) -> list[Finding]:
    """No counted profile got a 101: a proxy in the way, or a server that cannot upgrade."""
    statuses = sorted({r.status for r in answered if r.status is not None})
    server = next((_header_of(r.exchange, "Server") for r in answered if _header_of(r.exchange, "Server")), None)
    ev = {**base, "statuses": statuses, "server": server, "server_hint": f" (Server: {server})" if server else ""}
    if statuses == [402] and all(r.http_version == "HTTP/1.1" for r in answered):
        return [Finding("WS704", ev, "url", "certain")]
    # Only the answers a Flask app gives when it gets no socket: the view's own answer (2xx),
    # Werkzeug's 400, or a 500 from indexing environ["wsgi.websocket"].
    # A 1xx interim answer (100 Continue, 103 Early Hints) says nothing about WebSocket support.
    if not all(200 <= s < 300 or s in (400, 500) for s in statuses):
        return []
    get_status = get.status if get else None
    get_body = get.exchange.body[:512] if get else b""
    same_as_get = get_status is not None and all(
        r.status == get_status and r.exchange.body[:512] == get_body for r in answered
    )
    if same_as_get:
        # The app cannot tell the upgrade from a plain GET: the upgrade headers never reached it.
        return [Finding("WS703", ev, "url", "likely"), Finding("WS702", ev, "url", "possible")]
    out = [Finding("WS702", ev, "url", "likely")]
    visible_mismatch = [r.profile for r in answered if r.status == 400 and WERKZEUG_400 in r.exchange.body]
    if visible_mismatch and get_status is not None and 200 <= get_status < 300:
        out.append(Finding("WS601", {**base, "profiles": visible_mismatch}, "url", "likely"))
    return out


_ORDER = {"WS707": 0, "WS726": 0, "WS204": 0, "WS220": 0, "WS221": 0, "WS222": 0, "WS223": 0, "WS227": 0, "WS224": 0, "WS226": 0, "WS704": 0, "WS703": 1, "WS701": 2, "WS702": 3, "WS601": 4}


def _rank(causes: list[Finding]) -> list[Finding]:
    conf = {"certain": 0, "likely": 1, "possible": 2}
    return sorted(causes, key=lambda f: (-f.severity.rank, _ORDER.get(f.code, 9), conf.get(f.confidence, 3)))


def _sent_header(request: Request, name: str) -> str:
    low = name.lower()
    return next((v for n, v in request.headers if n.lower() == low), "")


def _close_ms(r: ProfileResult):
    a = r.exchange.after
    return None if a is None or a.first_event_ms is None else round(a.first_event_ms, 1)


def _header(control: Control | None, name: str) -> str | None:
    return _header_of(control.exchange, name) if control else None


def _header_of(ex: Exchange, name: str) -> str | None:
    head = parse_response_head(ex.response_head) if ex.response_head else None
    return head.get(name) if head else None


__all__ = ["judge", "build_report", "infer", "Judgement"]
