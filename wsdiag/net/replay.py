"""``wsdiag replay FILE --against URL``: resend a bundle's exact request bytes and compare.

Every saved exchange (profiles and controls) is sent again, byte for byte, to the host and
port of ``URL`` (the bytes keep their own request line and Host header: the same bytes, so
that a before/after comparison compares like with like).  The new answers are judged by the
core as in a live probe; every profile whose verdict or status changed gets a WS859 fact.
"""

from __future__ import annotations


from wsdiag.core.bundle import exchange_from, profile_from, request_from
from wsdiag.core.diagnose import build_report
from wsdiag.core.findings import Finding, UrlReport
from wsdiag.core.handshake import parse_target
from wsdiag.core.record import replace
from wsdiag.net.transport import Settings, run_exchange


def replay_against(doc: dict, before: list[UrlReport], url: str, settings: Settings) -> list[UrlReport]:
    target = parse_target(url)
    out: list[UrlReport] = []
    for u, old in zip(doc.get("urls") or [], before):
        there = replace(target, resource=u["path"])
        runs = []
        for run in u["runs"]:
            prof = profile_from(run["profile"])
            raw = exchange_from(run["exchange"]).request
            ex = run_exchange(prof.name, there, raw, settings)
            runs.append((prof, request_from(raw, prof.upgrade), ex))
        plain = bogus = None
        extra = []
        for c in u.get("controls") or []:
            saved = exchange_from(c["exchange"])
            raw = saved.request
            if not raw:
                continue
            res = _resource_of(raw) or u["path"]
            where = replace(target, resource=res)
            if c["name"] == "plain-get":
                plain = run_exchange("plain-get", where, raw, settings, watch=False)
            elif c["name"] == "no-such-path":
                bogus = (request_from(raw, True), run_exchange("no-such-path", where, raw, settings))
            else:
                extra.append((c["name"], c.get("description", ""), request_from(raw, True),
                              run_exchange(c["name"], where, raw, settings)))
        new = build_report(there.url, u["path"], runs, plain, bogus, extra)
        was = {r.profile: r for r in old.results}
        for r in new.results:
            prev = was.get(r.profile)
            if prev is None:
                continue
            if (prev.verdict, prev.status) != (r.verdict, r.status):
                new.facts.append(Finding("WS859", {
                    "subject": r.profile, "before": _label(prev), "after": _label(r),
                    "saved_url": u["url"]}, subject=r.profile))
        out.append(new)
    return out


def _label(r) -> str:
    return r.verdict.value if r.status is None else f"{r.status} {r.verdict.value}"


def _resource_of(raw: bytes) -> str | None:
    parts = raw.split(b"\r\n", 1)[0].split(b" ")
    return parts[1].decode("latin-1") if len(parts) == 3 else None
