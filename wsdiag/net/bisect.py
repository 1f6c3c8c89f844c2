"""Run a handshake bisection against a real server (the I/O half of ``wsdiag.core.bisect``).

Each candidate is rendered with a fresh key and this URL's Host/Origin, sent through the
transport (one deadline per exchange), and judged by the core: it *works* when the verdict
is ``serviced``.  The number of exchanges is bounded by the core's search.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wsdiag.core.diagnose import judge
from wsdiag.core.findings import Finding, Verdict
from wsdiag.core.handshake import build_request, new_key, parse_target
from wsdiag.core.profiles import Profile
from wsdiag.net.transport import Settings, run_exchange

if TYPE_CHECKING:  # the search itself is imported only when profiles split (start-up of every probe)
    from wsdiag.core.bisect import Candidate, Result


def candidate_for(profile: Profile) -> Candidate:
    from wsdiag.core.bisect import candidate_of

    return candidate_of(profile.http_version, profile.headers)


def run_candidate(url: str, cand: Candidate, settings: Settings, origin: str | None = None,
                  extra_headers: tuple = ()) -> tuple[Verdict, str]:
    """Send one candidate request; (verdict, short detail)."""
    target = parse_target(url)
    upgrade = cand.header("Upgrade") is not None
    prof = Profile("bisect", "", "", cand.headers, cand.http_version, upgrade=upgrade)
    req = build_request(prof, target, new_key(), origin=origin, extra_headers=extra_headers)
    ex = run_exchange("bisect", target, req.raw, settings)
    j = judge(req, ex, "bisect")
    detail = j.verdict.value if j.status is None else f"{j.status} {j.verdict.value}"
    return j.verdict, detail


def run_bisect(url: str, good: Candidate, bad: Candidate, settings: Settings, *, origin: str | None = None,
               extra_headers: tuple = (), max_exchanges: int = 64) -> Result:
    from wsdiag.core.bisect import bisect

    def run(cand: Candidate) -> tuple[bool, str]:
        verdict, detail = run_candidate(url, cand, settings, origin, extra_headers)
        return verdict is Verdict.SERVICED, detail

    return bisect(good, bad, run, max_exchanges=max_exchanges)


def findings_of(result: Result, good_name: str, bad_name: str) -> list[Finding]:
    """The bisection's outcome as findings (WS850-WS853)."""
    base = {"good": good_name, "bad": bad_name, "exchanges": result.exchanges}
    if result.status == "found":
        return [Finding("WS850", {**base, "sentence": s, "hints": result.hints(),
                                  "minimal": [c.to_dict() for c in m]},
                        subject="bisect", confidence="certain")
                for s, m in zip(result.sentences(), result.minimal)]
    if result.status == "no-split":
        return [Finding("WS851", {**base, "good_verdict": "works" if result.good_works else "fails",
                                  "bad_verdict": "works" if result.bad_works else "fails"}, subject="bisect")]
    return [Finding("WS852", {**base, "status": result.status}, subject="bisect")]


AUTO_MAX_EXCHANGES = 24


def auto_bisect(report, settings: Settings, *, origin: str | None = None, extra_headers: tuple = (),
                max_exchanges: int = AUTO_MAX_EXCHANGES) -> list[Finding]:
    """When the report's counted profiles split (one serviced, one failing with an answer),
    bisect between them and add the outcome to the report's facts (``report.bisect`` keeps
    the steps).  Bounded by ``max_exchanges``; nothing happens when they do not split."""
    from wsdiag.core.profiles import PROFILES

    counted = [r for r in report.results if r.counts and r.profile in PROFILES and PROFILES[r.profile].upgrade]
    good = next((r for r in counted if r.verdict is Verdict.SERVICED), None)
    bad = next((r for r in counted if r.verdict not in (Verdict.SERVICED, Verdict.SILENT, Verdict.UNREACHABLE)), None)
    if good is None or bad is None:
        return []
    result = run_bisect(report.url, candidate_for(PROFILES[good.profile]), candidate_for(PROFILES[bad.profile]),
                        settings, origin=origin, extra_headers=extra_headers, max_exchanges=max_exchanges)
    found = findings_of(result, good.profile, bad.profile)
    report.bisect = {"good": good.profile, "bad": bad.profile, **result.to_dict(),
                     "findings": [f.to_dict() for f in found]}
    report.facts.extend(found)
    return found
