"""Plain-text output for bisection, browser rows and replay comparisons.

Presentation only: it takes results ready-made (``wsdiag.core.bisect.Result``,
``wsdiag.net.browser.BrowserRun``, findings) and writes lines; it judges nothing.
"""

from __future__ import annotations

from typing import IO, Any


def bisect_text(result: Any, url: str, good: str, bad: str, out: IO[str]) -> None:
    w = out.write
    w(f"bisect {url}: failing {bad} -> working {good}\n")
    w(f"  {len(result.changes)} difference(s); {result.exchanges} exchange(s)\n")
    for s in result.steps:
        changes = "; ".join(c.describe() for c in s.changes) or "(as is)"
        mark = "works" if s.works else "fails"
        w(f"  {s.label:16} {mark:6} {s.detail:20} {changes}\n")
    if result.status == "found":
        for sentence in result.sentences():
            w(f"=> {sentence}\n")
        for h in result.hints():
            w(f"   points to: {h}\n")
    elif result.status == "no-split":
        w(f"=> nothing to bisect: {good} {'works' if result.good_works else 'fails'}, "
          f"{bad} {'works' if result.bad_works else 'fails'}\n")
    else:
        w(f"=> inconclusive ({result.status})\n")


def browser_rows_text(url: str, runs: list, out: IO[str]) -> None:
    """One row per browser run (dicts from ``BrowserRun.to_dict``), next to the profile rows."""
    if not runs:
        return
    out.write(f"browsers on {url}:\n")
    for run in runs:
        name = run.get("name", "?")
        if run.get("error"):
            out.write(f"  {name:10} not run: {run['error']}\n")
            continue
        close = run.get("close") or {}
        status = run.get("response_status") if run.get("response_status") is not None else "-"
        out.write(f"  {name:10} {run.get('outcome', '?'):10} status {status}  close {close.get('code', '-')} "
                  f"{close.get('reason', '')!r} wasClean={close.get('wasClean', '-')}  "
                  f"{run.get('elapsed_ms', 0):.0f} ms  ({run.get('version', '')})\n")
        for msg in list(dict.fromkeys(run.get("console_errors") or []))[:3]:
            out.write(f"      console: {msg}\n")


def findings_text(findings: list, out: IO[str]) -> None:
    for f in findings:
        out.write(f"  {f.code} {f.severity.value:7} {f.summary}\n")
