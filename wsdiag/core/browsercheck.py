"""Set a real browser's outcome beside the verdict for the profile that models it.

Pure core: standard library only.  Input: a browser run as plain data (the dict form of
``wsdiag.net.browser.BrowserRun``) and the report for the same URL.  Output: findings:

* WS855 the browser's outcome and its profile's verdict disagree: the profile is stale;
  the evidence lists every header in which the browser's real request differs;
* WS856 they agree, but the browser's request differs from the profile (informational);
* WS857 the browser could not be run;
* WS858 the browser's console logged an error while opening the socket.
"""

from __future__ import annotations

import re
from typing import Any

from wsdiag.core.bisect import Change, candidate_of, differences, parse_request_head
from wsdiag.core.findings import Finding, UrlReport, Verdict
from wsdiag.core.profiles import PROFILES

PROFILE_OF = {"chromium": "chrome", "firefox": "firefox"}
BROWSER_OK = ("served", "held-open")
PROFILE_OK = (Verdict.SERVICED, Verdict.SILENT)
_DIGITS = re.compile(r"\d+")


def header_differences(run: dict[str, Any], profile_name: str) -> list[Change]:
    """Changes from the profile's request to the browser's real one (run-dependent values,
    User-Agent version digits and headers the protocol cannot report are left out)."""
    raw = (run.get("handshake") or {}).get("request")
    if not raw:
        return []
    browser = parse_request_head(raw.encode("latin-1", "replace"))
    prof = PROFILES[profile_name]
    skip = {h.lower() for h in (run.get("handshake") or {}).get("unreliable") or ()}
    if skip:
        browser = candidate_of(browser.http_version, [h for h in browser.headers if h[0].lower() not in skip])
        prof_cand = candidate_of(prof.http_version, [h for h in prof.headers if h[0].lower() not in skip])
    else:
        prof_cand = candidate_of(prof.http_version, prof.headers)
    out = []
    for ch in differences(prof_cand, browser):
        if ch.kind == "value" and ch.name.lower() == "user-agent" and \
                _DIGITS.sub("N", ch.old or "") == _DIGITS.sub("N", ch.new or ""):
            continue
        out.append(ch)
    return out


def compare(report: UrlReport, run: dict[str, Any]) -> list[Finding]:
    name = run.get("name", "browser")
    subject = f"browser:{name}"
    if run.get("error"):
        return [Finding("WS857", {"browser": name, "detail": run["error"]}, subject=subject)]
    found: list[Finding] = []
    profile_name = PROFILE_OF.get(name)
    result = next((r for r in report.results if r.profile == profile_name), None)
    changes = header_differences(run, profile_name) if profile_name in PROFILES else []
    differs = "; ".join(c.describe() for c in changes) or "no header differs"
    browser_ok = run.get("outcome") in BROWSER_OK
    evidence = {"browser": name, "version": run.get("version", ""), "profile": profile_name,
                "browser_outcome": run.get("outcome"), "differs": differs,
                "differences": [c.to_dict() for c in changes],
                "request_exact": bool((run.get("handshake") or {}).get("exact"))}
    if result is not None and browser_ok != (result.verdict in PROFILE_OK):
        found.append(Finding("WS855", {**evidence, "verdict": result.verdict.value}, subject=subject,
                             confidence="certain" if changes else "possible"))
    elif changes:
        found.append(Finding("WS856", evidence, subject=subject))
    for msg in list(dict.fromkeys(run.get("console_errors") or []))[:3]:
        found.append(Finding("WS858", {"browser": name, "message": msg}, subject=subject))
    return found


def attach(report: UrlReport, runs: list[dict[str, Any]]) -> None:
    """Record the runs on the report and add their findings to its facts."""
    report.browsers = list(runs)
    for run in runs:
        report.facts.extend(compare(report, run))
